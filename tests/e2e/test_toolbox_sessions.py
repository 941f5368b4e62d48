"""Process sessions through the official SDK (sync and async): SDK -> proxy -> runner -> the agent."""

from __future__ import annotations

import asyncio
import hashlib
import os

import aiohttp
import pytest
from aiohttp import WSMsgType
from daytona import AsyncDaytona, Daytona, SessionExecuteRequest
from daytona.common.errors import (
    DaytonaCommandAlreadyCompletedError,
    DaytonaConflictError,
    DaytonaNotFoundError,
    DaytonaSessionEndedError,
)

from corral_stack.stack import Stack
from corral_testing.waiting import wait_for
from .conftest import config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

OUT, ERR = b"\x01\x01\x01", b"\x02\x02\x02"
MIB = 1024 * 1024



def session_id(name: str) -> str:
    return f"{name}-{os.urandom(3).hex()}"



def split_marked(log: bytes) -> tuple[bytes, bytes]:
    """(stdout, stderr) of a marked log."""
    out, err = bytearray(), bytearray()
    for piece in log.replace(ERR, b"\0E").replace(OUT, b"\0O").split(b"\0")[1:]:
        (out if piece[:1] == b"O" else err).extend(piece[1:])
    return bytes(out), bytes(err)


class Collected:
    """What the log-streaming callbacks received."""

    def __init__(self) -> None:
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    async def on_stdout(self, text: str) -> None:  # an async callback: the SDK awaits it
        self.stdout.append(text)

    def on_stderr(self, text: str) -> None:
        self.stderr.append(text)


def test_sync_sdk_sessions(stack: Stack, sandbox_id: str) -> None:
    process = Daytona(config(stack)).get(sandbox_id).process
    sid = session_id("sync")
    process.create_session(sid)
    try:
        with pytest.raises(DaytonaConflictError):
            process.create_session(sid)
        first = process.execute_session_command(sid, SessionExecuteRequest(command="mkdir -p deep && cd deep && "
                                                                                   "export WHO=session"))
        assert first.exit_code == 0 and first.cmd_id
        ran = process.execute_session_command(sid, SessionExecuteRequest(command="echo $WHO in $(basename $PWD); "
                                                                                 "echo warn >&2; exit_code=3; "
                                                                                 "(exit $exit_code)"))
        assert (ran.exit_code, ran.stdout, ran.stderr) == (3, "session in deep\n", "warn\n")
        assert sorted(ran.output.splitlines()) == ["session in deep", "warn"]  # the streams interleave as read
        heredoc = process.execute_session_command(sid, SessionExecuteRequest(command="cat <<'EOF'\n$WHO\nEOF"))
        assert (heredoc.exit_code, heredoc.stdout) == (0, "$WHO\n")

        started = process.execute_session_command(sid, SessionExecuteRequest(command="sleep 0.5; echo slow",
                                                                              run_async=True))
        assert started.exit_code is None
        assert process.get_session_command(sid, started.cmd_id).exit_code is None
        command = asyncio.run(wait_for(lambda: process.get_session_command(sid, started.cmd_id).exit_code == 0,
                                       timeout=30, message="the async command to finish"))
        assert command
        logs = process.get_session_command_logs(sid, started.cmd_id)
        assert (logs.output, logs.stdout, logs.stderr) == ("slow\n", "slow\n", "")

        session = process.get_session(sid)
        assert session.session_id == sid
        assert [(c.command, c.exit_code) for c in session.commands][-2:] == [("cat <<'EOF'\n$WHO\nEOF", 0),
                                                                            ("sleep 0.5; echo slow", 0)]
        assert sid in [s.session_id for s in process.list_sessions()]

        reader = process.execute_session_command(sid, SessionExecuteRequest(command="read name; echo \"hi $name\"",
                                                                             run_async=True))
        process.send_session_command_input(sid, reader.cmd_id, "corral\n")
        collected = Collected()
        asyncio.run(process.get_session_command_logs_async(sid, reader.cmd_id, collected.on_stdout,
                                                           collected.on_stderr))
        assert ("".join(collected.stdout), collected.stderr) == ("corral\nhi corral\n", [])  # input is echoed
        with pytest.raises(DaytonaCommandAlreadyCompletedError):
            process.send_session_command_input(sid, reader.cmd_id, "late\n")

        ended = process.execute_session_command(sid, SessionExecuteRequest(command="exit 4"))
        assert ended.exit_code == 4
        with pytest.raises(DaytonaSessionEndedError):
            process.execute_session_command(sid, SessionExecuteRequest(command="echo again"))
    finally:
        process.delete_session(sid)
    assert sid not in [s.session_id for s in process.list_sessions()]
    with pytest.raises(DaytonaNotFoundError):
        process.get_session(sid)


def test_sync_sdk_streams_a_50_mib_log(stack: Stack, sandbox_id: str) -> None:
    process = Daytona(config(stack)).get(sandbox_id).process
    sid = session_id("big")
    process.create_session(sid)
    try:
        size = 50 * MIB
        line = "0123456789abcdef" * 4 + "\n"  # 65 bytes
        command = (f"yes {line.strip()} | head -c {size}; echo done >&2")
        started = process.execute_session_command(sid, SessionExecuteRequest(command=command, run_async=True))
        collected = Collected()
        asyncio.run(process.get_session_command_logs_async(sid, started.cmd_id, collected.on_stdout,
                                                           collected.on_stderr))
        expected = (line * (size // len(line) + 1))[:size]
        stdout = "".join(collected.stdout)
        assert len(stdout) == size and hashlib.sha256(stdout.encode()).digest() == \
            hashlib.sha256(expected.encode()).digest()
        assert "".join(collected.stderr) == "done\n"
        assert process.get_session_command(sid, started.cmd_id).exit_code == 0
    finally:
        process.delete_session(sid)


def test_large_json_logs_are_complete(stack: Stack, sandbox_id: str) -> None:
    """Logs above the in-memory size are streamed into the JSON body; the SDK still gets every byte."""
    process = Daytona(config(stack)).get(sandbox_id).process
    sid = session_id("json")
    process.create_session(sid)
    try:
        command = "for i in $(seq 1 40000); do echo \"out $i é\"; echo \"err $i\" >&2; done"
        ran = process.execute_session_command(sid, SessionExecuteRequest(command=command), timeout=120)
        stdout = "".join(f"out {i} é\n" for i in range(1, 40001))
        stderr = "".join(f"err {i}\n" for i in range(1, 40001))
        assert (ran.exit_code, ran.stdout, ran.stderr) == (0, stdout, stderr)
        assert sorted(ran.output.splitlines()) == sorted((stdout + stderr).splitlines())
        logs = process.get_session_command_logs(sid, ran.cmd_id)
        assert (logs.stdout, logs.stderr, logs.output) == (stdout, stderr, ran.output)
    finally:
        process.delete_session(sid)


def test_entrypoint_session_is_empty(stack: Stack, sandbox_id: str) -> None:
    process = Daytona(config(stack)).get(sandbox_id).process
    assert process.get_entrypoint_session().commands == []
    logs = process.get_entrypoint_logs()
    assert (logs.output, logs.stdout, logs.stderr) == ("", "", "")
    collected = Collected()
    asyncio.run(process.get_entrypoint_logs_async(collected.on_stdout, collected.on_stderr))
    assert (collected.stdout, collected.stderr) == ([], [])


async def test_async_sdk_sessions(stack: Stack, sandbox_id: str) -> None:
    async with AsyncDaytona(config(stack)) as daytona:
        process = (await daytona.get(sandbox_id)).process
        sid = session_id("async")
        await process.create_session(sid)
        try:
            with pytest.raises(DaytonaConflictError):
                await process.create_session(sid)
            await process.execute_session_command(sid, SessionExecuteRequest(command="export N=7; cd /tmp"))
            ran = await process.execute_session_command(sid, SessionExecuteRequest(command="echo $N $PWD"))
            assert (ran.exit_code, ran.stdout, ran.stderr, ran.output) == (0, "7 /tmp\n", "", "7 /tmp\n")

            started = await process.execute_session_command(sid, SessionExecuteRequest(
                command="read a; echo \"$a\" >&2; echo out", run_async=True, suppress_input_echo=True))
            assert started.exit_code is None
            await process.send_session_command_input(sid, started.cmd_id, "to-stderr\n")
            collected = Collected()
            await process.get_session_command_logs_async(sid, started.cmd_id, collected.on_stdout, collected.on_stderr)
            assert ("".join(collected.stdout), "".join(collected.stderr)) == ("out\n", "to-stderr\n")
            command = await process.get_session_command(sid, started.cmd_id)
            assert (command.id, command.exit_code) == (started.cmd_id, 0)
            logs = await process.get_session_command_logs(sid, started.cmd_id)
            assert (logs.stdout, logs.stderr) == ("out\n", "to-stderr\n")
            assert sorted(logs.output.splitlines()) == ["out", "to-stderr"]
            with pytest.raises(DaytonaCommandAlreadyCompletedError):
                await process.send_session_command_input(sid, started.cmd_id, "x\n")

            session = await process.get_session(sid)
            assert [c.exit_code for c in session.commands] == [0, 0, 0]
            assert sid in [s.session_id for s in await process.list_sessions()]
            assert (await process.execute_session_command(sid, SessionExecuteRequest(command="exit"))).exit_code == 0
            with pytest.raises(DaytonaSessionEndedError):
                await process.execute_session_command(sid, SessionExecuteRequest(command="true", run_async=True))
        finally:
            await process.delete_session(sid)
        with pytest.raises(DaytonaNotFoundError):
            await process.get_session(sid)


async def test_follow_wire_websocket_and_chunked(stack: Stack, sandbox_id: str) -> None:
    """The raw wire: marked bytes over a WebSocket closed with 1000, or a chunked octet-stream body."""
    auth = {"Authorization": f"Bearer {stack.admin_api_key}"}
    base = f"{stack.toolbox_url}/{sandbox_id}/process/session"
    sid = session_id("wire")
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.post(base, json={"sessionId": sid}) as response:
            assert response.status == 201
        async with http.post(f"{base}/{sid}/exec", json={"command": "printf 'a\\nb'; echo E >&2",
                                                         "runAsync": True}) as response:
            assert response.status == 202
            cmd_id = (await response.json())["cmdId"]
        url = f"{base}/{sid}/command/{cmd_id}/logs"
        received = b""
        async with http.ws_connect(url, params={"follow": "true"}) as ws:
            async for message in ws:
                assert message.type == WSMsgType.BINARY
                received += message.data
            assert ws.close_code == 1000
        assert received[:3] in (OUT, ERR) and split_marked(received) == (b"a\nb", b"E\n")
        assert OUT + b"a\n" + OUT + b"b" in received
        async with http.get(url, params={"follow": "true"}) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "application/octet-stream"
            assert await response.read() == received
        async with http.get(url) as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("application/json")
            assert (await response.json())["stdout"] == "a\nb"
        async with http.post(f"{base}/{sid}/exec", json={"command": "echo legacy", "async": True}) as response:
            assert response.status == 202  # the deprecated spelling of runAsync
        async with http.get(f"{base}/{sid}/command/nope/logs", params={"follow": "true"}) as response:
            assert response.status == 404
        async with http.delete(f"{base}/{sid}") as response:
            assert response.status == 204
        async with http.post(f"{base}/{sid}/exec", json={"command": 5}) as response:
            assert response.status == 400
