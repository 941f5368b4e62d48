"""The api's answers to the gateway, over NATS request/reply (subjects and messages from libs/contracts)."""

from __future__ import annotations

from corral_contracts import codecs
from corral_contracts.ssh import (
    SshLoginReply,
    SshLoginRequest,
    SshSessionCheck,
    SshSessionEnded,
    SshSessionReport,
    SshWakeReply,
    SshWakeRequest,
)
from corral_contracts.subjects import SSH_LOGIN, SSH_SESSION_CHECK, SSH_SESSION_ENDED, SSH_WAKE
from corral_messaging import Bus

TIMEOUT = 10.0


class BusDesk:
    def __init__(self, bus: Bus):
        self._bus = bus

    async def login(self, request: SshLoginRequest) -> SshLoginReply:
        return codecs.ssh_login_reply.decode(await self._bus.request(SSH_LOGIN, codecs.encode(request), timeout=TIMEOUT))

    async def wake(self, request: SshWakeRequest) -> SshWakeReply:
        data = await self._bus.request(SSH_WAKE, codecs.encode(request), timeout=request.wait + TIMEOUT)
        return codecs.ssh_wake_reply.decode(data)

    async def session_ended(self, ended: SshSessionEnded) -> None:
        data = await self._bus.request(SSH_SESSION_ENDED, codecs.encode(SshSessionReport(ended=ended)),
                                       timeout=TIMEOUT)
        codecs.ack.decode(data)

    async def check(self, access_ids: list[str]) -> dict[str, str]:
        data = await self._bus.request(SSH_SESSION_CHECK, codecs.encode(SshSessionCheck(access_ids=access_ids)),
                                       timeout=TIMEOUT)
        return codecs.ssh_session_check_reply.decode(data).invalid
