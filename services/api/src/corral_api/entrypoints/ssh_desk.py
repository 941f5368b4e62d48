"""The ssh-gateway's requests to the api (NATS request/reply): decode, call the use case, encode.

A refusal the domain raises is an answer (`granted=False`, or a wake reply with a message), never a
failed request; undecodable requests fail (the bus answers them with `Corral-Error`).
"""

from __future__ import annotations

from corral_contracts import codecs
from corral_contracts.ssh import Ack
from corral_contracts.subjects import SSH_LOGIN, SSH_SESSION_CHECK, SSH_SESSION_ENDED, SSH_WAKE
from corral_messaging import Bus

from ..app.ssh_access import SshAccessService


class SshDesk:
    def __init__(self, service: SshAccessService):
        self._service = service

    async def login(self, data: bytes) -> bytes:
        return codecs.encode(await self._service.login(codecs.ssh_login_request.decode(data)))

    async def wake(self, data: bytes) -> bytes:
        return codecs.encode(await self._service.wake(codecs.ssh_wake_request.decode(data)))

    async def session_ended(self, data: bytes) -> bytes:
        await self._service.session_ended(codecs.ssh_session_report.decode(data))
        return codecs.encode(Ack())

    async def check(self, data: bytes) -> bytes:
        return codecs.encode(await self._service.check(codecs.ssh_session_check.decode(data)))

    async def serve(self, bus: Bus) -> None:
        await bus.serve(SSH_LOGIN, self.login)
        await bus.serve(SSH_WAKE, self.wake)
        await bus.serve(SSH_SESSION_ENDED, self.session_ended)
        await bus.serve(SSH_SESSION_CHECK, self.check)
