"""The bodies of the toolbox's `/git/*` requests, as the Daytona SDK sends them (snake_case keys)."""

from __future__ import annotations

import msgspec


class CloneRequest(msgspec.Struct, kw_only=True):
    url: str
    path: str
    branch: str | None = None
    commit_id: str | None = None
    username: str | None = None
    password: str | None = None
    insecure_skip_tls: bool | None = None
    depth: int | None = None


class BranchRequest(msgspec.Struct, kw_only=True):
    """Create (`POST /git/branches`) or delete (`DELETE /git/branches`) a branch."""

    path: str
    name: str


class CheckoutRequest(msgspec.Struct, kw_only=True):
    path: str
    branch: str


class AddRequest(msgspec.Struct, kw_only=True):
    path: str
    files: list[str]


class CommitRequest(msgspec.Struct, kw_only=True):
    path: str
    message: str
    author: str
    email: str
    allow_empty: bool | None = None


class PushRequest(msgspec.Struct, kw_only=True):
    path: str
    username: str | None = None
    password: str | None = None
    branch: str | None = None
    remote: str | None = None
    set_upstream: bool | None = None


class PullRequest(msgspec.Struct, kw_only=True):
    path: str
    username: str | None = None
    password: str | None = None
    branch: str | None = None
    remote: str | None = None


class InitRequest(msgspec.Struct, kw_only=True):
    path: str
    bare: bool | None = None
    initial_branch: str | None = None


class ResetRequest(msgspec.Struct, kw_only=True):
    path: str
    mode: str | None = None
    target: str | None = None
    files: list[str] | None = None


class RestoreRequest(msgspec.Struct, kw_only=True):
    path: str
    files: list[str]
    staged: bool | None = None
    worktree: bool | None = None
    source: str | None = None


class AddRemoteRequest(msgspec.Struct, kw_only=True):
    path: str
    name: str
    url: str
    fetch: bool | None = None
    overwrite: bool | None = None


class SetConfigRequest(msgspec.Struct, kw_only=True):
    key: str
    value: str
    scope: str | None = None
    path: str | None = None


class ConfigureUserRequest(msgspec.Struct, kw_only=True):
    name: str
    email: str
    scope: str | None = None
    path: str | None = None


class AuthenticateRequest(msgspec.Struct, kw_only=True):
    username: str
    password: str
    host: str | None = None
    protocol: str | None = None
