"""The code interpreter: python3 workers that keep their globals, stream output, survive interrupts."""
from __future__ import annotations

import asyncio
import time
from contextlib import aclosing

from agent_harness import RunningAgent
from corral_agent.client import call
from session_harness import error_of, eventually, frames_of, result_of


async def run_code(path: str, code: str, **extra: object) -> tuple[str, str, list[dict], str]:
    """(stdout, stderr, exception frames, final status) of one run."""
    frames = await frames_of(path, "interpreter_run", code=code, **extra)
    assert frames[-1]["type"] == "result", frames
    text = {"stdout": "", "stderr": ""}
    for frame in frames[:-1]:
        if frame["type"] in text:
            text[frame["type"]] += frame["text"]
    return text["stdout"], text["stderr"], [f for f in frames if f["type"] == "exception"], frames[-1]["status"]


async def test_globals_imports_and_functions_persist(agent: RunningAgent):
    path = agent.socket_path
    assert await run_code(path, "import math\nx = 41\ndef bump(v):\n    return v + 1") == ("", "", [], "completed")
    assert await run_code(path, "x = bump(x)\nprint(x, math.floor(2.5))") == ("42 2\n", "", [], "completed")
    pickled = "import pickle\nclass Point:\n    pass\nprint(type(pickle.loads(pickle.dumps(Point()))).__name__)"
    assert (await run_code(path, pickled))[0] == "Point\n"


async def test_output_streams_of_the_code_and_its_subprocesses(agent: RunningAgent):
    code = "import sys, subprocess\nprint('out')\nprint('err', file=sys.stderr)\nsubprocess.run(['echo', 'child'])"
    assert await run_code(agent.socket_path, code) == ("out\nchild\n", "err\n", [], "completed")


async def test_an_exception_arrives_as_one_frame_and_the_context_lives_on(agent: RunningAgent):
    path = agent.socket_path
    stdout, _, errors, status = await run_code(path, "y = 1\nprint('before')\nraise ValueError('nope')")
    assert (stdout, status) == ("before\n", "completed")
    [error] = errors
    assert (error["name"], error["value"]) == ("ValueError", "nope")
    assert 'File "<cell-1>", line 3' in error["traceback"] and "raise ValueError('nope')" in error["traceback"]
    assert "interpreter_repl" not in error["traceback"]
    syntax = (await run_code(path, "def broken(:"))[2][0]
    assert syntax["name"] == "SyntaxError"
    assert (await run_code(path, "raise SystemExit(3)"))[2][0]["name"] == "SystemExit"
    assert (await run_code(path, "print(y)"))[0] == "1\n"


async def test_envs_apply_to_one_run(agent: RunningAgent):
    path = agent.socket_path
    code = "import os\nprint(os.environ.get('ONLY_NOW'), os.environ.get('CORRAL_TEST_MARK'))"
    assert (await run_code(path, code, envs={"ONLY_NOW": "yes"}))[0] == "yes inherited\n"
    assert (await run_code(path, code))[0] == "None inherited\n"


async def test_a_timeout_interrupts_the_code_and_keeps_the_globals(agent: RunningAgent):
    path = agent.socket_path
    await run_code(path, "kept = 'still here'")
    started = time.monotonic()
    stdout, _, errors, status = await run_code(path, "import time\nprint('sleeping')\ntime.sleep(60)", timeout=0.5)
    assert (stdout, errors, status) == ("sleeping\n", [], "timeout")
    assert time.monotonic() - started < 5
    assert (await run_code(path, "print(kept)"))[0] == "still here\n"


async def test_code_that_ignores_the_interrupt_is_killed_and_the_context_starts_afresh(agent: RunningAgent):
    path = agent.socket_path
    await run_code(path, "lost = True")
    stubborn = "import time\nwhile True:\n    try:\n        time.sleep(60)\n    except KeyboardInterrupt:\n        pass"
    assert (await run_code(path, stubborn, timeout=0.3))[3] == "timeout"
    assert (await run_code(path, "print('lost' in globals())"))[0] == "False\n"


async def test_a_client_hanging_up_interrupts_the_run(agent: RunningAgent):
    path = agent.socket_path
    request = {"op": "interpreter_run", "code": "import time\nprint('go', flush=True)\ntime.sleep(60)"}
    async with aclosing(call(path, request)) as frames:
        async for frame in frames:
            assert frame == {"type": "stdout", "text": "go\n"}
            break
    started = time.monotonic()
    assert await run_code(path, "print('next')") == ("next\n", "", [], "completed")  # the context was freed
    assert time.monotonic() - started < 5


async def test_runs_in_one_context_take_turns(agent: RunningAgent):
    path = agent.socket_path
    await run_code(path, "events = []")
    slow = run_code(path, "import time\nevents.append('slow-start')\ntime.sleep(0.3)\nevents.append('slow-end')")
    fast = run_code(path, "events.append('fast')")
    first = asyncio.ensure_future(slow)

    async def slow_is_running() -> bool:
        return int((await result_of(path, "activity"))["running"]) >= 1

    await eventually(slow_is_running, what="the slow run to start")
    await asyncio.gather(first, fast)
    assert (await run_code(path, "print(events)"))[0] == "['slow-start', 'slow-end', 'fast']\n"


async def test_contexts_are_isolated_listed_and_deleted(agent: RunningAgent):
    path = agent.socket_path
    (agent.workdir / "sub").mkdir()
    created = (await result_of(path, "interpreter_create", cwd="sub"))["context"]
    assert created["language"] == "python" and created["active"] is True
    assert created["cwd"] == str(agent.workdir / "sub") and created["createdAt"].endswith("Z")
    await run_code(path, "shared = 'default'")
    assert (await run_code(path, "import os\nprint(os.getcwd(), 'shared' in globals())", contextId=created["id"]))[0] \
        == f"{agent.workdir / 'sub'} False\n"
    listed = (await result_of(path, "interpreter_list"))["contexts"]
    assert [c["id"] for c in listed] == [created["id"]]  # the default context is not listed
    await result_of(path, "interpreter_delete", id=created["id"])
    assert (await result_of(path, "interpreter_list"))["contexts"] == []
    assert await error_of(path, "interpreter_delete", id=created["id"]) == "CONTEXT_NOT_FOUND"
    assert await error_of(path, "interpreter_run", code="1", contextId=created["id"]) == "CONTEXT_NOT_FOUND"
    assert await error_of(path, "interpreter_delete", id="default") == "BAD_REQUEST"
    assert await error_of(path, "interpreter_create", cwd="missing") == "CWD_NOT_FOUND"
    assert await error_of(path, "interpreter_run", code=1) == "BAD_REQUEST"


async def test_a_worker_that_exits_is_reported_and_replaced(agent: RunningAgent):
    path = agent.socket_path
    _, _, errors, status = await run_code(path, "import os\nos._exit(3)")
    assert status == "completed" and errors[0]["name"] == "InterpreterExited" and "status 3" in errors[0]["value"]
    assert (await run_code(path, "print('fresh')"))[0] == "fresh\n"


async def test_only_a_running_run_counts_as_activity(agent: RunningAgent):
    path = agent.socket_path
    await run_code(path, "import time")
    assert (await result_of(path, "activity"))["running"] == 0
    request = {"op": "interpreter_run", "code": "print('go')\ntime.sleep(60)"}
    async with aclosing(call(path, request)) as frames:
        async for _ in frames:
            assert (await result_of(path, "activity"))["running"] == 1
            break
    await run_code(path, "pass")  # waits for the interrupted run to give the context back
    assert (await result_of(path, "activity"))["running"] == 0
