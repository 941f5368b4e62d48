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
