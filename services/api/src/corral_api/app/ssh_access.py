"""Use cases of SSH access: issue, revoke and validate tokens (REST), and answer the ssh-gateway (log in,
wake a stopped sandbox, record the end of a session). Load, decide, record; nothing here speaks HTTP or NATS.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from corral_contracts import ssh as ev
from corral_eventstore import ConcurrencyConflict, EventLog, Recorded

from ..domain import sandbox as sandbox_domain
from ..domain import ssh_access as domain
from ..domain.errors import Conflict, DomainError, NotFound
from .directory import SandboxDirectory
from .sandboxes import SandboxService
from .ssh_index import SshIndex

log = logging.getLogger(__name__)

GATEWAY = {"Corral-Actor": "ssh-gateway"}
KEEPER = {"Corral-Actor": "ssh-access-keeper"}
WAKE_SETTLED = frozenset({"started", "stopped", "archived", "error", "destroyed", "build_failed"})


def _fold_access(state: domain.SshAccess | None, event: Recorded) -> domain.SshAccess | None:
    return domain.evolve(state, event.payload, event.originator_version, event.timestamp)


def _fold_session(state: domain.SshSession | None, event: Recorded) -> domain.SshSession | None:
    return domain.evolve_session(state, event.payload, event.originator_version, event.timestamp)


def ssh_command(host: str, port: int, token: str) -> str:
    return f"ssh -p {port} {token}@{host}"


class Issued:
    def __init__(self, access: domain.SshAccess, token: str, command: str):
        self.access = access
        self.token = token
        self.command = command


class SshAccessService:
    def __init__(self, *, event_log: EventLog, directory: SandboxDirectory, sandboxes: SandboxService,
                 index: SshIndex, recorded: Callable[[], None], ssh_host: str, ssh_port: int, minute: float = 60.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._log = event_log
        self._directory = directory
        self._sandboxes = sandboxes
        self.index = index
        self._recorded = recorded
        self._host = ssh_host
        self._port = ssh_port
        self._minute = minute
        self._now = clock

    # --- reading ------------------------------------------------------------------------------

    async def load(self, access_id: str) -> domain.SshAccess | None:
        return await asyncio.to_thread(self._log.load, uuid.UUID(access_id), _fold_access)

    async def _by_token(self, token_hash: str) -> domain.SshAccess | None:
        access_id = self.index.by_hash.get(token_hash)
        if access_id is None:  # issued a moment ago by another api, maybe: fold what is recorded
            await self._directory.catch_up()
            access_id = self.index.by_hash.get(token_hash)
        return await self.load(access_id) if access_id else None

    async def _record(self, stream: uuid.UUID, version: int, events: list[Any], meta: dict[str, str],
                      *more: tuple[uuid.UUID, int, list[Any]]) -> None:
        await asyncio.to_thread(self._log.append, stream, version, events, meta, *more)
        self._recorded()
        await self._directory.catch_up()

    # --- REST ---------------------------------------------------------------------------------

    async def create(self, organization_id: str, id_or_name: str, minutes: int | None,
                     meta: dict[str, str]) -> Issued:
        sandbox = await self._sandboxes.get(organization_id, id_or_name)
        now = self._now()
        expires_at = domain.expiry(now, minutes, self._minute)
        token = domain.new_token()
        access_id = str(uuid.uuid4())
        created = domain.issue(access_id=access_id, sandbox_id=sandbox.id, organization_id=organization_id,
                               sandbox_state=sandbox.state, token=token, expires_at=expires_at)
        for old in await self._superseded(sandbox.id, now):
            await self._decide(old.id, lambda a: domain.revoke(a, "superseded"), meta)
        await self._record(uuid.UUID(access_id), 0, created, meta)
        access = await self.load(access_id)
        assert access is not None
        return Issued(access, token, ssh_command(self._host, self._port, token))

    async def _superseded(self, sandbox_id: str, now: datetime) -> list[domain.SshAccess]:
        live = [e for e in self.index.live(now) if e.sandbox_id == sandbox_id]
        if len(live) < domain.MAX_LIVE_TOKENS:
            return []
        loaded = [a for a in [await self.load(e.access_id) for e in live] if a is not None]
        return domain.superseded(loaded, now)

    async def revoke(self, organization_id: str, id_or_name: str, token: str | None,
                     meta: dict[str, str]) -> sandbox_domain.Sandbox:
        """One token of this sandbox, or every live one when `token` is None."""
        sandbox = await self._sandboxes.get(organization_id, id_or_name)
        if token is not None:
            access = await self._by_token(domain.token_hash(token))
            if access is None or access.sandbox_id != sandbox.id:
                raise NotFound(f"SSH access token not found for sandbox {sandbox.id}")
            await self._decide(access.id, domain.revoke, meta)
        else:
            for access_id in list(self.index.of_sandbox.get(sandbox.id, ())):
                await self._decide(access_id, domain.revoke, meta)
        return sandbox

    async def validate(self, organization_id: str, token: str) -> tuple[bool, str]:
        """Whether the token would log in now, and its sandbox (only for the caller's organization)."""
        access = await self._by_token(domain.token_hash(token))
        if access is None or access.organization_id != organization_id:
            return False, ""
        if domain.refusal(access, self._now()) is not None:
            return False, access.sandbox_id
        sandbox = await self._sandboxes.load(access.sandbox_id)
        state = sandbox.state if sandbox else None
        return domain.sandbox_refusal(access.sandbox_id, state) is None, access.sandbox_id

    async def _decide(self, access_id: str, decide: Callable[[domain.SshAccess], list[Any]],
                      meta: dict[str, str]) -> domain.SshAccess | None:
        for _ in range(10):
            access = await self.load(access_id)
            if access is None:
                return None
            events = decide(access)
            if not events:
                return access
            try:
                await self._record(uuid.UUID(access.id), access.version, events, meta)
            except ConcurrencyConflict:
                continue
            return await self.load(access_id)
        raise Conflict(f"SSH access {access_id} is changing too quickly; try again")

    # --- the gateway ----------------------------------------------------------------------------

    async def login(self, request: ev.SshLoginRequest) -> ev.SshLoginReply:
        """Grant a login (recording the token's use and the session's start in one transaction), or say why not."""
        meta = {**GATEWAY, "Corral-Source": request.gateway or "ssh-gateway"}
        for _ in range(10):
            access = await self._by_token(request.token_hash)
            now = self._now()
            refused = domain.refusal(access, now)
            if refused is not None:
                if access is not None and refused.code == "expired":
                    await self._decide(access.id, lambda a: domain.expire(a, self._now()), KEEPER)
                return _refused(refused, access)
            assert access is not None
            sandbox = await self._sandboxes.load(access.sandbox_id)
            refused = domain.sandbox_refusal(access.sandbox_id, sandbox.state if sandbox else None,
                                             sandbox.error_reason if sandbox else None)
            if refused is not None or sandbox is None:
                return _refused(refused or domain.UNKNOWN, access)
            session_key = uuid.UUID(request.session_id)
            existing = await asyncio.to_thread(self._log.load, session_key, _fold_session)
            if existing is None:
                used = domain.use(access, session_id=request.session_id, client_address=request.client_address,
                                  client_version=request.client_version)
                started = ev.SshSessionStarted(
                    session_id=request.session_id, sandbox_id=access.sandbox_id, access_id=access.id,
                    organization_id=access.organization_id, client_address=request.client_address,
                    client_port=request.client_port, client_version=request.client_version[:200],
                    gateway=request.gateway)
                try:
                    await self._record(uuid.UUID(access.id), access.version, used, meta,
                                       (session_key, 0, [started]))
                except ConcurrencyConflict:
                    continue  # another login used the token meanwhile, or this one is a repeat: look again
            elif existing.access_id != access.id:
                return _refused(domain.UNKNOWN, None)
            return ev.SshLoginReply(granted=True, sandbox_id=sandbox.id, access_id=access.id,
                                    organization_id=access.organization_id, state=sandbox.state,
                                    runner_id=sandbox.runner_id, user=sandbox.user, expires_at=access.expires_at)
        raise Conflict("SSH login could not be recorded; try again")

    async def wake(self, request: ev.SshWakeRequest) -> ev.SshWakeReply:
        """Start the sandbox of a granted session (if stopped or archived), and wait, bounded, for `started`."""
        access = await self.load(request.access_id)
        if access is None or access.sandbox_id != request.sandbox_id:
            return ev.SshWakeReply(state="unknown", message=domain.UNKNOWN.message)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, min(request.wait, 300.0))
        sandbox_id = request.sandbox_id
        meta = {**GATEWAY, "Corral-Causation-Id": request.session_id}
        while True:
            sandbox = await self._sandboxes.load(sandbox_id)
            state = sandbox.state if sandbox else None
            refused = domain.sandbox_refusal(sandbox_id, state, sandbox.error_reason if sandbox else None)
            if refused is not None or sandbox is None:
                return ev.SshWakeReply(state=state or "destroyed", message=(refused or domain.UNKNOWN).message)
            if state == "started":
                return ev.SshWakeReply(state=state, runner_id=sandbox.runner_id)
            if state in ("stopped", "archived") or (state == "stopping" and sandbox.desired_state == "started"):
                try:
                    await self._sandboxes.apply(sandbox, sandbox_domain.request_start, meta)
                except DomainError as error:
                    return ev.SshWakeReply(state=state, message=error.message)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return ev.SshWakeReply(state=state, runner_id=sandbox.runner_id,
                                       message=f"Sandbox {sandbox_id} is still {state}; try again in a moment.")
            directory = self._directory
            await directory.wait_for(
                lambda: (s := directory.sandboxes.get(sandbox_id)) is None or s.state != state, remaining)

    async def session_ended(self, report: ev.SshSessionReport) -> None:
        ended = report.ended
        session_key = uuid.UUID(ended.session_id)
        for _ in range(10):
            session = await asyncio.to_thread(self._log.load, session_key, _fold_session)
            if session is None:
                raise NotFound(f"SSH session {ended.session_id} was never started")
            events = domain.end(session, ended)
            if not events:
                return
            try:
                await self._record(session_key, session.version, events, GATEWAY)
            except ConcurrencyConflict:
                continue
            return
        raise Conflict(f"SSH session {ended.session_id} could not be recorded; try again")

    async def check(self, request: ev.SshSessionCheck) -> ev.SshSessionCheckReply:
        """Which of these accesses may no longer be used by an open session: revoked, or sandbox gone.
        (An expired token does not end a session it opened, as a certificate's expiry ends no SSH session.)"""
        invalid: dict[str, str] = {}
        for access_id in request.access_ids[:1000]:
            try:
                access = await self.load(access_id)
            except ValueError:
                access = None
            if access is None:
                invalid[access_id] = "unknown"
            elif access.revoked:
                invalid[access_id] = "revoked"
            else:
                sandbox = self._directory.sandboxes.get(access.sandbox_id)
                if sandbox is None or sandbox.state in ("destroying", "destroyed"):
                    invalid[access_id] = "sandbox-gone"
        return ev.SshSessionCheckReply(invalid=invalid)

    # --- keeping the log true -----------------------------------------------------------------------

    async def sweep(self) -> int:
        """Record the expiry of tokens past their time, and revoke the tokens of destroyed sandboxes."""
        now = self._now()
        actions = 0
        for entry in self.index.due(now):
            await self._decide(entry.access_id, lambda a: domain.expire(a, now), KEEPER)
            actions += 1
        for entry in self.index.live(now):
            sandbox = self._directory.sandboxes.get(entry.sandbox_id)
            if sandbox is not None and sandbox.state == "destroyed":
                await self._decide(entry.access_id, lambda a: domain.revoke(a, "sandbox-destroyed"), KEEPER)
                actions += 1
        return actions


def _refused(refusal: domain.Refusal, access: domain.SshAccess | None) -> ev.SshLoginReply:
    return ev.SshLoginReply(granted=False, refusal=refusal.code, message=refusal.message,
                            sandbox_id=access.sandbox_id if access else "")


class SshAccessKeeper:
    """Runs `SshAccessService.sweep` now and then, so expiries and revocations are recorded even for
    tokens nobody tries again."""

    def __init__(self, service: SshAccessService, interval: float):
        self._service = service
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._service.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ssh access sweep failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ssh-access-keeper")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
