"""Who may call what, how often: the api's access middleware, driven by the route table.

For every request under `/api` (except the Socket.IO stream, which authenticates in its protocol):

1. public routes (and unknown paths) count against the caller IP's `anonymous` allowance;
2. otherwise the bearer key must be a usable key (unknown, revoked and expired keys all get 401 and
   count against the IP's `failed-auth` allowance);
3. the organization's `authenticated` allowance, then the route's permission (403 when missing;
   unclassified routes are for operators only), a suspended organization's changes (403), then the
   route's own bucket (`sandbox-create`, `sandbox-lifecycle`);
4. the handler, with the caller under `CALLER` and its organization under `ORGANIZATION`.

Every answer carries the `X-RateLimit-{Limit,Remaining,Reset}-<bucket>` headers of the buckets it was
counted in; an exhausted bucket answers 429. Counters live in this process (see README for what
several replicas need).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

from aiohttp import web

from corral_web import error_response

from ..app.identity import ApiKeyEntry, IdentityService, IdentityView
from ..domain import identity as rules
from ..domain.ratelimits import RateLimiter, Verdict
from .realtime import PATH as REALTIME_PATH
from .request_context import ACTOR, ORGANIZATION
from .routes import Route

CALLER = web.RequestKey("caller", ApiKeyEntry)
ROUTE = web.RequestKey("route", Route)
RATE_HEADERS = web.RequestKey("rate_headers", dict)
ROUTE_TABLE = web.AppKey("route_table", dict)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AccessPolicy:
    def __init__(self, *, view: IdentityView, identity: IdentityService, limiter: RateLimiter,
                 anonymous_limit: int, failed_auth_limit: int,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.view = view
        self.identity = identity
        self.limiter = limiter
        self.anonymous_limit = anonymous_limit
        self.failed_auth_limit = failed_auth_limit
        self.clock = clock
        self.now = now


def classification(route: Route) -> str | None:
    return rules.PUBLIC if route.public else route.permission


def client_ip(request: web.Request) -> str:
    return request.remote or ""


def bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _limited(request: web.Request, verdict: Verdict) -> web.Response | None:
    request.setdefault(RATE_HEADERS, {}).update(verdict.headers())
    if verdict.allowed:
        return None
    response = error_response(429, f"Too many requests ({verdict.bucket}: {verdict.limit} per minute); "
                                   f"retry in {verdict.reset} s", "TOO_MANY_REQUESTS")
    response.headers["Retry-After"] = str(verdict.reset)
    return response


def access(policy: AccessPolicy):  # type: ignore[no-untyped-def]
    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if not request.path.startswith("/api/") or request.path.startswith(REALTIME_PATH):
            return await handler(request)
        route: Route | None = request.app[ROUTE_TABLE].get(request.match_info.route)
        clock = policy.clock()
        needed = classification(route) if route is not None else rules.PUBLIC
        if needed == rules.PUBLIC:
            refused = _limited(request, policy.limiter.hit("anonymous", client_ip(request), policy.anonymous_limit, clock))
            return refused or await handler(request)
        caller = policy.view.authenticate(bearer(request), policy.now())
        if caller is None:
            refused = _limited(request, policy.limiter.hit("failed-auth", client_ip(request), policy.failed_auth_limit,
                                                           clock))
            return refused or error_response(401, "Invalid or missing API key", "UNAUTHORIZED")
        org = caller.organization_id
        request[CALLER] = caller
        request[ORGANIZATION] = org
        request[ACTOR] = caller.prefix
        assert route is not None
        request[ROUTE] = route
        quota = policy.identity.quota(org)
        refused = _limited(request, policy.limiter.hit("authenticated", org, quota.rate_authenticated, clock))
        if refused:
            return refused
        policy.identity.used(caller, policy.now())
        if needed is None or needed == rules.OPERATOR:
            if not caller.operator:
                return error_response(403, "Only a platform operator may do this", "FORBIDDEN")
        elif needed != rules.AUTHENTICATED and not caller.holds(needed):
            return error_response(403, f"This API key lacks the permission {needed}", "FORBIDDEN")
        if request.method in MUTATING and not caller.operator and policy.view.suspended(org) \
                and not (request.method == "DELETE" and route.path.startswith("/api/api-keys/")):
            return error_response(403, f"Organization {org} is suspended: it may read and revoke keys, nothing else",
                                  "ORGANIZATION_SUSPENDED")
        if route.rate is not None:
            limit = quota.rate_sandbox_create if route.rate == "sandbox-create" else quota.rate_sandbox_lifecycle
            refused = _limited(request, policy.limiter.hit(route.rate, org, limit, clock))
            if refused:
                return refused
        return await handler(request)

    return middleware


async def rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every answer carries the counters it was counted in, errors included."""
    for name, value in request.get(RATE_HEADERS, {}).items():
        response.headers[name] = value
