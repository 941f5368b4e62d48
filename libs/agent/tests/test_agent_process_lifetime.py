"""Timeouts and hang-ups kill the whole process group; finished execs leave no zombies."""
from __future__ import annotations

import base64
import os
import signal
from contextlib import aclosing

from agent_harness import RunningAgent, pid_gone, raw_exchange, run_exec, wait_until, wait_until_async
from corral_agent.client import call
from corral_agent.framing import encode_frame

SPAWN_GRANDCHILD = "sleep 300 & echo $! > grandchild.pid; echo $$ > shell.pid; echo started; wait"


def read_pid(agent: RunningAgent, name: str) -> int:
    return int((agent.workdir / name).read_text())


async def test_timeout_kills_the_whole_process_group(agent: RunningAgent):
    result = await run_exec(agent.socket_path, command=SPAWN_GRANDCHILD, timeout=0.5)
    assert result.output == b"started\n"
    assert result.last == {"type": "exit", "exitCode": 124, "timedOut": True, "signal": signal.SIGKILL}
    wait_until(lambda: pid_gone(read_pid(agent, "grandchild.pid")), what="the grandchild to die")
    assert pid_gone(read_pid(agent, "shell.pid"))
    assert agent.child_pids() == []  # reaped: no zombie left under the agent


async def test_timeout_of_a_code_run(agent: RunningAgent):
    code = "import time\nprint('sleeping', flush=True)\ntime.sleep(300)"
    # long enough for python3 to start and print on a busy machine (its start-up alone took 0.3 s in CI-like load)
    result = await run_exec(agent.socket_path, argv=["python3", "-u", "-c", code], timeout=2.0)
    assert result.output == b"sleeping\n", "what the code printed before its timeout is kept"
    assert (result.last["exitCode"], result.last["timedOut"]) == (124, True)


async def test_timeout_applies_after_the_child_closes_its_output(agent: RunningAgent):
    result = await run_exec(agent.socket_path, command="exec >&- 2>&-; sleep 300", timeout=0.3)
    assert (result.last["exitCode"], result.last["timedOut"]) == (124, True)


async def test_client_disconnect_kills_the_process_group(agent: RunningAgent):
    async with aclosing(call(agent.socket_path, {"op": "exec", "command": SPAWN_GRANDCHILD})) as frames:
        async for frame in frames:
            assert frame["type"] == "output"
            break  # `started` is printed after the pid files are written
    grandchild, shell = read_pid(agent, "grandchild.pid"), read_pid(agent, "shell.pid")
    await wait_until_async(lambda: pid_gone(grandchild) and pid_gone(shell), what="the exec to be killed")
    await wait_until_async(lambda: agent.child_pids() == [], what="the agent to reap its child")


def test_half_closed_client_still_gets_the_whole_reply(agent: RunningAgent):
    request = encode_frame({"op": "exec", "command": "echo one; echo two"})
    frames = raw_exchange(agent.socket_path, request, close_write=True)
    assert b"".join(base64.b64decode(f["data"]) for f in frames[:-1]) == b"one\ntwo\n"
    assert frames[-1] == {"type": "exit", "exitCode": 0, "timedOut": False, "signal": None}


async def test_background_process_does_not_hold_the_exec_open(agent: RunningAgent):
    # The background sleep keeps the output pipe open; the exec still ends when the shell exits.
    result = await run_exec(agent.socket_path, command="sleep 300 & echo $! > bg.pid; echo done")
    assert (result.output, result.last["exitCode"]) == (b"done\n", 0)
    background = read_pid(agent, "bg.pid")
    assert not pid_gone(background)  # a normal exit does not kill what the command left running
    os.kill(background, signal.SIGKILL)


async def test_agent_shutdown_kills_running_execs(agent: RunningAgent):
    async with aclosing(call(agent.socket_path, {"op": "exec", "command": SPAWN_GRANDCHILD})) as frames:
        async for _ in frames:
            break
        grandchild = read_pid(agent, "grandchild.pid")
        assert agent.stop() == 0
    await wait_until_async(lambda: pid_gone(grandchild), what="the exec to be killed at shutdown")
    assert not os.path.exists(agent.socket_path)

