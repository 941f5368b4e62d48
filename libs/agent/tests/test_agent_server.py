"""The socket server: ping, framing errors, concurrency, socket file handling, shutdown."""
from __future__ import annotations

import asyncio
import base64
import os
import pwd
import signal
import socket
import stat

import pytest
from agent_harness import RunningAgent, raw_exchange, run_exec, start_agent, wait_until
from corral_agent.bundle import agent_version
from corral_agent.client import AgentUnavailable, call, ping
from corral_agent.framing import encode_frame


async def test_ping_describes_the_agent(agent: RunningAgent):
    pong = await ping(agent.socket_path)
    assert pong == {
        "type": "pong",
        "version": agent_version(),
        "pid": agent.proc.pid,
        "workdir": str(agent.workdir),
        "home": os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir,
        "user": pwd.getpwuid(os.getuid()).pw_name,
    }


def test_socket_file_is_group_accessible_and_its_directory_created(agent: RunningAgent):
    assert stat.S_IMODE(os.stat(agent.socket_path).st_mode) == 0o660
    assert stat.S_ISSOCK(os.stat(agent.socket_path).st_mode)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"\x00\x00\x00\x05{bad}", "JSON"),
        (b"\x00\x00\x00\x03[1]", "object"),
        (b"\x00\x00\x00\x02\xff\xfe", "UTF-8"),
        (b"\x00\x00\x00\x00", "JSON"),
        (b"\x7f\xff\xff\xff", "exceeds"),
        (encode_frame({"no": "op"}), "op"),
        (encode_frame({"op": 1}), "op"),
    ],
)
def test_malformed_frames_get_an_error_frame_and_the_agent_serves_on(agent: RunningAgent, payload, fragment):
    frames = raw_exchange(agent.socket_path, payload)
    assert len(frames) == 1 and frames[0]["type"] == "error"
    assert frames[0]["code"] == "BAD_REQUEST"
    assert fragment in frames[0]["message"]
    assert raw_exchange(agent.socket_path, encode_frame({"op": "ping"}))[0]["type"] == "pong"


def test_unknown_op(agent: RunningAgent):
    frames = raw_exchange(agent.socket_path, encode_frame({"op": "teleport"}))
    assert [(f["type"], f["code"]) for f in frames] == [("error", "UNKNOWN_OP")]


def test_truncated_frame_and_silent_connections_do_not_disturb_others(agent: RunningAgent):
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(agent.socket_path)
    truncated = raw_exchange(agent.socket_path, b"\x00\x00\x01\x00{\"op\":", close_write=True)
    assert [f["code"] for f in truncated] == ["BAD_REQUEST"]
    assert raw_exchange(agent.socket_path, encode_frame({"op": "ping"}))[0]["type"] == "pong"
    silent.close()
    assert raw_exchange(agent.socket_path, b"", close_write=True) == []  # a liveness probe


async def test_twenty_execs_run_concurrently(agent: RunningAgent):
    (agent.workdir / "arrived").mkdir()
    # Each exec waits until all 20 have arrived, so this passes only if they truly run in parallel.
    command = (
        'touch arrived/$N; until [ "$(ls arrived | wc -l)" -ge 20 ]; do sleep 0.01; done; echo "done $N"'
    )
    results = await asyncio.gather(
        *(run_exec(agent.socket_path, command=command, env={"N": str(n)}, timeout=60) for n in range(20))
    )
    for n, result in enumerate(results):
        assert result.output == f"done {n}\n".encode()
        assert result.last["exitCode"] == 0 and not result.last["timedOut"]
    assert agent.child_pids() == []


def test_a_stale_socket_file_is_replaced(short_tmp):
    stale = short_tmp / "run" / "agent.sock"
    stale.parent.mkdir()
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(stale))
    leftover.close()  # the file stays, nobody listens: what a killed agent leaves behind
    running = start_agent(short_tmp)
    try:
        assert raw_exchange(running.socket_path, encode_frame({"op": "ping"}))[0]["pid"] == running.proc.pid
    finally:
        running.stop()


def test_refuses_to_take_over_a_live_agents_socket(agent: RunningAgent, short_tmp):
    import subprocess
    import sys

    second = subprocess.run(
        [sys.executable, "-m", "corral_agent", "--socket", agent.socket_path, "--workdir", str(short_tmp)],
        capture_output=True, text=True, timeout=30,
    )
    assert second.returncode == 1
    assert "another process is listening" in second.stderr
    assert raw_exchange(agent.socket_path, encode_frame({"op": "ping"}))[0]["pid"] == agent.proc.pid


async def test_sigterm_stops_the_agent_and_removes_its_socket(agent: RunningAgent):
    assert agent.stop() == 0
    assert not os.path.exists(agent.socket_path)
    with pytest.raises(AgentUnavailable):
        await ping(agent.socket_path)


async def test_client_refuses_a_request_over_the_agents_limit(agent: RunningAgent):
    with pytest.raises(ValueError, match="exceeds"):
        async for _ in call(agent.socket_path, {"op": "exec", "argv": ["cat"], "stdin": "QUFB" * (5 * 1024 * 1024)}):
            pass


async def test_client_reports_an_agent_that_dies_mid_exec(agent: RunningAgent):
    frames = call(agent.socket_path, {"op": "exec", "command": "echo $$; sleep 300"})
    orphan_group = None
    try:
        with pytest.raises(AgentUnavailable):
            async for frame in frames:
                if frame["type"] == "output":
                    orphan_group = int(base64.b64decode(frame["data"]))
                    agent.proc.kill()  # SIGKILL: the agent cannot clean up (in a sandbox, tini exits too)
        wait_until(lambda: agent.proc.poll() is not None, what="the agent to die")
    finally:
        if orphan_group is not None:
            os.killpg(orphan_group, signal.SIGKILL)
