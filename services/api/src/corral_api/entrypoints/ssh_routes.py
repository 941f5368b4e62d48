"""REST of SSH access (Daytona's wire, see daytona-wire.md §5.11): issue, revoke, validate tokens.

Included in the api's route table by `http.py` (so they are in the OpenAPI document too).
"""

from __future__ import annotations

import re

import msgspec
from aiohttp import web

from corral_web import reply

from ..app.ssh_access import SshAccessService
from ..domain.errors import InvalidRequest
from ..domain.identity import AUTHENTICATED, WRITE_SANDBOXES
from . import dto
from .request_context import event_meta, organization, sandbox_reply
from .routes import Query, Route

SSH_ACCESS = web.AppKey("ssh_access", SshAccessService)
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9]{32}")


class SshAccessDto(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    sandbox_id: str
    token: str
    expires_at: str
    created_at: str
    updated_at: str
    ssh_command: str


class SshAccessValidationDto(msgspec.Struct, rename="camel", kw_only=True):
    valid: bool
    sandbox_id: str


async def create_ssh_access(request: web.Request) -> web.Response:
    raw = request.query.get("expiresInMinutes")
    try:
        minutes = int(raw) if raw not in (None, "") else None
    except ValueError:
        raise InvalidRequest("expiresInMinutes must be a whole number of minutes") from None
    issued = await request.app[SSH_ACCESS].create(organization(request), request.match_info["id"], minutes,
                                                  event_meta(request))
    access = issued.access
    return reply(SshAccessDto(id=access.id, sandbox_id=access.sandbox_id, token=issued.token,
                              expires_at=dto.iso(access.expires_at), created_at=dto.iso(access.created_at),
                              updated_at=dto.iso(access.updated_at), ssh_command=issued.command))


SDK_TOKEN_HEADER = "X-Daytona-Organization-ID"
"""The official SDK (0.226.1) passes `revoke_ssh_access(token)`'s token positionally into the generated
client's organization-id argument, so it arrives in this header with no `token` query. With an API key the
header means nothing else (it is sent only with JWTs), so it is read as the token: the SDK call revokes the
one token it names, not every token of the sandbox."""


async def revoke_ssh_access(request: web.Request) -> web.Response:
    token = request.query.get("token") or None
    if token is None and TOKEN_SHAPE.fullmatch(request.headers.get(SDK_TOKEN_HEADER, "")):
        token = request.headers[SDK_TOKEN_HEADER]
    sandbox = await request.app[SSH_ACCESS].revoke(organization(request), request.match_info["id"], token,
                                                   event_meta(request))
    return sandbox_reply(request, sandbox)


async def validate_ssh_access(request: web.Request) -> web.Response:
    token = request.query.get("token", "")
    if not token:
        raise InvalidRequest("token is required")
    valid, sandbox_id = await request.app[SSH_ACCESS].validate(organization(request), token)
    return reply(SshAccessValidationDto(valid=valid, sandbox_id=sandbox_id))


ID = "/api/sandbox/{id}"
ROUTES: tuple[Route, ...] = (
    Route("POST", ID + "/ssh-access", create_ssh_access,
          "Issue an SSH access token: `ssh -p <port> <token>@<host>` reaches the sandbox (earlier tokens stay valid)",
          response=SshAccessDto,
          query=(Query("expiresInMinutes", {"type": "integer", "minimum": 1, "default": 60},
                       "Minutes the token is valid (at most 10080)"),),
          permission=WRITE_SANDBOXES, action="create_ssh_access"),
    Route("DELETE", ID + "/ssh-access", revoke_ssh_access,
          "Revoke one SSH access token of the sandbox, or all of them when `token` is omitted",
          response=dto.SandboxDto, query=(Query("token", {"type": "string"}),), permission=WRITE_SANDBOXES,
          action="revoke_ssh_access"),
    Route("GET", "/api/sandbox/ssh-access/validate", validate_ssh_access,
          "Whether an SSH access token would log in now, and its sandbox", response=SshAccessValidationDto,
          query=(Query("token", {"type": "string"}),), permission=AUTHENTICATED),
)
