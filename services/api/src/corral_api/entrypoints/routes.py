"""The route table: one declaration per endpoint feeds both aiohttp and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    status: int = 200
    body: type | None = None
    response: type | None = None
    query: tuple[Query, ...] = field(default_factory=tuple)
    public: bool = False
    """No API key needed (health, the OpenAPI document)."""
    permission: str | None = None
    """What the caller's key must hold: `public`, `authenticated` (any valid key; the answer is scoped to
    its organization), `operator`, or one of Daytona's scopes (`write:sandboxes`, ...). None means
    unclassified: refused to everyone but operators, and a unit test fails (see domain.identity)."""
    action: str | None = None
    """The audit action, when the derived one (create/delete/update/<verb>) is not Daytona's name. A GET
    route with an action is audited too (it changes something)."""
    rate: str | None = None
    """A rate-limit bucket besides `authenticated`: `sandbox-create` or `sandbox-lifecycle`."""
    errors: tuple[int, ...] = ()
    """Statuses besides the ones every route may answer (documented in the OpenAPI document)."""
