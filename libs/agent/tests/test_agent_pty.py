"""PTYs in the agent: a shell per PTY that outlives its clients, fan-out, replay, resize, kill."""
from __future__ import annotations

import asyncio
import base64
import os
import time
from contextlib import aclosing

import pytest
from agent_harness import DEADLINE_SECONDS, RunningAgent, pid_gone, wait_until_async
from corral_agent.client import AgentStream, call, open_stream


class PtyClient:
    """One attached client: output collected in `seen`, the final frame in `exit`."""

    def __init__(self, stream: AgentStream, attached: dict) -> None:
        self.stream = stream
        self.attached = attached
        self.seen = bytearray()
        self.exit: dict | None = None

    @classmethod
    async def open(cls, socket_path: str, request: dict) -> "PtyClient":
        stream = await open_stream(socket_path, request)
        first = await asyncio.wait_for(stream.recv(), DEADLINE_SECONDS)
        assert first is not None and first["type"] == "attached", first
        return cls(stream, first)

    async def send(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        await self.stream.send({"type": "input", "data": base64.b64encode(data).decode()})

    async def read_until(self, marker: bytes, timeout: float = DEADLINE_SECONDS) -> bytes:
        start = len(self.seen)
        async with asyncio.timeout(timeout):
            while marker not in self.seen[start:]:
                if not await self._next():
                    raise AssertionError(f"ended before {marker!r}: {bytes(self.seen[-300:])!r}")
        return bytes(self.seen[start:])

    async def wait_exit(self) -> dict:
        async with asyncio.timeout(DEADLINE_SECONDS):
            while await self._next():
                pass
        assert self.exit is not None
        return self.exit

    async def _next(self) -> bool:
        frame = await self.stream.recv()
        if frame is None:
            return False
        if frame["type"] == "output":
            self.seen += base64.b64decode(frame["data"])
            return True
        assert frame["type"] == "exit", frame
        self.exit = frame
        return True

    async def close(self) -> None:
        await self.stream.close()


async def request(socket_path: str, message: dict) -> dict:
    async with aclosing(call(socket_path, message)) as frames:
        return [frame async for frame in frames][-1]


def name() -> str:
    return "pty-" + os.urandom(3).hex()


async def test_a_pty_runs_a_shell_with_its_envs_cwd_and_size_and_reports_the_exit(agent: RunningAgent):
    pty = name()
    client = await PtyClient.open(agent.socket_path, {"op": "pty_create", "id": pty, "attach": True, "cwd": "/tmp",
                                                      "envs": {"GREETING": "hé"}, "cols": 91, "rows": 17})
    info = client.attached["session"]
    assert {k: v for k, v in info.items() if k != "createdAt"} == {
        "id": pty, "active": True, "cols": 91, "rows": 17, "cwd": "/tmp", "envs": {"GREETING": "hé"},
        "lazyStart": False}
    await client.send('echo "[$GREETING]"; pwd; stty size; echo $TERM-$CORRAL_TEST_MARK; tty; echo EN""D\n')
    out = await client.read_until(b"END\r\n")
    assert "[hé]\r\n/tmp\r\n17 91\r\nxterm-256color-inherited\r\n/dev/pts/".encode() in out
    await client.send("exit 5\n")
    assert await client.wait_exit() == {"type": "exit", "exitCode": 5, "signal": None}
    ended = await request(agent.socket_path, {"op": "pty_info", "id": pty})
    assert ended["session"]["active"] is False


async def test_clients_come_and_go_while_the_shell_lives_on(agent: RunningAgent):
    pty = name()
    first = await PtyClient.open(agent.socket_path, {"op": "pty_create", "id": pty, "attach": True})
    await first.send("echo on\"\"e\n")
    await first.read_until(b"one\r\n")
    await first.close()
    # Output made while nobody is attached is kept for the next client.
    other = await PtyClient.open(agent.socket_path, {"op": "pty_attach", "id": pty})
    await other.read_until(b"one\r\n")
    await other.send("echo tw\"\"o\n")
    await other.read_until(b"two\r\n")
    await other.close()

    a = await PtyClient.open(agent.socket_path, {"op": "pty_attach", "id": pty})
    b = await PtyClient.open(agent.socket_path, {"op": "pty_attach", "id": pty})
    await a.read_until(b"two\r\n")
    await b.read_until(b"two\r\n")
    await b.send("echo fr\"\"om-b\n")  # any client types; every client sees the output
    await a.read_until(b"from-b\r\n")
    await b.read_until(b"from-b\r\n")
    await a.send("exit 0\n")
    assert (await a.wait_exit())["exitCode"] == 0
    assert (await b.wait_exit())["exitCode"] == 0
    # An ended PTY replays its output and exit to a late client.
    late = await PtyClient.open(agent.socket_path, {"op": "pty_attach", "id": pty})
    assert late.attached["session"]["active"] is False
    assert (await late.wait_exit())["exitCode"] == 0
    assert b"from-b\r\n" in late.seen


async def test_resize_reaches_the_terminal(agent: RunningAgent):
    pty = name()
    client = await PtyClient.open(agent.socket_path, {"op": "pty_create", "id": pty, "attach": True})
    resized = await request(agent.socket_path, {"op": "pty_resize", "id": pty, "cols": 132, "rows": 43})
    assert (resized["session"]["cols"], resized["session"]["rows"]) == (132, 43)
    await client.send("stty size; echo EN\"\"D\n")
    assert b"43 132\r\nEND\r\n" in await client.read_until(b"END\r\n")
    await client.close()
    await request(agent.socket_path, {"op": "pty_kill", "id": pty})


async def test_kill_ends_the_whole_session_and_frees_the_id(agent: RunningAgent):
    pty = name()
    client = await PtyClient.open(agent.socket_path, {"op": "pty_create", "id": pty, "attach": True})
    await client.send("sleep 1000 & echo JO\"\"B=$!; echo EN\"\"D\n")  # a job in a process group of its own
    out = await client.read_until(b"END\r\n")
    job = int(out.split(b"JOB=")[1].split(b"\r\n")[0])
    assert await request(agent.socket_path, {"op": "pty_kill", "id": pty}) == {"type": "result"}
    assert await client.wait_exit() == {"type": "exit", "exitCode": 137, "signal": 9}
    await wait_until_async(lambda: pid_gone(job), what="the background job to be killed")
    listed = await request(agent.socket_path, {"op": "pty_list"})
    assert pty not in [s["id"] for s in listed["sessions"]]
    assert (await request(agent.socket_path, {"op": "pty_info", "id": pty}))["code"] == "PTY_NOT_FOUND"
    again = await PtyClient.open(agent.socket_path, {"op": "pty_create", "id": pty, "attach": True})
    await again.send("exit 0\n")
    assert (await again.wait_exit())["exitCode"] == 0


async def test_a_lazy_pty_starts_with_its_first_client(agent: RunningAgent):
    pty = name()
    created = await request(agent.socket_path, {"op": "pty_create", "id": pty, "lazyStart": True})
    assert created["session"]["active"] is False and created["session"]["lazyStart"] is True
    client = await PtyClient.open(agent.socket_path, {"op": "pty_attach", "id": pty})
    assert client.attached["session"]["active"] is True
    await client.send("exit 2\n")
    assert (await client.wait_exit())["exitCode"] == 2


async def test_a_client_that_does_not_read_loses_nothing(agent: RunningAgent):
    pty = name()
    slow = await PtyClient.open(agent.socket_path, {"op": "pty_create", "id": pty, "attach": True})
    fast = await PtyClient.open(agent.socket_path, {"op": "pty_attach", "id": pty})
    await fast.send("seq 1 100000; echo DO\"\"NE\n")
    # `fast` is held back with `slow` (the shell waits), yet both get every byte once `slow` reads.
    peak_before = agent.status_kib("VmHWM")
    out_slow, out_fast = await asyncio.gather(slow.read_until(b"DONE\r\n"), fast.read_until(b"DONE\r\n"))
    expected = b"".join(b"%d\r\n" % i for i in range(1, 100001)) + b"DONE\r\n"
    assert expected in out_slow and expected in out_fast
    assert agent.status_kib("VmHWM") - peak_before < 4096
    await slow.close()
    await fast.close()
    await request(agent.socket_path, {"op": "pty_kill", "id": pty})


@pytest.mark.parametrize(("message", "code"), [
    ({"op": "pty_create", "id": ""}, "BAD_REQUEST"),
    ({"op": "pty_create", "id": "a/b"}, "BAD_REQUEST"),
    ({"op": "pty_create", "id": "x", "cols": 0}, "BAD_REQUEST"),
    ({"op": "pty_create", "id": "x", "rows": 1001}, "BAD_REQUEST"),
    ({"op": "pty_create", "id": "x", "envs": {"A": 1}}, "BAD_REQUEST"),
    ({"op": "pty_create", "id": "x", "cwd": "/no/such/dir"}, "CWD_NOT_FOUND"),
    ({"op": "pty_attach", "id": "missing"}, "PTY_NOT_FOUND"),
    ({"op": "pty_resize", "id": "missing", "cols": 10, "rows": 10}, "PTY_NOT_FOUND"),
    ({"op": "pty_kill", "id": "missing"}, "PTY_NOT_FOUND"),
])
async def test_bad_requests_are_refused(agent: RunningAgent, message: dict, code: str):
    reply = await request(agent.socket_path, message)
    assert reply["type"] == "error" and reply["code"] == code, reply


async def test_an_id_in_use_is_refused_and_agent_shutdown_kills_the_shells(agent: RunningAgent):
    pty = name()
    client = await PtyClient.open(agent.socket_path, {"op": "pty_create", "id": pty, "attach": True})
    assert (await request(agent.socket_path, {"op": "pty_create", "id": pty}))["code"] == "PTY_EXISTS"
    await client.send("echo PI\"\"D=$$; echo EN\"\"D\n")
    shell = int((await client.read_until(b"END\r\n")).split(b"PID=")[1].split(b"\r\n")[0])
    started = time.monotonic()
    agent.stop()
    await wait_until_async(lambda: pid_gone(shell), what="the shell to be killed with the agent")
    assert time.monotonic() - started < DEADLINE_SECONDS
