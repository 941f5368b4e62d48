"""The audit middleware: every mutating call under `/api` (POST, PUT, PATCH, DELETE — answered,
failed or refused, known route or not) and every route with an explicit audit action becomes one
`AuditRecorded` event, written once the answer is known and before it is sent.

It runs outside the JSON-error middleware, so it sees the final status of every call, and is driven
by the route table: a new route is audited without any change here (its action and target type are
derived from its method and path unless the route names them).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from aiohttp import web

from corral_contracts.audit import AuditRecorded

from ..app.audit import AuditWriter, new_audit_id
from ..domain import audit as rules
from .access import CALLER, ROUTE_TABLE
from .realtime import PATH as REALTIME_PATH
from .routes import Route

BODY_LIMIT = 64 * 1024
"""Larger request bodies are recorded by size only."""
TEXT_LIMIT = 256


def audited(method: str, route: Route | None) -> bool:
    return method in rules.MUTATING or (route is not None and route.action is not None)


def _json(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, ValueError):
        return None


async def _body(request: web.Request) -> Any:
    if not request.body_exists:
        return None
    length = request.content_length
    if length is None or length > BODY_LIMIT:
        return {"bodyBytes": length}
    try:
        raw = await request.read()
    except Exception:
        return {"bodyBytes": length}
    decoded = _json(raw)
    return decoded if decoded is not None else {"bodyBytes": len(raw)}


def _answer(response: web.StreamResponse | None) -> Any:
    if isinstance(response, web.Response) and isinstance(response.body, bytes) and response.body[:1] == b"{":
        return _json(response.body)
    return None


async def entry_for(request: web.Request, route: Route | None, status: int, response: web.StreamResponse | None,
                    seconds: float, read_body: bool) -> AuditRecorded:
    caller = request.get(CALLER)
    path = route.path if route is not None else request.path[:TEXT_LIMIT]
    params = dict(request.match_info) if route is not None else {}
    target_id = next(iter(params.values()), "")
    answer = _answer(response)
    if not target_id and isinstance(answer, dict) and 200 <= status < 300:
        found = answer.get("id") or answer.get("name")
        target_id = found if isinstance(found, str) else ""
    error = ""
    if status >= 400 and isinstance(answer, dict) and isinstance(answer.get("message"), str):
        error = answer["message"][:1000]
    metadata: dict[str, Any] = {}
    if request.query:
        metadata["query"] = rules.mask({k: v for k, v in request.query.items()})
    if len(params) > 1:
        metadata["params"] = rules.mask({k: v for k, v in list(params.items())[1:]})
    body = await _body(request) if read_body else None
    if body is not None:
        metadata["body"] = rules.mask(body)
    headers = request.headers
    return AuditRecorded(
        audit_id=new_audit_id(), organization_id=caller.organization_id if caller else "",
        actor_id=caller.key_id if caller else "", actor_name=caller.name if caller else "",
        actor_key_prefix=caller.prefix if caller else "", actor_key_suffix=caller.suffix if caller else "",
        action=(route.action if route is not None and route.action else rules.action(request.method, path)),
        target_type=rules.target_type(path), target_id=str(rules.mask(target_id))[:TEXT_LIMIT],
        method=request.method, path=path, status_code=status, error_message=error,
        ip_address=request.remote or "", user_agent=headers.get("User-Agent", "")[:TEXT_LIMIT],
        source=headers.get("X-Daytona-Source", "")[:TEXT_LIMIT],
        sdk_version=headers.get("X-Daytona-SDK-Version", "")[:TEXT_LIMIT],
        duration_ms=round(seconds * 1000, 3), metadata=metadata)


def auditing(writer: AuditWriter):  # type: ignore[no-untyped-def]
    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if not request.path.startswith("/api/") or request.path.startswith(REALTIME_PATH):
            return await handler(request)
        route: Route | None = request.app[ROUTE_TABLE].get(request.match_info.route)
        if not audited(request.method, route):
            return await handler(request)
        started = time.perf_counter()
        response: web.StreamResponse | None = None
        status, read_body = 500, True
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        except asyncio.CancelledError:
            status, read_body = 499, False  # the client went away before its answer
            raise
        finally:
            entry = await entry_for(request, route, status, response, time.perf_counter() - started, read_body)
            await writer.record(entry)

    return middleware
