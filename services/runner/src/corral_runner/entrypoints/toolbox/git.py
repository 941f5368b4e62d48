"""Toolbox: `/git/*` (daytona-wire.md §5.4). Git failures carry `source: DAYTONA_DAEMON` and a `GIT_*` code."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import web

from corral_agent.client import AgentUnavailable
from corral_web import HttpError, decode_json, reply

from ...app.git import Git
from ...app.git_commands import InvalidGitRequest
from ...app.git_errors import GitFailure
from ...app.git_requests import (AddRemoteRequest, AddRequest, AuthenticateRequest, BranchRequest, CheckoutRequest,
                                 CloneRequest, CommitRequest, ConfigureUserRequest, InitRequest, PullRequest,
                                 PushRequest, ResetRequest, RestoreRequest, SetConfigRequest)
from ...app.toolbox import AgentError
from .common import DAEMON, PREFIX, TOOLBOX, sandbox_id

routes = web.RouteTableDef()
T = TypeVar("T")


async def _git(request: web.Request, call: Awaitable[T]) -> T:
    try:
        return await call
    except GitFailure as failure:
        raise HttpError(failure.status, failure.message, failure.code, DAEMON) from None
    except InvalidGitRequest as error:
        raise HttpError(400, str(error), "BAD_REQUEST", DAEMON) from None
    except AgentError as error:
        raise HttpError(400 if error.code == "BAD_REQUEST" else 502, error.message, error.code, DAEMON) from None
    except AgentUnavailable:
        raise HttpError(502, f"Sandbox {sandbox_id(request)} is not running on this runner", "SANDBOX_NOT_RUNNING",
                        DAEMON) from None


def _git_of(request: web.Request) -> Git:
    return Git(request.app[TOOLBOX])


def _query(request: web.Request, name: str, *, required: bool = True) -> str | None:
    value = request.query.get(name)
    if required and not value:
        raise HttpError(400, f"the query parameter '{name}' is required", "BAD_REQUEST", DAEMON)
    return value or None


async def _body(request: web.Request, kind: type) -> Any:
    return await decode_json(request, kind, empty_ok=False)


@routes.post(PREFIX + "/git/clone")
async def clone(request: web.Request) -> web.Response:
    body = await _body(request, CloneRequest)
    await _git(request, _git_of(request).clone(sandbox_id(request), body))
    return reply({})


@routes.get(PREFIX + "/git/status")
async def status(request: web.Request) -> web.Response:
    path = _query(request, "path")
    return reply(await _git(request, _git_of(request).status(sandbox_id(request), path or "")))


@routes.get(PREFIX + "/git/branches")
async def branches(request: web.Request) -> web.Response:
    path = _query(request, "path")
    return reply(await _git(request, _git_of(request).branches(sandbox_id(request), path or "")))


@routes.post(PREFIX + "/git/branches")
async def create_branch(request: web.Request) -> web.Response:
    body = await _body(request, BranchRequest)
    await _git(request, _git_of(request).create_branch(sandbox_id(request), body))
    return reply({}, status=201)


@routes.delete(PREFIX + "/git/branches")
async def delete_branch(request: web.Request) -> web.Response:
    body = await _body(request, BranchRequest)
    await _git(request, _git_of(request).delete_branch(sandbox_id(request), body))
    return web.Response(status=204)


@routes.post(PREFIX + "/git/checkout")
async def checkout(request: web.Request) -> web.Response:
    body = await _body(request, CheckoutRequest)
    await _git(request, _git_of(request).checkout(sandbox_id(request), body))
    return reply({})


@routes.post(PREFIX + "/git/add")
async def add(request: web.Request) -> web.Response:
    body = await _body(request, AddRequest)
    await _git(request, _git_of(request).add(sandbox_id(request), body))
    return reply({})


@routes.post(PREFIX + "/git/commit")
async def commit(request: web.Request) -> web.Response:
    body = await _body(request, CommitRequest)
    return reply(await _git(request, _git_of(request).commit(sandbox_id(request), body)))


@routes.post(PREFIX + "/git/push")
async def push(request: web.Request) -> web.Response:
    body = await _body(request, PushRequest)
    await _git(request, _git_of(request).push(sandbox_id(request), body))
    return reply({})


@routes.post(PREFIX + "/git/pull")
async def pull(request: web.Request) -> web.Response:
    body = await _body(request, PullRequest)
    await _git(request, _git_of(request).pull(sandbox_id(request), body))
    return reply({})


@routes.get(PREFIX + "/git/history")
async def history(request: web.Request) -> web.Response:
    path = _query(request, "path")
    return reply(await _git(request, _git_of(request).history(sandbox_id(request), path or "")))


@routes.post(PREFIX + "/git/init")
async def init(request: web.Request) -> web.Response:
    body = await _body(request, InitRequest)
    await _git(request, _git_of(request).init(sandbox_id(request), body))
    return reply({}, status=201)


@routes.post(PREFIX + "/git/reset")
async def reset(request: web.Request) -> web.Response:
    body = await _body(request, ResetRequest)
    await _git(request, _git_of(request).reset(sandbox_id(request), body))
    return reply({})


@routes.post(PREFIX + "/git/restore")
async def restore(request: web.Request) -> web.Response:
    body = await _body(request, RestoreRequest)
    await _git(request, _git_of(request).restore(sandbox_id(request), body))
    return reply({})


@routes.get(PREFIX + "/git/remotes")
async def remotes(request: web.Request) -> web.Response:
    path = _query(request, "path")
    return reply(await _git(request, _git_of(request).remotes(sandbox_id(request), path or "")))


@routes.post(PREFIX + "/git/remotes")
async def add_remote(request: web.Request) -> web.Response:
    body = await _body(request, AddRemoteRequest)
    await _git(request, _git_of(request).add_remote(sandbox_id(request), body))
    return reply({}, status=201)


@routes.get(PREFIX + "/git/config")
async def get_config(request: web.Request) -> web.Response:
    key = _query(request, "key")
    scope, path = _query(request, "scope", required=False), _query(request, "path", required=False)
    return reply(await _git(request, _git_of(request).get_config(sandbox_id(request), key or "", scope, path)))


@routes.post(PREFIX + "/git/config")
async def set_config(request: web.Request) -> web.Response:
    body = await _body(request, SetConfigRequest)
    await _git(request, _git_of(request).set_config(sandbox_id(request), body))
    return reply({})


@routes.post(PREFIX + "/git/config/user")
async def configure_user(request: web.Request) -> web.Response:
    body = await _body(request, ConfigureUserRequest)
    await _git(request, _git_of(request).configure_user(sandbox_id(request), body))
    return reply({})


@routes.post(PREFIX + "/git/credentials")
async def authenticate(request: web.Request) -> web.Response:
    body = await _body(request, AuthenticateRequest)
    await _git(request, _git_of(request).authenticate(sandbox_id(request), body))
    return reply({})
