"""Git in a sandbox (the toolbox's `/git/*`): the `git` CLI run by the agent as the sandbox user.

Each call builds a plan (git_commands.py), runs it in one agent `exec` (git_exec.py), maps a failing
step to a toolbox error (git_errors.py) and parses what git printed (git_output.py). Relative paths
resolve against the sandbox's work dir, the cwd of every exec.
"""

from __future__ import annotations

from typing import Any

from . import git_commands as commands
from .git_commands import Plan
from .git_errors import GitFailure, classify
from .git_exec import GitRunFailed, StepResult, failed_step, run_plan
from .git_output import parse_branches, parse_history, parse_remotes, parse_status
from .git_requests import (AddRemoteRequest, AddRequest, AuthenticateRequest, BranchRequest, CheckoutRequest,
                           CloneRequest, CommitRequest, ConfigureUserRequest, InitRequest, PullRequest, PushRequest,
                           ResetRequest, RestoreRequest, SetConfigRequest)
from .toolbox import Toolbox


class Git:
    def __init__(self, toolbox: Toolbox):
        self._toolbox = toolbox

    async def _attempt(self, sandbox_id: str, plan: Plan) -> tuple[list[StepResult], StepResult | None]:
        try:
            results = await run_plan(self._toolbox, sandbox_id, plan)
        except GitRunFailed as error:
            if error.timed_out and plan.network:
                raise GitFailure(502, "GIT_TRANSPORT_FAILED", error.message) from None
            if error.timed_out:
                raise GitFailure(408, "PROCESS_EXECUTION_TIMEOUT", error.message) from None
            raise GitFailure(502, "GIT_UNAVAILABLE", error.message) from None
        return results, failed_step(plan, results)

    async def _run(self, sandbox_id: str, plan: Plan) -> list[StepResult]:
        results, failed = await self._attempt(sandbox_id, plan)
        if failed is not None:
            raise classify(plan.op, failed)
        return results

    async def clone(self, sandbox_id: str, request: CloneRequest) -> None:
        plan = commands.clone(request)
        results, failed = await self._attempt(sandbox_id, plan)
        if failed is None:
            return
        if len(results) == 2 and request.depth is not None:  # the commit is beyond the shallow history
            await self._run(sandbox_id, commands.fetch_commit(request))
            return
        raise classify(plan.op, failed)

    async def status(self, sandbox_id: str, path: str) -> dict[str, Any]:
        results = await self._run(sandbox_id, commands.status(path))
        return parse_status(results[0].out)

    async def branches(self, sandbox_id: str, path: str) -> dict[str, Any]:
        listing, head = await self._run(sandbox_id, commands.branches(path))
        return parse_branches(listing.text, head.text if head.code == 0 else "")

    async def create_branch(self, sandbox_id: str, request: BranchRequest) -> None:
        await self._run(sandbox_id, commands.create_branch(request))

    async def delete_branch(self, sandbox_id: str, request: BranchRequest) -> None:
        await self._run(sandbox_id, commands.delete_branch(request))

    async def checkout(self, sandbox_id: str, request: CheckoutRequest) -> None:
        await self._run(sandbox_id, commands.checkout(request))

    async def add(self, sandbox_id: str, request: AddRequest) -> None:
        await self._run(sandbox_id, commands.add(request))

    async def commit(self, sandbox_id: str, request: CommitRequest) -> dict[str, str]:
        results = await self._run(sandbox_id, commands.commit(request))
        return {"hash": results[-1].text.strip()}

    async def push(self, sandbox_id: str, request: PushRequest) -> None:
        await self._run(sandbox_id, commands.push(request))

    async def pull(self, sandbox_id: str, request: PullRequest) -> None:
        await self._run(sandbox_id, commands.pull(request))

    async def history(self, sandbox_id: str, path: str) -> list[dict[str, str]]:
        (head,) = await self._run(sandbox_id, commands.has_commits(path))
        if head.code != 0:  # an unborn branch: no commits yet
            return []
        results = await self._run(sandbox_id, commands.history(path))
        return parse_history(results[0].out)

    async def init(self, sandbox_id: str, request: InitRequest) -> None:
        await self._run(sandbox_id, commands.init(request))

    async def reset(self, sandbox_id: str, request: ResetRequest) -> None:
        await self._run(sandbox_id, commands.reset(request))

    async def restore(self, sandbox_id: str, request: RestoreRequest) -> None:
        await self._run(sandbox_id, commands.restore(request))

    async def remotes(self, sandbox_id: str, path: str) -> dict[str, Any]:
        plan = commands.remotes(path)
        results = await self._run(sandbox_id, plan)
        if results[0].code == 1 and results[0].err.strip():
            raise classify(plan.op, results[0])
        return parse_remotes(results[0].out)

    async def add_remote(self, sandbox_id: str, request: AddRemoteRequest) -> None:
        await self._run(sandbox_id, commands.add_remote(request))

    async def get_config(self, sandbox_id: str, key: str, scope: str | None, path: str | None) -> dict[str, Any]:
        plan = commands.get_config(key, scope, path)
        (result,) = await self._run(sandbox_id, plan)
        if result.code == 1 and result.err.strip():  # exit 1 is also "invalid key"
            raise classify(plan.op, result)
        return {"value": result.text.rstrip("\n") if result.code == 0 else None}

    async def set_config(self, sandbox_id: str, request: SetConfigRequest) -> None:
        await self._run(sandbox_id, commands.set_config(request))

    async def configure_user(self, sandbox_id: str, request: ConfigureUserRequest) -> None:
        await self._run(sandbox_id, commands.configure_user(request))

    async def authenticate(self, sandbox_id: str, request: AuthenticateRequest) -> None:
        await self._run(sandbox_id, commands.authenticate(request))
