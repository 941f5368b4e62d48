"""Process sessions: one long-lived shell per session, commands completing whatever their text is."""
from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path

import pytest
from agent_harness import RunningAgent, pid_gone, wait_until
from corral_agent.client import call
from session_harness import (
    ERR,
    OUT,
    error_of,
    eventually,
    frames_of,
    log_of,
    result_of,
    run,
    shells_here,
    start_agent_with_shell,
    streams,
)

QUICK_SECONDS = 5.0  # a command that must not wait for background children ends well within this


@pytest.fixture(params=shells_here())
def shell_agent(request: pytest.FixtureRequest, short_tmp: Path) -> Iterator[RunningAgent]:
    """An agent whose sessions run under zsh, bash or sh (dash)."""
    running = start_agent_with_shell(short_tmp, request.param)
    yield running
    running.stop()


async def test_directory_variables_and_functions_carry_over(shell_agent: RunningAgent):
    path = shell_agent.socket_path
    await result_of(path, "session_create", sessionId="s")
    assert await run(path, "s", "mkdir -p sub && cd sub && export GREETING=hi && LOCAL=yes") == (0, b"")
    assert await run(path, "s", "greet() { echo \"$GREETING from $(basename \"$PWD\") $LOCAL\"; }") == (0, b"")
    assert await run(path, "s", "greet") == (0, OUT + b"hi from sub yes\n")


async def test_each_line_is_marked_with_its_stream(shell_agent: RunningAgent):
    path = shell_agent.socket_path
    await result_of(path, "session_create", sessionId="s")
    assert await run(path, "s", "printf 'a\\nb\\n\\nc'") == (0, OUT + b"a\n" + OUT + b"b\n" + OUT + b"\n" + OUT + b"c")
    assert await run(path, "s", "echo oops >&2; exit_code=3; (exit $exit_code)") == (3, ERR + b"oops\n")
    code, log = await run(path, "s", "echo one; echo two >&2; echo three")
    assert code == 0 and streams(log) == (b"one\nthree\n", b"two\n")


async def test_completion_survives_any_command_text(shell_agent: RunningAgent):
    path = shell_agent.socket_path
    await result_of(path, "session_create", sessionId="s")
    heredoc = "cat <<'EOF'\nline $HOME\nEOF\necho after"
    assert await run(path, "s", heredoc) == (0, OUT + b"line $HOME\n" + OUT + b"after\n")
    code, log = await run(path, "s", "echo 'unclosed")  # a syntax error ends the command, not the session
    assert code != 0 and streams(log)[1]
    assert await run(path, "s", "exec >/dev/null; echo hidden") == (0, b"")  # redirections stay inside it
    assert await run(path, "s", "echo visible") == (0, OUT + b"visible\n")
    assert await run(path, "s", "{ echo '}'; } ; printf '%s\\n' \"$?\" ';' '\"'") == (0, OUT + b"}\n" + OUT + b"0\n"
                                                                                      + OUT + b";\n" + OUT + b'"\n')


async def test_a_command_reading_stdin_reads_its_own_input_not_the_next_command(shell_agent: RunningAgent):
    path = shell_agent.socket_path
    await result_of(path, "session_create", sessionId="s")
    reader = await result_of(path, "session_exec", sessionId="s", command="read a; read b; echo \"$a+$b\"",
                             suppressInputEcho=True, **{"async": True})
    queued = await result_of(path, "session_exec", sessionId="s", command="echo queued", **{"async": True})
    await result_of(path, "session_input", sessionId="s", commandId=reader["cmdId"], data="1\n2\n")
    assert (await log_of(path, "s", reader["cmdId"], follow=True))[1] == OUT + b"1+2\n"
    assert (await log_of(path, "s", queued["cmdId"], follow=True))[1] == OUT + b"queued\n"


async def test_background_children_do_not_delay_completion(shell_agent: RunningAgent):
    path = shell_agent.socket_path
    await result_of(path, "session_create", sessionId="s")
    started = time.monotonic()
    code, log = await run(path, "s", "sleep 300 & echo $! > bg.pid; (sleep 0.2; echo late) & echo now")
    assert (code, log) == (0, OUT + b"now\n")
    assert time.monotonic() - started < QUICK_SECONDS
    frames = await frames_of(path, "session_get", sessionId="s")
    command_id = [f for f in frames if f["type"] == "command"][-1]["id"]

    async def late_output_logged() -> bool:  # what a background child writes later still reaches the log
        return (await log_of(path, "s", command_id))[1] == OUT + b"now\n" + OUT + b"late\n"

    await eventually(late_output_logged, what="the background output to reach the log")
    assert await run(path, "s", "echo next") == (0, OUT + b"next\n")
    await result_of(path, "session_delete", sessionId="s")
    wait_until(lambda: pid_gone(int((shell_agent.workdir / "bg.pid").read_text())), what="delete to kill the child")


async def test_exit_and_exec_end_the_session(shell_agent: RunningAgent):
    path = shell_agent.socket_path
    await result_of(path, "session_create", sessionId="a")
    assert await run(path, "a", "echo bye; exit 7") == (7, OUT + b"bye\n")
    assert await error_of(path, "session_exec", sessionId="a", command="echo again") == "SESSION_ENDED"
    frames = await frames_of(path, "session_get", sessionId="a")
    assert frames[0] == {"type": "session", "sessionId": "a", "ended": True, "exitCode": 7}
    await result_of(path, "session_create", sessionId="b")
    assert await run(path, "b", "exec sh -c 'echo replaced; exit 3'") == (3, OUT + b"replaced\n")
    assert await error_of(path, "session_exec", sessionId="b", command="true") == "SESSION_ENDED"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_a_program_replacing_the_shell_is_waited_for_without_spinning(agent: RunningAgent):
    path = agent.socket_path
    await result_of(path, "session_create", sessionId="x")
    before = cpu_seconds(agent.proc.pid)
    assert await run(path, "x", "exec sleep 1") == (0, b"")
    assert cpu_seconds(agent.proc.pid) - before < 0.2  # a busy loop would burn most of that second


async def test_queued_commands_run_in_order_and_fail_when_the_session_ends(agent: RunningAgent):
    path = agent.socket_path
    await result_of(path, "session_create", sessionId="q")
    queued = {"async": True}
    first = await result_of(path, "session_exec", sessionId="q", command="sleep 0.3; echo 1 >> order", **queued)
    second = await result_of(path, "session_exec", sessionId="q", command="echo 2 >> order; exit 4", **queued)
    third = await result_of(path, "session_exec", sessionId="q", command="echo 3 >> order", **queued)
    assert await error_of(path, "session_exec", sessionId="q", command="echo never-runs") == "SESSION_ENDED"
    assert (agent.workdir / "order").read_text() == "1\n2\n"
    codes = [(await result_of(path, "session_command", sessionId="q", commandId=c["cmdId"]))["exitCode"]
             for c in (first, second, third)]
    assert codes == [0, 4, -1]


async def test_input_reaches_a_running_command(agent: RunningAgent):
    path = agent.socket_path
    await result_of(path, "session_create", sessionId="i")
    for echo in (True, False):
        started = await result_of(path, "session_exec", sessionId="i", command="read line; echo \"got $line\"",
                                  suppressInputEcho=not echo, **{"async": True})
        command_id = started["cmdId"]
        status = await result_of(path, "session_command", sessionId="i", commandId=command_id)
        assert status["exitCode"] is None and status["command"] == "read line; echo \"got $line\""
        assert (await result_of(path, "session_input", sessionId="i", commandId=command_id, data="hello\n"))
        frames, log = await log_of(path, "i", command_id, follow=True)
        assert log == (OUT + b"hello\n" if echo else b"") + OUT + b"got hello\n"
        assert frames[-1] == {"type": "result", "exitCode": 0, "size": len(log)}
        assert await error_of(path, "session_input", sessionId="i", commandId=command_id,
                              data="late\n") == "COMMAND_ALREADY_COMPLETED"


async def test_follow_streams_while_the_command_runs(agent: RunningAgent):
    path = agent.socket_path
    await result_of(path, "session_create", sessionId="f")
    fifo = agent.workdir / "go"
    started = await result_of(path, "session_exec", sessionId="f", command=f"mkfifo {fifo}; echo first; cat {fifo}; "
                              "echo second >&2; exit 5", **{"async": True})
    seen = b""
    request = {"op": "session_logs", "sessionId": "f", "commandId": started["cmdId"], "follow": True}
    async with aclosing(call(path, request)) as frames:
        async for frame in frames:
            if frame["type"] == "log":
                assert frame["size"] <= 3 + len(b"first\n")
            elif frame["type"] == "output":
                seen += base64.b64decode(frame["data"])
                if seen == OUT + b"first\n":
                    fifo.write_text("")  # the command goes on only once its first line was streamed
            elif frame["type"] == "result":
                assert frame == {"type": "result", "exitCode": 5, "size": len(seen)}
    assert seen == OUT + b"first\n" + ERR + b"second\n"


async def test_large_output_is_logged_with_flat_agent_memory(agent: RunningAgent):
    path = agent.socket_path
    await result_of(path, "session_create", sessionId="big")
    await run(path, "big", "echo warm-up")
    peak_before = agent.status_kib("VmHWM")
    size = 20 * 1024 * 1024
    result = await result_of(path, "session_exec", sessionId="big", command=f"head -c {size} /dev/zero | tr '\\0' x")
    assert result["exitCode"] == 0 and "log" not in result and result["logSize"] == size + 3
    frames, log = await log_of(path, "big", result["cmdId"])
    assert frames[0] == {"type": "log", "size": size + 3} and log == OUT + b"x" * size
    limited = (await log_of(path, "big", result["cmdId"], limit=10))[1]
    assert limited == OUT + b"xxxxxxx"
    growth_kib = agent.status_kib("VmHWM") - peak_before
    assert growth_kib < 4096, f"agent peak RSS grew by {growth_kib} KiB for a 20 MiB log"


async def test_sessions_start_from_the_agent_environment_and_workdir(agent: RunningAgent):
    path = agent.socket_path
    await result_of(path, "env", set={"FROM_ENV_OP": "set-later"})
    await result_of(path, "session_create", sessionId="e")
    assert await run(path, "e", "echo $FROM_ENV_OP $CORRAL_TEST_MARK; pwd") == (
        0, OUT + b"set-later inherited\n" + OUT + str(agent.workdir).encode() + b"\n")


async def test_listing_deleting_and_errors(agent: RunningAgent):
    path = agent.socket_path
    assert await frames_of(path, "session_list") == [{"type": "result"}]
    await result_of(path, "session_create", sessionId="x")
    assert await error_of(path, "session_create", sessionId="x") == "SESSION_EXISTS"
    assert await error_of(path, "session_create", sessionId="") == "BAD_REQUEST"
    assert await error_of(path, "session_exec", sessionId="nope", command="true") == "SESSION_NOT_FOUND"
    assert await error_of(path, "session_command", sessionId="x", commandId="nope") == "COMMAND_NOT_FOUND"
    assert await error_of(path, "session_exec", sessionId="x", command=3) == "BAD_REQUEST"
    code, _ = await run(path, "x", "echo listed")
    frames = await frames_of(path, "session_list")
    assert frames[0] == {"type": "session", "sessionId": "x", "ended": False, "exitCode": None}
    assert [(f["command"], f["exitCode"]) for f in frames[1:-1]] == [("echo listed", 0)]
    shell_pid = int((await run(path, "x", "echo $$"))[1][3:])
    await result_of(path, "session_delete", sessionId="x")
    assert await error_of(path, "session_delete", sessionId="x") == "SESSION_NOT_FOUND"
    assert await frames_of(path, "session_list") == [{"type": "result"}]
    wait_until(lambda: pid_gone(shell_pid), what="the session shell to die")
    assert not list((Path(path).parent / "sessions").iterdir())  # its logs are gone too


async def test_stopping_the_agent_kills_session_shells(agent: RunningAgent):
    path = agent.socket_path
    await result_of(path, "session_create", sessionId="k")
    shell_pid = int((await run(path, "k", "echo $$"))[1][3:])
    agent.stop()
    wait_until(lambda: pid_gone(shell_pid), what="the session shell to die with the agent")


async def test_only_a_running_command_counts_as_activity(agent: RunningAgent):
    path = agent.socket_path
    await result_of(path, "session_create", sessionId="idle")
    await run(path, "idle", "sleep 300 &")  # a finished command's leftovers are not a job
    assert (await result_of(path, "activity"))["running"] == 0
    fifo = agent.workdir / "hold"
    started = await result_of(path, "session_exec", sessionId="idle", command=f"mkfifo {fifo}; cat {fifo}",
                              **{"async": True})

    async def busy() -> bool:
        return (await result_of(path, "activity"))["running"] == 1

    await eventually(busy, what="the running command to count as activity")
    fifo.write_text("")
    await log_of(path, "idle", started["cmdId"], follow=True)
    assert (await result_of(path, "activity"))["running"] == 0
