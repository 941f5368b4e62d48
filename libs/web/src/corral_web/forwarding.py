"""Forwarding HTTP through a service (the proxy to a runner, a runner to an app in a sandbox): which
headers travel, and a response streamed back chunk by chunk as it arrives (server-sent events and
chunked bodies are never buffered)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
"""Headers of one hop only (RFC 9110 §7.6.1), never forwarded."""
SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
"""Headers aiohttp would add to a forwarded request that did not carry them."""


def _connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    return {token.strip().lower() for value in headers.getall("Connection", []) for token in value.split(",")}


def request_headers(headers: CIMultiDictProxy[str], drop: Iterable[str] = ()) -> CIMultiDict[str]:
    """The headers of a request to forward: all but hop-by-hop ones (and those its `Connection` names),
    `Host` (the caller sets it) and `drop`. `Content-Length` stays, so the next hop sees the body's size
    (many small servers cannot read a chunked request body)."""
    excluded = HOP_BY_HOP | _connection_tokens(headers) | {"host"} | {name.lower() for name in drop}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in excluded)


Rewrite = Callable[[str, str], str]


async def relay_response(request: web.Request, upstream: aiohttp.ClientResponse, *, drop: Iterable[str] = (),
                         rewrite: Rewrite | None = None, extra: Iterable[tuple[str, str]] = ()) -> web.StreamResponse:
    """Answer `request` with `upstream`'s status, headers (repeated ones such as `Set-Cookie` kept; `drop`
    left out; each value passed through `rewrite(name, value)`; `extra` added) and body, each chunk
    written as soon as it arrives. If the upstream breaks off midway, the client's connection is cut
    too, so a truncated body is never taken for a whole one."""
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    excluded = HOP_BY_HOP | _connection_tokens(upstream.headers) | {"content-length"} | {d.lower() for d in drop}
    for key, value in upstream.headers.items():
        if key.lower() not in excluded:
            response.headers.add(key, rewrite(key, value) if rewrite else value)
    for key, value in extra:
        response.headers.add(key, value)
    chunked = "chunked" in upstream.headers.get("Transfer-Encoding", "").lower()
    if upstream.content_length is not None and not chunked:
        response.content_length = upstream.content_length
    await response.prepare(request)
    try:
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, ConnectionError):
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


__all__ = ["HOP_BY_HOP", "SKIP_AUTO_HEADERS", "relay_response", "request_headers"]
