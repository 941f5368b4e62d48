"""Each git request as a plan: the `git` argv lists to run in the sandbox, in order (pure, no I/O).

User values only ever become single argv elements, never shell text. Option-looking values are
refused or placed after `--`; options that take a value use the `--name=value` form. Credentials
never appear in an argv: they travel in the plan's `credentials` and reach git through a credential
helper that reads them from the environment of the git process (see git_exec.py).
"""

from __future__ import annotations

import msgspec

from .git_requests import (AddRemoteRequest, AddRequest, AuthenticateRequest, BranchRequest, CheckoutRequest,
                           CloneRequest, CommitRequest, ConfigureUserRequest, InitRequest, PullRequest, PushRequest,
                           ResetRequest, RestoreRequest, SetConfigRequest)

LOCAL_TIMEOUT = 600.0
NETWORK_TIMEOUT = 3600.0
HISTORY_LIMIT = 10_000
"""`GET /git/history` lists at most this many commits, newest first."""

CREDENTIAL_HELPER = ('!f() { test "$1" = get || return 0; '
                     """printf 'username=%s\\npassword=%s\\n' "$CORRAL_GIT_USERNAME" "$CORRAL_GIT_PASSWORD"; }; f""")
"""Answers git's `get` from two environment variables of the git process; `printf` is a shell builtin,
so the secret is in no process's argv."""

RESET_MODES = ("soft", "mixed", "hard", "merge", "keep")
SCOPES = ("global", "local", "system")


class InvalidGitRequest(ValueError):
    """The request cannot be turned into a safe git command (-> 400)."""


class Credentials(msgspec.Struct, frozen=True):
    username: str
    password: str


class Step(msgspec.Struct, frozen=True, kw_only=True):
    argv: list[str]
    ok: tuple[int, ...] = (0,)
    """Exit codes that count as success; the first other code ends the plan."""
    env: dict[str, str] = {}
    input: str | None = None
    """Text fed to the step's stdin (otherwise /dev/null)."""


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    op: str
    steps: list[Step]
    credentials: Credentials | None = None
    timeout: float = LOCAL_TIMEOUT
    network: bool = False


def _text(value: str, what: str) -> str:
    if not value or "\0" in value or "\n" in value:
        raise InvalidGitRequest(f"{what} must be a non-empty single line")
    return value


def _name(value: str, what: str) -> str:
    """A ref, remote or branch name: never something git would read as an option."""
    if _text(value, what).startswith("-"):
        raise InvalidGitRequest(f"{what} must not start with '-'")
    return value


def _path(value: str) -> str:
    return _text(value, "path")


def _files(files: list[str]) -> list[str]:
    if not files:
        raise InvalidGitRequest("files must list at least one path")
    return [_text(f, "each file") for f in files]


def _in(path: str, *args: str) -> list[str]:
    return ["git", "-C", _path(path), *args]


def _credentials(username: str | None, password: str | None) -> Credentials | None:
    if username is None and password is None:
        return None
    for value in (username, password):
        if value is not None and ("\n" in value or "\0" in value):
            raise InvalidGitRequest("username and password must not contain line breaks")
    return Credentials(username=username or "git", password=password or "")


def _remote_options(credentials: Credentials | None, insecure: bool = False) -> list[str]:
    options = ["-c", "protocol.ext.allow=never"]
    if credentials is not None:  # an empty helper first: no configured helper sees or stores these
        options += ["-c", "credential.helper=", "-c", f"credential.helper={CREDENTIAL_HELPER}"]
    if insecure:
        options += ["-c", "http.sslVerify=false"]
    return options


def clone(request: CloneRequest) -> Plan:
    credentials = _credentials(request.username, request.password)
    argv = ["git", *_remote_options(credentials, bool(request.insecure_skip_tls)), "clone"]
    if request.branch:
        argv.append(f"--branch={_name(request.branch, 'branch')}")
    if request.depth is not None:
        if request.depth < 1:
            raise InvalidGitRequest("depth must be a positive number of commits")
        argv.append(f"--depth={request.depth}")
    argv += ["--", _text(request.url, "url"), _path(request.path)]
    steps = [Step(argv=argv)]
    if request.commit_id:
        steps.append(Step(argv=_in(request.path, "-c", "advice.detachedHead=false", "checkout", "--detach",
                                   _name(request.commit_id, "commit_id"), "--")))
    return Plan(op="clone", steps=steps, credentials=credentials, timeout=NETWORK_TIMEOUT, network=True)


def fetch_commit(request: CloneRequest) -> Plan:
    """A shallow clone may lack `commit_id`: fetch it alone, then check it out."""
    credentials = _credentials(request.username, request.password)
    commit = _name(request.commit_id or "", "commit_id")
    fetch = ["git", *_remote_options(credentials, bool(request.insecure_skip_tls)), "-C", _path(request.path),
             "fetch", f"--depth={request.depth or 1}", "origin", commit]
    checkout = _in(request.path, "-c", "advice.detachedHead=false", "checkout", "--detach", commit, "--")
    return Plan(op="clone", steps=[Step(argv=fetch), Step(argv=checkout)], credentials=credentials,
                timeout=NETWORK_TIMEOUT, network=True)


def status(path: str) -> Plan:
    return Plan(op="status", steps=[Step(argv=_in(path, "status", "--porcelain=v2", "--branch", "-z",
                                                   "--untracked-files=all"))])


def branches(path: str) -> Plan:
    return Plan(op="branches", steps=[
        Step(argv=_in(path, "for-each-ref", "--format=%(refname:short)", "refs/heads/")),
        Step(argv=_in(path, "symbolic-ref", "--quiet", "--short", "HEAD"), ok=(0, 1)),
    ])


def create_branch(request: BranchRequest) -> Plan:
    """As Daytona's daemon: the new branch starts at HEAD and is checked out."""
    return Plan(op="create_branch", steps=[Step(argv=_in(request.path, "checkout", "-b",
                                                         _name(request.name, "name")))])


def delete_branch(request: BranchRequest) -> Plan:
    return Plan(op="delete_branch", steps=[Step(argv=_in(request.path, "branch", "-D", "--",
                                                         _name(request.name, "name")))])


def checkout(request: CheckoutRequest) -> Plan:
    """A local branch, or a remote one of the same name (then tracked), or a commit (detached HEAD)."""
    return Plan(op="checkout", steps=[Step(argv=_in(request.path, "-c", "advice.detachedHead=false",
                                                    "checkout", _name(request.branch, "branch"), "--"))])


def add(request: AddRequest) -> Plan:
    return Plan(op="add", steps=[Step(argv=_in(request.path, "add", "--", *_files(request.files)))])


def commit(request: CommitRequest) -> Plan:
    author, email = _text(request.author, "author"), _text(request.email, "email")
    identity = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": author, "GIT_COMMITTER_EMAIL": email}
    argv = _in(request.path, "commit", "--quiet", "--no-edit", f"--message={request.message}")
    if request.allow_empty:
        argv.append("--allow-empty")
    if "\0" in request.message:
        raise InvalidGitRequest("message must not contain NUL characters")
    return Plan(op="commit", steps=[Step(argv=argv, env=identity), Step(argv=_in(request.path, "rev-parse", "HEAD"))])


def push(request: PushRequest) -> Plan:
    credentials = _credentials(request.username, request.password)
    argv = ["git", *_remote_options(credentials), "-C", _path(request.path), "push"]
    if request.set_upstream:
        argv.append("--set-upstream")
    argv += [_name(request.remote or "origin", "remote"), _name(request.branch, "branch") if request.branch else "HEAD"]
    return Plan(op="push", steps=[Step(argv=argv)], credentials=credentials, timeout=NETWORK_TIMEOUT, network=True)


def pull(request: PullRequest) -> Plan:
    credentials = _credentials(request.username, request.password)
    argv = ["git", *_remote_options(credentials), "-C", _path(request.path), "pull", "--no-edit"]
    if request.remote or request.branch:
        argv.append(_name(request.remote or "origin", "remote"))
    if request.branch:
        argv.append(_name(request.branch, "branch"))
    return Plan(op="pull", steps=[Step(argv=argv)], credentials=credentials, timeout=NETWORK_TIMEOUT, network=True)


def history(path: str) -> Plan:
    return Plan(op="history", steps=[Step(argv=_in(path, "log", f"--max-count={HISTORY_LIMIT}", "-z",
                                                   "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%B"))])


def has_commits(path: str) -> Plan:
    return Plan(op="history", steps=[Step(argv=_in(path, "rev-parse", "--verify", "--quiet", "HEAD"), ok=(0, 1))])


def init(request: InitRequest) -> Plan:
    argv = ["git", "init", "--quiet"]
    if request.bare:
        argv.append("--bare")
    if request.initial_branch:
        argv.append(f"--initial-branch={_name(request.initial_branch, 'initial_branch')}")
    return Plan(op="init", steps=[Step(argv=[*argv, "--", _path(request.path)])])


def reset(request: ResetRequest) -> Plan:
    mode = request.mode or "mixed"
    if mode not in RESET_MODES:
        raise InvalidGitRequest(f"mode must be one of {', '.join(RESET_MODES)}")
    target = _name(request.target or "HEAD", "target")
    if request.files:
        if mode != "mixed":
            raise InvalidGitRequest("only a mixed reset can be limited to files")
        return Plan(op="reset", steps=[Step(argv=_in(request.path, "reset", "--quiet", target, "--",
                                                     *_files(request.files)))])
    return Plan(op="reset", steps=[Step(argv=_in(request.path, "reset", "--quiet", f"--{mode}", target, "--"))])


def restore(request: RestoreRequest) -> Plan:
    argv = _in(request.path, "restore")
    if request.staged:
        argv.append("--staged")
    if request.worktree or not request.staged:
        argv.append("--worktree")
    if request.source:
        argv.append(f"--source={_name(request.source, 'source')}")
    return Plan(op="restore", steps=[Step(argv=[*argv, "--", *_files(request.files)])])


def remotes(path: str) -> Plan:
    return Plan(op="remotes", steps=[Step(argv=_in(path, "config", "-z", "--get-regexp", r"^remote\..*\.url$"),
                                          ok=(0, 1))])


def add_remote(request: AddRemoteRequest) -> Plan:
    name, url = _name(request.name, "name"), _text(request.url, "url")
    steps = [Step(argv=_in(request.path, "remote", "remove", name), ok=(0, 2))] if request.overwrite else []
    add_argv = _in(request.path, "-c", "protocol.ext.allow=never", "remote", "add")
    if request.fetch:
        add_argv.append("-f")
    steps.append(Step(argv=[*add_argv, "--", name, url]))
    return Plan(op="add_remote", steps=steps, timeout=NETWORK_TIMEOUT if request.fetch else LOCAL_TIMEOUT,
                network=bool(request.fetch))


def _config(scope: str | None, path: str | None) -> list[str]:
    scope = scope or "global"
    if scope not in SCOPES:
        raise InvalidGitRequest(f"scope must be one of {', '.join(SCOPES)}")
    if scope == "local":
        if not path:
            raise InvalidGitRequest("path is required for the local scope")
        return _in(path, "config", "--local")
    return ["git", "config", f"--{scope}"]


def get_config(key: str, scope: str | None, path: str | None) -> Plan:
    return Plan(op="config", steps=[Step(argv=[*_config(scope, path), "--get", "--", _name(key, "key")], ok=(0, 1))])


def set_config(request: SetConfigRequest) -> Plan:
    argv = [*_config(request.scope, request.path), "--replace-all", "--", _name(request.key, "key"), request.value]
    if "\0" in request.value:
        raise InvalidGitRequest("value must not contain NUL characters")
    return Plan(op="config", steps=[Step(argv=argv)])


def configure_user(request: ConfigureUserRequest) -> Plan:
    base = _config(request.scope, request.path)
    return Plan(op="config", steps=[Step(argv=[*base, "--replace-all", "user.name", _text(request.name, "name")]),
                                    Step(argv=[*base, "--replace-all", "user.email", _text(request.email, "email")])])


def authenticate(request: AuthenticateRequest) -> Plan:
    """Persist the credentials in git's plain-text credential store (the SDK calls this `dangerously_...`)."""
    credentials = _credentials(request.username, request.password)
    assert credentials is not None
    description = (f"protocol={_name(request.protocol or 'https', 'protocol')}\n"
                   f"host={_name(request.host or 'github.com', 'host')}\n"
                   f"username={credentials.username}\npassword={credentials.password}\n\n")
    return Plan(op="authenticate", steps=[
        Step(argv=["git", "config", "--global", "--replace-all", "credential.helper", "store", "^store$"]),
        Step(argv=["git", "-c", "credential.helper=", "-c", "credential.helper=store", "credential", "approve"],
             input=description),
    ])
