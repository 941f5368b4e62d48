"""Running a git plan in a sandbox: one agent `exec` of a small fixed python3 script, as the sandbox user.

The script (standard library only, python3 >= 3.9 like the agent) reads the plan as JSON on its stdin,
runs each step's argv with stdout and stderr captured apart, stops at the first failing step and
prints the results after a marker line. The plan's credentials travel on that stdin only (never in an
argv, a file or a log) and are put in the environment of the git processes, where the credential
helper of git_commands.py reads them. Git never prompts: `GIT_TERMINAL_PROMPT=0` and no askpass.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from .git_commands import Plan
from .toolbox import Toolbox

MARKER = "\x1e-corral-git-results-\x1e"

SCRIPT = r"""
import base64, json, os, subprocess, sys
plan = json.loads(sys.stdin.buffer.read().decode("utf-8"))
env = dict(os.environ)
env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="", LC_ALL="C", LANGUAGE="C")
if plan.get("credentials"):
    env["CORRAL_GIT_USERNAME"], env["CORRAL_GIT_PASSWORD"] = plan["credentials"]
results = []
for step in plan["steps"]:
    step_env = dict(env, **step.get("env", {}))
    data = step.get("input")
    try:
        done = subprocess.run(step["argv"], env=step_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              input=None if data is None else data.encode("utf-8"),
                              stdin=subprocess.DEVNULL if data is None else None)
        code, out, err = done.returncode, done.stdout, done.stderr
    except OSError as error:
        code, out, err = 127, b"", ("cannot run %s: %s" % (step["argv"][0], error.strerror or error)).encode()
    results.append([code, base64.b64encode(out).decode("ascii"), err.decode("utf-8", "replace")])
    if code not in step.get("ok", [0]):
        break
sys.stdout.write("\n" + MARKER + json.dumps(results) + "\n")
""".replace("MARKER", repr(MARKER))


class StepResult(msgspec.Struct, frozen=True):
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode(errors="replace")


class GitRunFailed(Exception):
    """The script itself did not report (timeout, no python3, cut output): no git verdict to map."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.message = message
        self.timed_out = timed_out


def encode_plan(plan: Plan) -> bytes:
    body: dict[str, Any] = {"steps": [_step(step) for step in plan.steps]}
    if plan.credentials is not None:
        body["credentials"] = [plan.credentials.username, plan.credentials.password]
    return msgspec.json.encode(body)


def _step(step: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"argv": step.argv, "ok": list(step.ok)}
    if step.env:
        body["env"] = step.env
    if step.input is not None:
        body["input"] = step.input
    return body


def decode_results(output: bytes) -> list[StepResult] | None:
    text = output.decode(errors="replace")
    at = text.rfind(MARKER)
    if at < 0:
        return None
    try:
        raw = msgspec.json.decode(text[at + len(MARKER):].strip(), type=list[tuple[int, str, str]])
    except msgspec.DecodeError:
        return None
    return [StepResult(code, base64.b64decode(out), err) for code, out, err in raw]


async def run_plan(toolbox: Toolbox, sandbox_id: str, plan: Plan) -> list[StepResult]:
    """The results of the steps that ran; the last one failed if fewer than all ran or its code is not ok."""
    request = {"argv": ["python3", "-I", "-S", "-c", SCRIPT],
               "stdin": base64.b64encode(encode_plan(plan)).decode("ascii"), "timeout": plan.timeout}
    result = await toolbox.exec(sandbox_id, request)
    if result.timed_out:
        raise GitRunFailed(f"git did not finish within {plan.timeout:.0f} seconds and was stopped", timed_out=True)
    results = decode_results(result.output)
    if results is None:
        tail = result.output.decode(errors="replace").strip()[-500:]
        raise GitRunFailed(f"git could not be run in the sandbox (exit {result.exit_code}): {tail}")
    return results


def failed_step(plan: Plan, results: list[StepResult]) -> StepResult | None:
    if not results:
        return None
    last = results[-1]
    return last if last.code not in plan.steps[len(results) - 1].ok else None
