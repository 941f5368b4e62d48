"""Letting a login in: the per-address slow-down, the api's decision, and waking a stopped sandbox."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from corral_contracts.ssh import SshLoginRequest, SshSessionEnded, SshWakeRequest

from ..domain.backoff import Backoff
from .ports import AccessDesk

log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 256
UNAVAILABLE = "The SSH gateway cannot reach the platform right now; try again in a moment."


class Refused(Exception):
    """The login is refused; `message` is for the SSH client."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Grant:
    """A login the api accepted: one SSH session to one sandbox."""

    def __init__(self, *, session_id: str, sandbox_id: str, access_id: str, organization_id: str, runner_id: str,
                 user: str, client_address: str, started_at: datetime):
        self.session_id = session_id
        self.sandbox_id = sandbox_id
        self.access_id = access_id
        self.organization_id = organization_id
        self.runner_id = runner_id
        self.user = user
        self.client_address = client_address
        self.started_at = started_at


class Gatekeeper:
    def __init__(self, desk: AccessDesk, backoff: Backoff, *, gateway_id: str, wake_wait: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self._desk = desk
        self._backoff = backoff
        self._gateway_id = gateway_id
        self._wake_wait = wake_wait
        self._clock = clock
        self._sleep = sleep

    async def admit(self, token: str, *, session_id: str, address: str, port: int, client_version: str,
                    notify: Callable[[str], None]) -> Grant:
        """The grant of a login, or `Refused`. `notify` shows the client a line while it waits."""
        delay = self._backoff.delay(address, self._clock())
        if delay:
            log.info("login from %s slowed down by %.1fs after repeated failures", address, delay)
            await self._sleep(delay)
        if not token or len(token) > MAX_TOKEN_CHARS:
            self._backoff.failed(address, self._clock())
            raise Refused("The SSH user name must be an SSH access token (ssh <token>@host).")
        request = SshLoginRequest(token_hash=hashlib.sha256(token.encode()).hexdigest(), session_id=session_id,
                                  client_address=address, client_port=port, client_version=client_version,
                                  gateway=self._gateway_id)
        try:
            reply = await self._desk.login(request)
        except Exception as error:  # the api is unreachable or failed: no verdict on the token
            log.warning("login of %s could not be decided: %s", address, error)
            raise Refused(UNAVAILABLE) from None
        if not reply.granted:
            self._backoff.failed(address, self._clock())
            log.info("login from %s refused: %s", address, reply.refusal)
            raise Refused(reply.message or "This SSH access token is not valid.")
        self._backoff.succeeded(address)
        grant = Grant(session_id=session_id, sandbox_id=reply.sandbox_id, access_id=reply.access_id,
                      organization_id=reply.organization_id, runner_id=reply.runner_id, user=reply.user,
                      client_address=address, started_at=datetime.now(timezone.utc))
        if reply.state != "started":
            await self._wake(grant, reply.state, notify)
        return grant

    async def _wake(self, grant: Grant, state: str, notify: Callable[[str], None]) -> None:
        notify(f"Sandbox {grant.sandbox_id} is {state}; starting it...")
        request = SshWakeRequest(sandbox_id=grant.sandbox_id, access_id=grant.access_id,
                                 session_id=grant.session_id, wait=self._wake_wait)
        try:
            woken = await self._desk.wake(request)
        except Exception as error:
            log.warning("could not wake %s: %s", grant.sandbox_id, error)
            await self._end(grant, "sandbox-unavailable")
            raise Refused(UNAVAILABLE) from None
        if woken.state != "started":
            await self._end(grant, "sandbox-unavailable")
            raise Refused(woken.message or f"Sandbox {grant.sandbox_id} is {woken.state}.")
        grant.runner_id = woken.runner_id or grant.runner_id

    async def _end(self, grant: Grant, reason: str) -> None:
        """The session the api recorded at login ends at once (the sandbox could not be reached)."""
        ended = SshSessionEnded(session_id=grant.session_id, sandbox_id=grant.sandbox_id, access_id=grant.access_id,
                                client_address=grant.client_address, seconds=0.0, reason=reason)
        try:
            await self._desk.session_ended(ended)
        except Exception as error:
            log.warning("could not record the end of session %s: %s", grant.session_id, error)
