"""Use cases of preview URLs: links, signed links and their revocation, the public switch, and waking
a sandbox whose preview was visited. Nothing here speaks HTTP or NATS."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import datetime, timezone

import msgspec

from corral_eventstore import ConcurrencyConflict, EventLog, Recorded

from ..domain import previews as domain
from ..domain import sandbox as sandboxes_domain
from ..domain.errors import Conflict, DomainError
from ..domain.sandbox import Sandbox
from .sandboxes import SandboxService

WAKE_META = {"Corral-Actor": "proxy", "Corral-Source": "preview"}


class PreviewLinks(msgspec.Struct, frozen=True, kw_only=True):
    """Where previews are published: `{port}-{id}.{host}` under `base`, or `{proxy}/preview/{id}/{port}/`."""

    base: str = "http://preview.localhost:4000"
    proxy: str = "http://127.0.0.1:4000"
    form: str = "host"

    def url(self, port: int, label: str) -> str:
        if self.form == "path":
            return domain.path_url(self.proxy, port, label)
        return domain.host_url(self.base, port, label)


class SignedLink(msgspec.Struct, frozen=True, kw_only=True):
    sandbox_id: str
    port: int
    token: str
    url: str
    expires_at: datetime


class WakeOutcome(msgspec.Struct, frozen=True, kw_only=True):
    accepted: bool
    state: str
    message: str = ""


def _fold(state: domain.SignedPreviewUrl | None, event: Recorded) -> domain.SignedPreviewUrl | None:
    return domain.evolve(state, event.payload, event.originator_version)


class PreviewService:
    def __init__(self, *, event_log: EventLog, sandboxes: SandboxService, recorded: Callable[[], None], links: PreviewLinks):
        self._log = event_log
        self._sandboxes = sandboxes
        self._recorded = recorded
        self.links = links

    async def link(self, organization_id: str, id_or_name: str, port: int) -> tuple[Sandbox, str]:
        """The sandbox and its preview URL for `port`; its preview token opens private previews."""
        sandbox = await self._sandboxes.get(organization_id, id_or_name)
        return sandbox, self.links.url(port, sandbox.id)

    async def sign(self, organization_id: str, id_or_name: str, port: int, seconds: int,
                   meta: dict[str, str]) -> SignedLink:
        sandbox = await self._sandboxes.get(organization_id, id_or_name)
        for _ in range(5):
            token = "".join(secrets.choice(domain.TOKEN_ALPHABET) for _ in range(domain.TOKEN_LENGTH))
            now = datetime.now(timezone.utc)
            events = domain.issue(sandbox, port, token, seconds, now)
            try:
                await asyncio.to_thread(self._log.append, domain.grant_id(token), 0, events, meta)
            except ConcurrencyConflict:  # the same token twice: draw another
                continue
            self._recorded()
            return SignedLink(sandbox_id=sandbox.id, port=port, token=token, url=self.links.url(port, token),
                              expires_at=events[0].expires_at)
        raise Conflict("Could not issue a unique preview token; try again")

    async def expire(self, organization_id: str, id_or_name: str, port: int, token: str,
                     meta: dict[str, str]) -> None:
        sandbox = await self._sandboxes.get(organization_id, id_or_name)
        key = domain.grant_id(token) if domain.is_token(token) else None
        for _ in range(5):
            grant = await asyncio.to_thread(self._log.load, key, _fold) if key else None
            events = domain.expire(grant, sandbox, port)
            if not events:
                return
            try:
                await asyncio.to_thread(self._log.append, key, grant.version, events, meta)  # type: ignore[union-attr]
            except ConcurrencyConflict:
                continue
            self._recorded()
            return
        raise Conflict("The signed preview URL is changing too quickly; try again")

    async def set_public(self, organization_id: str, id_or_name: str, public: bool, meta: dict[str, str]) -> Sandbox:
        sandbox = await self._sandboxes.get(organization_id, id_or_name)
        return await self._sandboxes.apply(sandbox, lambda s: sandboxes_domain.set_public(s, public), meta)

    async def wake(self, sandbox_id: str, reason: str) -> WakeOutcome:
        """Start a stopped (or archived) sandbox whose preview an authorised caller visited, through the
        same decision as `POST /sandbox/{id}/start` (recorded with actor `proxy` and the reason)."""
        sandbox = await self._sandboxes.load(sandbox_id)
        if sandbox is None or sandbox.state == "destroyed":
            return WakeOutcome(accepted=False, state="destroyed", message=f"Sandbox {sandbox_id} not found")
        try:
            after = await self._sandboxes.apply(
                sandbox, lambda s: sandboxes_domain.request_start(s, reason=reason), WAKE_META)
        except DomainError as refused:
            return WakeOutcome(accepted=False, state=sandbox.state, message=refused.message)
        return WakeOutcome(accepted=True, state=after.state)
