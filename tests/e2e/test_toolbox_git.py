"""`sandbox.git` through the official SDK, sync and async, against repositories the tests make inside
the sandbox: a bare repository reached by path and file:// URL, and one served over git's smart HTTP
protocol with basic auth from inside the same sandbox (never the internet).

Each scenario body is written once, as a coroutine; `call` runs a sync SDK method in a thread or
awaits an async one, so both clients go through the very same steps.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from daytona import AsyncDaytona, CreateSandboxFromSnapshotParams, Daytona
from daytona.common.errors import (DaytonaConflictError, DaytonaGitAuthFailedError, DaytonaGitBranchExistsError,
                                   DaytonaGitBranchNotFoundError, DaytonaGitDirtyWorktreeError,
                                   DaytonaGitMergeConflictError, DaytonaGitPushRejectedError,
                                   DaytonaGitRemoteRejectedError, DaytonaGitRepoNotFoundError,
                                   DaytonaGitTransportFailedError)
from daytona_toolbox_api_client import GitApi
from daytona_toolbox_api_client_async import GitApi as AsyncGitApi

from corral_stack.stack import Stack
from corral_testing.waiting import wait_for
from .conftest import config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

Call = Callable[..., Awaitable[Any]]
HOME = "/home/daytona"

GIT_SERVER = r'''
import base64, os, subprocess, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT, STATE = sys.argv[1], sys.argv[2]
with open(os.path.join(STATE, "auth")) as f:
    EXPECTED = "Basic " + base64.b64encode(f.read().strip().encode()).decode()


class GitHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.serve()

    def do_POST(self):
        self.serve()

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if not size:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def serve(self):
        if self.headers.get("Authorization") != EXPECTED:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="corral-test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        # what every process of the sandbox shows while its git client waits for this answer
        with open(os.path.join(STATE, "ps.log"), "ab") as log:
            log.write(subprocess.run(["ps", "-eo", "args"], stdout=subprocess.PIPE).stdout)
        path, _, query = self.path.partition("?")
        data = self.body()
        env = dict(os.environ, GIT_PROJECT_ROOT=ROOT, GIT_HTTP_EXPORT_ALL="1", REQUEST_METHOD=self.command,
                   PATH_INFO=path, QUERY_STRING=query, CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(data)), REMOTE_USER="tester", REMOTE_ADDR="127.0.0.1",
                   GIT_PROTOCOL=self.headers.get("Git-Protocol", ""),
                   HTTP_CONTENT_ENCODING=self.headers.get("Content-Encoding", ""))
        out = subprocess.run(["git", "http-backend"], input=data, env=env, stdout=subprocess.PIPE).stdout
        separator = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        head, _, payload = out.partition(separator)
        status, headers = 200, []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


server = ThreadingHTTPServer(("127.0.0.1", 0), GitHandler)
with open(os.path.join(STATE, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(STATE, "port.tmp"), os.path.join(STATE, "port"))
server.serve_forever()
'''



def make_call(asynchronous: bool) -> Call:
    async def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if asynchronous:
            result = method(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return await asyncio.to_thread(method, *args, **kwargs)
    return call


class Shell:
    """`process.exec` for setting the scene and checking results (not what is under test)."""

    def __init__(self, sandbox: Any, call: Call):
        self.sandbox, self.call = sandbox, call

    async def __call__(self, command: str, ok: bool = True) -> str:
        response = await self.call(self.sandbox.process.exec, command, timeout=60)
        if ok:
            assert response.exit_code == 0, (command, response.result)
        return str(response.result)


def names(status: Any) -> dict[str, tuple[str, str, str]]:
    return {f.name: (str(f.staging.value), str(f.worktree.value), f.extra) for f in status.file_status}


async def local_scenario(sandbox: Any, call: Call, history: Callable[[str], Any]) -> None:
    git, sh = sandbox.git, Shell(sandbox, call)
    await call(git.init, "srv/origin.git", bare=True, initial_branch="main")
    await call(git.clone, url=f"{HOME}/srv/origin.git", path="work")  # empty: relative path, path URL
    await sh("printf 'hello\\n' > work/README.md && printf 'a\\n' > work/old.txt")
    assert names(await call(git.status, "work")) == {"README.md": ("Untracked", "Untracked", ""),
                                                    "old.txt": ("Untracked", "Untracked", "")}
    await call(git.add, "work", ["README.md", "old.txt"])
    status = await call(git.status, f"{HOME}/work")
    assert names(status)["README.md"][0] == "Added" and status.current_branch == "main"
    first = await call(git.commit, "work", "first", "Ada Lovelace", "ada@example.com")
    assert first.sha == (await sh("git -C work rev-parse HEAD")).strip()
    assert (await sh("git -C work log -1 --format='%an <%ae> %s'")).strip() == "Ada Lovelace <ada@example.com> first"
    with pytest.raises(DaytonaConflictError):
        await call(git.commit, "work", "nothing", "Ada", "ada@example.com")
    empty = await call(git.commit, "work", "empty", "Ada", "ada@example.com", allow_empty=True)
    assert empty.sha != first.sha
    await call(git.push, "work", set_upstream=True)
    status = await call(git.status, "work")
    assert (status.upstream, status.ahead, status.behind, status.branch_published) == ("origin/main", 0, 0, True)
    assert status.file_status == [] and status.detached is False

    commits = await history("work")
    assert [c.hash for c in commits] == [empty.sha, first.sha] and commits[1].message == "first"
    assert commits[1].author == "Ada Lovelace" and commits[1].email == "ada@example.com"

    # status values: modified, renamed (original in `extra`), deleted, staged + modified
    await sh("cd work && printf 'more\\n' >> README.md && git mv old.txt new.txt && printf 'x\\n' > extra.txt"
             " && git add extra.txt && printf 'y\\n' >> extra.txt")
    assert names(await call(git.status, "work")) == {"README.md": ("Unmodified", "Modified", ""),
                                                    "new.txt": ("Renamed", "Unmodified", "old.txt"),
                                                    "extra.txt": ("Added", "Modified", "")}
    await call(git.restore, "work", ["extra.txt"], staged=True)
    await call(git.reset, "work", mode="hard")
    await sh("rm -f work/extra.txt")
    assert (await call(git.status, "work")).file_status == []

    # branches
    await call(git.create_branch, "work", "feature")
    listed = await call(git.branches, "work")
    assert sorted(listed.branches) == ["feature", "main"] and listed.current == "feature"
    with pytest.raises(DaytonaGitBranchExistsError):
        await call(git.create_branch, "work", "feature")
    await sh("cd work && printf 'f\\n' > f.txt && git add f.txt && git -c user.name=F -c user.email=f@x commit -qm f")
    await call(git.push, "work", branch="feature")
    await call(git.checkout_branch, "work", "main")
    assert (await call(git.branches, "work")).current == "main"
    with pytest.raises(DaytonaGitBranchNotFoundError):
        await call(git.checkout_branch, "work", "no-such-branch")
    await call(git.delete_branch, "work", "feature")
    assert (await call(git.branches, "work")).branches == ["main"]
    with pytest.raises(DaytonaGitBranchNotFoundError):
        await call(git.delete_branch, "work", "feature")
    await call(git.checkout_branch, "work", "feature")  # only on the remote: tracked again
    assert (await call(git.status, "work")).upstream == "origin/feature"
    await call(git.checkout_branch, "work", "main")

    # clone: branch, commit (detached), depth over file://, depth + an older commit
    await call(git.clone, url=f"{HOME}/srv/origin.git", path="by-branch", branch="feature")
    assert (await call(git.branches, "by-branch")).current == "feature"
    await call(git.clone, url=f"{HOME}/srv/origin.git", path="by-commit", commit_id=first.sha)
    detached = await call(git.status, "by-commit")
    assert detached.detached is True and detached.current_branch == "HEAD"
    assert (await sh("git -C by-commit rev-parse HEAD")).strip() == first.sha
    await call(git.clone, url=f"file://{HOME}/srv/origin.git", path="shallow", depth=1)
    assert (await sh("git -C shallow rev-list --count HEAD")).strip() == "1"
    await call(git.clone, url=f"file://{HOME}/srv/origin.git", path="shallow-old", depth=1, commit_id=first.sha)
    assert (await sh("git -C shallow-old rev-parse HEAD")).strip() == first.sha

    # refusals
    with pytest.raises(DaytonaGitRepoNotFoundError):
        await call(git.clone, url=f"{HOME}/srv/missing.git", path="missing")
    with pytest.raises(DaytonaGitRepoNotFoundError):
        await call(git.status, "no/such/dir")
    with pytest.raises(DaytonaGitRepoNotFoundError):
        await call(git.status, "/tmp")
    with pytest.raises(DaytonaGitBranchNotFoundError):
        await call(git.clone, url=f"{HOME}/srv/origin.git", path="nob", branch="no-such-branch")
    with pytest.raises(DaytonaConflictError):
        await call(git.clone, url=f"{HOME}/srv/origin.git", path="work")
    with pytest.raises(DaytonaGitTransportFailedError):
        await call(git.clone, url="http://127.0.0.1:9/nothing.git", path="unreachable")

    # a second clone moves on: push rejected, pull diverged, then merged, then pulled back
    await call(git.clone, url=f"{HOME}/srv/origin.git", path="other")
    await sh("cd other && printf 'theirs\\n' > theirs.txt && git add . && git -c user.name=O -c user.email=o@x"
             " commit -qm theirs && git push -q origin main")
    await sh("cd work && printf 'ours\\n' > ours.txt")
    await call(git.add, "work", ["."])
    await call(git.commit, "work", "ours", "Ada", "ada@example.com")
    with pytest.raises(DaytonaGitPushRejectedError):
        await call(git.push, "work")
    assert (await call(git.status, "work")).ahead == 1
    await call(git.configure_user, "Ada", "ada@example.com")
    await call(git.set_config, "pull.rebase", "false")
    assert await call(git.get_config, "pull.rebase") == "false"
    assert await call(git.get_config, "no.such-key") is None
    await call(git.pull, "work")
    assert (await call(git.status, "work")).ahead == 2
    await call(git.push, "work")
    await call(git.pull, "other", remote="origin", branch="main")
    assert "ours.txt" in await sh("ls other")

    # dirty worktree, merge conflict, a remote hook that declines
    await sh("cd other && git checkout -q -b side && printf 'side\\n' > README.md && git commit -qam side"
             " && git checkout -q main && printf 'dirty\\n' > README.md")
    with pytest.raises(DaytonaGitDirtyWorktreeError):
        await call(git.checkout_branch, "other", "side")
    await sh("cd other && git checkout -q -- README.md && printf 'conflict\\n' > README.md && git commit -qam c"
             " && git push -q origin main")
    await sh("cd work && printf 'clash\\n' > README.md && git commit -qam clash")
    with pytest.raises(DaytonaGitMergeConflictError):
        await call(git.pull, "work")
    assert any(f.staging.value == "Updated but unmerged" for f in (await call(git.status, "work")).file_status)
    await sh("printf '#!/bin/sh\\necho protected >&2\\nexit 1\\n' > srv/origin.git/hooks/pre-receive"
             " && chmod +x srv/origin.git/hooks/pre-receive")
    await sh("cd other && git commit -q --allow-empty -m blocked")
    with pytest.raises(DaytonaGitRemoteRejectedError):
        await call(git.push, "other")

    remotes = await call(git.remotes, "other")
    assert [(r.name, r.url) for r in remotes.remotes] == [("origin", f"{HOME}/srv/origin.git")]
    await call(git.remote_add, "other", "mirror", f"{HOME}/srv/origin.git")
    assert await call(git.remote_get, "other", "mirror") == f"{HOME}/srv/origin.git"


async def start_git_server(sh: Shell, password: str) -> int:
    script = base64.b64encode(GIT_SERVER.encode()).decode()
    await sh("mkdir -p http-root http-state && git init -q --bare -b main http-root/private.git"
             f" && echo {script} | base64 -d > http-state/server.py"
             f" && (umask 077 && printf 'tester:%s' '{password}' > http-state/auth)")
    await sh(f"nohup python3 http-state/server.py {HOME}/http-root {HOME}/http-state"
             " > http-state/server.log 2>&1 < /dev/null &")

    async def port() -> str:
        return (await sh("cat http-state/port 2>/dev/null", ok=False)).strip()

    return int(await wait_for(port, timeout=30, interval=0.1, message="the git HTTP server did not start"))


async def http_scenario(sandbox: Any, call: Call, stack: Stack) -> None:
    git, sh = sandbox.git, Shell(sandbox, call)
    password = "pw-" + secrets.token_hex(12)
    port = await start_git_server(sh, password)
    url = f"http://127.0.0.1:{port}/private.git"

    await call(git.clone, url=url, path="h1", username="tester", password=password)
    await sh("cd h1 && printf 'over http\\n' > web.txt")
    await call(git.add, "h1", ["web.txt"])
    pushed = await call(git.commit, "h1", "via http", "Ada", "ada@example.com")
    await call(git.push, "h1", username="tester", password=password, set_upstream=True)
    await call(git.create_branch, "h1", "topic")
    await call(git.push, "h1", username="tester", password=password, branch="topic")

    await call(git.clone, url=url, path="h2", branch="topic", depth=1, username="tester", password=password)
    assert (await sh("git -C h2 rev-parse HEAD")).strip() == pushed.sha
    await call(git.clone, url=url, path="h3", commit_id=pushed.sha, username="tester", password=password)
    assert (await call(git.status, "h3")).detached is True
    await sh("cd h1 && git checkout -q main && printf 'two\\n' >> web.txt && git commit -qam two")
    await call(git.push, "h1", username="tester", password=password)
    await call(git.checkout_branch, "h3", "main")
    await call(git.pull, "h3", username="tester", password=password)
    assert (await sh("cat h3/web.txt")) == "over http\ntwo\n"

    with pytest.raises(DaytonaGitAuthFailedError):
        await call(git.clone, url=url, path="bad", username="tester", password="wrong")
    with pytest.raises(DaytonaGitAuthFailedError):
        await call(git.clone, url=url, path="anon")
    with pytest.raises(DaytonaGitAuthFailedError):
        await call(git.pull, "h3")
    with pytest.raises(DaytonaGitAuthFailedError):
        await call(git.push, "h1", username="tester", password="wrong")

    # the secret is in no argv, no file, no remote URL, no service log
    ps_log = await sh("cat http-state/ps.log")
    assert "remote-http" in ps_log and password not in ps_log  # git's HTTP client was running meanwhile
    leftovers = await sh(f"grep -rlF -- '{password}' /tmp {HOME} 2>/dev/null; true")
    assert leftovers.split() == [f"{HOME}/http-state/auth"]  # the test server's own password file
    assert password not in await sh("git -C h1 remote get-url origin")
    for log in (stack.home / "logs").glob("*.log"):
        assert password not in log.read_text(errors="replace"), log

    # credentials stored on purpose: later calls need none
    await call(git.dangerously_authenticate, "tester", password, host=f"127.0.0.1:{port}", protocol="http")
    await call(git.clone, url=url, path="h4")
    assert (await sh("cat h4/web.txt")) == "over http\ntwo\n"


def test_git_through_the_sync_sdk(stack: Stack) -> None:
    daytona = Daytona(config(stack))
    sandbox = daytona.create(CreateSandboxFromSnapshotParams(labels={"suite": "git"}), timeout=120)
    try:
        api = GitApi(sandbox._toolbox_api)
        call = make_call(asynchronous=False)

        async def history(path: str) -> Any:
            return await asyncio.to_thread(api.get_commit_history, path=path)

        asyncio.run(local_scenario(sandbox, call, history))
        asyncio.run(http_scenario(sandbox, call, stack))
    finally:
        daytona.delete(sandbox, timeout=60, wait=True)


async def test_git_through_the_async_sdk(stack: Stack) -> None:
    async with AsyncDaytona(config(stack)) as daytona:
        sandbox = await daytona.create(CreateSandboxFromSnapshotParams(labels={"suite": "git"}), timeout=120)
        try:
            api = AsyncGitApi(sandbox._toolbox_api)

            async def history(path: str) -> Any:
                return await api.get_commit_history(path=path)

            call = make_call(asynchronous=True)
            await local_scenario(sandbox, call, history)
            await http_scenario(sandbox, call, stack)
        finally:
            await daytona.delete(sandbox, timeout=60, wait=True)
