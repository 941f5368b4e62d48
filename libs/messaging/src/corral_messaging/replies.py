"""Request/reply: answering a request in its caller's trace, and turning a failed answer into an error."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from corral_observability import span_from_headers

from .errors import RemoteError
from .headers import ERROR, header_value
from .port import RequestHandler

log = logging.getLogger("corral_messaging")

SERVE_QUEUE_GROUP = "api"


async def answer(handler: RequestHandler, subject: str, data: bytes,
                 headers: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """The reply payload and headers; a failing handler is logged and answered with `Corral-Error`."""
    with span_from_headers(f"serve {subject}", headers) as span:
        try:
            return await handler(data), {}
        except Exception as exc:
            span.record_exception(exc)
            log.exception("request handler failed on %s", subject)
            return b"", {ERROR: header_value(f"{type(exc).__name__}: {exc}") or type(exc).__name__}


def reply_payload(subject: str, data: bytes, headers: Mapping[str, str] | None) -> bytes:
    """The payload of a reply, or `RemoteError` if the server failed."""
    error = (headers or {}).get(ERROR)
    if error is not None:
        raise RemoteError(f"{subject}: {error}")
    return data
