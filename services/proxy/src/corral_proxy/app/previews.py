"""Who may see a preview, and getting its sandbox running: the use cases of preview traffic.

Admission (daytona-platform.md §14, in order): a bearer API key of the sandbox's organization; the
sandbox's preview token in `X-Daytona-Preview-Token`; the token as the `DAYTONA_SANDBOX_AUTH_KEY`
query parameter (the answer then sets the preview cookie); the preview cookie; a signed preview URL
(its token in the host or path, so every request of the page carries it: no cookie is set, and
revoking or expiring it takes effect at once); or a public sandbox. An unknown sandbox, and one of
another organization reached with that organization's key, are both 404; no credential is 401; a
wrong one 403.

Readiness: a stopped or archived sandbox is woken (the api records the start, actor `proxy`), then
the request waits, bounded, for `started`; a sandbox still being created or started is waited for.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import msgspec

from corral_contracts.preview import PreviewWakeReply

from ..domain import previews as pv
from ..domain.routes import Route
from .directory import Directory, Refused

Wake = Callable[[str, int], Awaitable[PreviewWakeReply]]

SETTLING = frozenset({"creating", "starting", "restoring"})
WINDING_DOWN = frozenset({"stopping", "archiving"})
WAKEABLE = frozenset({"stopped", "archived"})
UNKNOWN_WAIT = 1.0
"""How long a preview of a sandbox (or signed token) the proxy has not heard of waits for its event."""


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    bearer: str = ""
    header_token: str = ""
    query_token: str | None = None
    cookie: str = ""


class Admission(msgspec.Struct, frozen=True, kw_only=True):
    route: Route
    via: str
    """`api-key`, `preview-token`, `query`, `cookie`, `signed` or `public`."""
    key_presented: bool = False
    """The request carries a Corral API key (of any organization): it never reaches the app."""
    set_cookie: bool = False


class Starting(Exception):
    """The sandbox is on its way up but not there within the wait: come back shortly."""

    def __init__(self, sandbox_id: str, state: str, retry_after: int = 2):
        super().__init__(f"Sandbox {sandbox_id} is starting (state: {state})")
        self.sandbox_id = sandbox_id
        self.state = state
        self.retry_after = retry_after


class PreviewGate:
    def __init__(self, directory: Directory, wake: Wake, *, secret: bytes, wake_wait: float = 60.0,
                 browser_wait: float = 5.0):
        self.directory = directory
        self._wake = wake
        self.secret = secret
        self.wake_wait = wake_wait
        self.browser_wait = browser_wait

    async def admit(self, address: pv.PreviewAddress, credentials: Credentials, now: float) -> Admission:
        directory = self.directory
        organization = directory.organization_of_key(credentials.bearer) if credentials.bearer else None
        key_presented = organization is not None
        if address.signed:
            grant = await directory.grant(pv.token_hash(address.label), UNKNOWN_WAIT)
            if grant is None or grant.revoked or grant.expires_at.timestamp() <= now:
                raise Refused(403, "This preview URL has expired or was revoked", "PREVIEW_URL_EXPIRED")
            if grant.port != address.port:
                raise Refused(403, f"This preview URL opens port {grant.port}, not {address.port}", "WRONG_PORT")
            route = await directory.find(grant.sandbox_id, UNKNOWN_WAIT)
            if route is None:
                raise _not_found(grant.sandbox_id)
            return Admission(route=route, via="signed", key_presented=key_presented)
        if not pv.is_sandbox_id(address.label):
            raise _not_found(address.label)
        route = await directory.find(address.label, UNKNOWN_WAIT)
        if route is None:
            raise _not_found(address.label)
        if organization == route.organization_id:
            return Admission(route=route, via="api-key", key_presented=True)
        if route.public:
            return Admission(route=route, via="public", key_presented=key_presented)
        presented_wrong = False
        if credentials.header_token:
            if pv.tokens_match(credentials.header_token, route.preview_token):
                return Admission(route=route, via="preview-token", key_presented=key_presented)
            presented_wrong = True
        if credentials.query_token is not None:
            if pv.tokens_match(credentials.query_token, route.preview_token):
                return Admission(route=route, via="query", key_presented=key_presented, set_cookie=True)
            presented_wrong = True
        if credentials.cookie:
            if pv.cookie_valid(self.secret, route.sandbox_id, credentials.cookie, now):
                return Admission(route=route, via="cookie", key_presented=key_presented)
            presented_wrong = True
        if presented_wrong:
            raise Refused(403, "Invalid preview token for this sandbox", "INVALID_PREVIEW_TOKEN")
        if organization is not None:  # another organization's key: its sandbox looks unknown
            raise _not_found(address.label)
        if credentials.bearer:
            raise Refused(401, "Invalid API key", "UNAUTHORIZED")
        raise Refused(401, "This preview is private: present the sandbox's preview token (header "
                           f"{pv.TOKEN_HEADER} or query {pv.QUERY_KEY}) or an API key of its organization",
                      "UNAUTHORIZED")

    async def ready(self, route: Route, port: int, *, browser: bool) -> bool:
        """Return once the sandbox is started: True if it was not when the request came (it was woken,
        by this request or another, or was still starting: its apps may not listen yet); Starting if it
        is still on its way after the wait (browsers wait less: they get a page that reloads itself)."""
        directory = self.directory
        deadline = time.monotonic() + (self.browser_wait if browser else self.wake_wait)

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        if route.state == "started":
            return False
        if route.state in SETTLING:
            await directory.wait_until(lambda: route.state not in SETTLING, left())
        if route.state == "started":
            return True
        if route.state in WINDING_DOWN:
            await directory.wait_until(lambda: route.state not in WINDING_DOWN, left())
        if route.state in WAKEABLE:
            try:
                reply = await self._wake(route.sandbox_id, port)
            except Exception as error:
                raise Refused(503, f"Sandbox {route.sandbox_id} is stopped and could not be woken: {error}",
                              "WAKE_FAILED") from None
            if not reply.accepted:
                raise Refused(503, f"Sandbox {route.sandbox_id} could not be started: {reply.message}",
                              "WAKE_REFUSED")
            await directory.wait_until(lambda: route.state not in WAKEABLE, left())
        if route.state in SETTLING or route.state in WAKEABLE:
            await directory.wait_until(lambda: route.state not in SETTLING and route.state not in WAKEABLE, left())
        if route.state == "started":
            return True
        if route.state == "error":
            raise Refused(503, f"Sandbox {route.sandbox_id} is in error; recover it first", "SANDBOX_ERROR")
        if route.state == "destroying" or route.sandbox_id not in directory.table.routes:
            raise _not_found(route.sandbox_id)
        raise Starting(route.sandbox_id, route.state)

    def cookie(self, sandbox_id: str, now: float) -> tuple[str, str]:
        """The preview cookie (name, value) for a caller who just proved it knows the preview token."""
        return pv.cookie_name(sandbox_id), pv.cookie_value(self.secret, sandbox_id, int(now) + pv.COOKIE_SECONDS)


def _not_found(label: str) -> Refused:
    return Refused(404, f"Sandbox {label} not found", "NOT_FOUND")
