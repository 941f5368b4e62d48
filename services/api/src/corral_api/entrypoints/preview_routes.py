"""REST routes of preview URLs (daytona-wire.md §5.10) and the proxy's wake-on-visit desk.

`http.ROUTES` includes `ROUTES`; bootstrap sets `PREVIEWS` on the app and serves `WakeDesk` on the
`PREVIEW_WAKE` subject.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from corral_contracts import codecs
from corral_contracts.preview import PreviewWakeReply
from corral_web import reply

from ..app.previews import PreviewService
from ..domain import previews as domain
from ..domain.errors import InvalidRequest
from ..domain.identity import AUTHENTICATED, WRITE_SANDBOXES
from . import dto
from .request_context import event_meta, organization, sandbox_reply
from .routes import Query, Route

PREVIEWS = web.AppKey("previews", PreviewService)


class PortPreviewUrlDto(msgspec.Struct, rename="camel", kw_only=True):
    sandbox_id: str
    url: str
    token: str


class SignedPortPreviewUrlDto(msgspec.Struct, rename="camel", kw_only=True):
    sandbox_id: str
    port: int
    token: str
    url: str


def _port(request: web.Request) -> int:
    return domain.port_of(request.match_info["port"])


async def preview_url(request: web.Request) -> web.Response:
    sandbox, url = await request.app[PREVIEWS].link(organization(request), request.match_info["id"], _port(request))
    return reply(PortPreviewUrlDto(sandbox_id=sandbox.id, url=url, token=sandbox.preview_token))


async def signed_preview_url(request: web.Request) -> web.Response:
    port = _port(request)
    seconds = domain.lifetime_of(request.query.get("expiresInSeconds"))
    link = await request.app[PREVIEWS].sign(organization(request), request.match_info["id"], port, seconds,
                                            event_meta(request))
    return reply(SignedPortPreviewUrlDto(sandbox_id=link.sandbox_id, port=link.port, token=link.token, url=link.url))


async def expire_signed_preview_url(request: web.Request) -> web.Response:
    await request.app[PREVIEWS].expire(organization(request), request.match_info["id"], _port(request),
                                       request.match_info["token"], event_meta(request))
    return web.Response(status=200)


async def set_public(request: web.Request) -> web.Response:
    flag = request.match_info["is_public"].lower()
    if flag not in ("true", "false"):
        raise InvalidRequest("isPublic must be true or false")
    sandbox = await request.app[PREVIEWS].set_public(organization(request), request.match_info["id"], flag == "true",
                                                     event_meta(request))
    return sandbox_reply(request, sandbox)


PORT = "/api/sandbox/{id}/ports/{port}"
ROUTES: tuple[Route, ...] = (
    Route("GET", PORT + "/preview-url", preview_url,
          "The preview URL of a port, and the token that opens it while the sandbox is private",
          response=PortPreviewUrlDto, permission=AUTHENTICATED),
    Route("GET", PORT + "/signed-preview-url", signed_preview_url,
          "A preview URL that needs no other credential, for expiresInSeconds (1-86400, default 60)",
          response=SignedPortPreviewUrlDto,
          query=(Query("expiresInSeconds", {"type": "integer", "minimum": domain.MIN_SECONDS,
                                            "maximum": domain.MAX_SECONDS}),),
          permission=WRITE_SANDBOXES, action="create_signed_preview_url"),
    Route("POST", PORT + "/signed-preview-url/{token}/expire", expire_signed_preview_url,
          "Revoke a signed preview URL now", permission=WRITE_SANDBOXES, action="expire_signed_preview_url"),
    Route("POST", "/api/sandbox/{id}/public/{is_public}", set_public,
          "Make the sandbox's previews public (no credentials) or private", response=dto.SandboxDto,
          permission=WRITE_SANDBOXES, action="update_public_status"),
)


class WakeDesk:
    """Answers the proxy: a preview of a stopped sandbox was visited by an authorised caller."""

    def __init__(self, previews: PreviewService):
        self._previews = previews

    async def handle(self, data: bytes) -> bytes:
        request = codecs.preview_wake_request.decode(data)
        outcome = await self._previews.wake(request.sandbox_id, request.reason)
        return codecs.encode(PreviewWakeReply(accepted=outcome.accepted, state=outcome.state, message=outcome.message))
