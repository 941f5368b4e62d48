"""The HTTP edge shared by every service.

Every failure leaves a service as `{"statusCode", "message", "code"}` JSON (plus `source` where the
Daytona SDK maps it to a finer exception), never as a traceback or an HTML page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

log = logging.getLogger(__name__)

_encode = msgspec.json.encode

CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
         408: "TIMEOUT", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
         429: "TOO_MANY_REQUESTS", 500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE",
         504: "GATEWAY_TIMEOUT"}


class ErrorBody(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    status_code: int
    message: str
    code: str
    source: str | None = None


class HttpError(Exception):
    """Raise from a handler to answer with a JSON error."""

    def __init__(self, status: int, message: str, code: str | None = None, source: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "ERROR")
        self.source = source


def error_response(status: int, message: str, code: str | None = None, source: str | None = None) -> web.Response:
    body = ErrorBody(status_code=status, message=message, code=code or CODES.get(status, "ERROR"), source=source)
    return web.Response(status=status, body=_encode(body), content_type="application/json")


def reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_encode(body), content_type="application/json")


async def decode_json(request: web.Request, kind: type, *, empty_ok: bool = True) -> Any:
    """Strictly typed body: wrong types raise `msgspec.ValidationError` (-> 400); unknown keys are ignored."""
    raw = await request.read()
    if not raw and not empty_ok:
        raise HttpError(400, "A JSON body is required")
    return msgspec.json.decode(raw or b"{}", type=kind)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_errors(*domain_errors: type[Exception]):  # type: ignore[no-untyped-def]
    """Middleware. `domain_errors` are exception types carrying `status`, `message` and `code`."""
    known = (HttpError, *domain_errors)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except known as error:
            return error_response(error.status, error.message, error.code,  # type: ignore[attr-defined]
                                  getattr(error, "source", None))
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            return error_response(400, f"Invalid request body: {error}", "VALIDATION_ERROR")
        except web.HTTPException as error:
            if error.status < 400:
                raise
            response = error_response(error.status, error.reason or "", None)
            if "Allow" in error.headers:  # a 405 names the methods the resource has (RFC 9110)
                response.headers["Allow"] = error.headers["Allow"]
            return response
        except ConnectionResetError:  # the client went away mid-request: nothing failed on our side
            log.info("client closed the connection during %s %s", request.method, request.path)
            return error_response(400, "The connection closed before the request was complete",
                                  "CLIENT_CLOSED_REQUEST")
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            return error_response(500, "Internal server error", "INTERNAL_ERROR")

    return middleware


__all__ = ["CODES", "ErrorBody", "HttpError", "decode_json", "error_response", "json_errors", "reply"]
