"""PTYs through the official SDK (sync and async): SDK -> proxy -> runner -> the sandbox's agent."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time

import aiohttp
import pytest
from aiohttp import WSMsgType
from daytona import AsyncDaytona, Daytona, PtySize
from daytona.common.errors import DaytonaBadRequestError, DaytonaConflictError, DaytonaError, DaytonaNotFoundError

from corral_stack.stack import Stack
from corral_testing.waiting import wait_for
from .conftest import config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

DEADLINE = 60.0
# Markers are typed split (`EN""D`) so that the echo of the command line never matches them.
ALL_BYTES = bytes(range(256)) + "é€ ✓".encode()
BYTES_COMMAND = ("stty raw -echo; python3 -c \"import sys; o = sys.stdout.buffer; "
                 "o.write(b'<ST' + b'ART>' + bytes(range(256)) + '\u00e9\u20ac \u2713'.encode() + b'<DO' + b'NE>')\"; "
                 "stty sane; echo; echo BY\"\"TES-OK\n")



def pty_id(name: str) -> str:
    return f"{name}-{os.urandom(3).hex()}"



def read_until(handle, seen: bytearray, marker: bytes, timeout: float = DEADLINE) -> bytes:  # type: ignore[no-untyped-def]
    """Append the sync handle's output to `seen` until `marker` appears; returns what followed the call."""
    start = len(seen)
    deadline = time.monotonic() + timeout
    for chunk in handle:
        seen += chunk
        if marker in seen[start:]:
            return bytes(seen[start:])
        assert time.monotonic() < deadline, f"no {marker!r} within {timeout}s: {bytes(seen[-400:])!r}"
    raise AssertionError(f"the PTY ended before {marker!r}: {bytes(seen[-400:])!r} (error {handle.error})")


def test_sync_pty_runs_a_shell_with_envs_cwd_and_size_and_reports_the_exit(stack: Stack, sandbox_id: str) -> None:
    sandbox = Daytona(config(stack)).get(sandbox_id)
    name = pty_id("sync")
    handle = sandbox.process.create_pty_session(name, cwd="/tmp", envs={"GREETING": "hé llo", "LANG": "C.UTF-8"},
                                                pty_size=PtySize(rows=33, cols=111))
    try:
        seen = bytearray()
        handle.send_input(b'echo "[$GREETING]"; pwd; stty size; echo $TERM; echo EN""D1\n')
        out = read_until(handle, seen, b"END1\r\n")
        assert "[hé llo]\r\n/tmp\r\n33 111\r\nxterm-256color\r\n".encode() in out

        handle.send_input("printf 'caf\\303\\251 \\342\\202\\254\\n'; echo EN\"\"D2\n")
        assert "café €\r\nEND2\r\n".encode() in read_until(handle, seen, b"END2\r\n")

        handle.send_input(BYTES_COMMAND)
        out = read_until(handle, seen, b"BYTES-OK\r\n")
        assert out[out.index(b"<START>") + 7: out.index(b"<DONE>")] == ALL_BYTES

        info = sandbox.process.get_pty_session_info(name)
        assert (info.id, info.active, info.cols, info.rows, info.cwd, info.lazy_start) == (name, True, 111, 33,
                                                                                           "/tmp", False)
        assert info.envs == {"GREETING": "hé llo", "LANG": "C.UTF-8"} and info.created_at.endswith("Z")

        handle.send_input("exit 7\n")
        result = handle.wait(timeout=DEADLINE)
        assert (result.exit_code, result.error) == (7, None)
        assert sandbox.process.get_pty_session_info(name).active is False
    finally:
        handle.disconnect()
    sandbox.process.kill_pty_session(name)
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.get_pty_session_info(name)


def test_sync_pty_outlives_its_websocket_and_is_resized_listed_and_killed(stack: Stack, sandbox_id: str) -> None:
    sandbox = Daytona(config(stack)).get(sandbox_id)
    name = pty_id("reconnect")
    first = sandbox.process.create_pty_session(name)
    seen = bytearray()
    try:
        first.send_input("echo fir\"\"st-$((6*7))\n")
        read_until(first, seen, b"first-42\r\n")
    finally:
        first.disconnect()
    with pytest.raises(DaytonaConflictError):
        sandbox.process.create_pty_session(name)

    listed = {s.id: s for s in sandbox.process.list_pty_sessions()}
    assert listed[name].active is True and (listed[name].cols, listed[name].rows) == (80, 24)

    again = sandbox.process.connect_pty_session(name)
    watcher = sandbox.process.connect_pty_session(name)  # a second client at the same time
    try:
        seen = bytearray()
        read_until(again, seen, b"first-42\r\n")  # the recent output is replayed to a new client
        info = sandbox.process.resize_pty_session(name, PtySize(rows=40, cols=132))
        assert (info.id, info.cols, info.rows, info.active) == (name, 132, 40, True)
        again.send_input("stty size; echo sec\"\"ond\n")
        assert b"40 132\r\nsecond\r\n" in read_until(again, seen, b"second\r\n")
        assert b"40 132\r\nsecond\r\n" in read_until(watcher, bytearray(), b"second\r\n")
        again.resize(PtySize(rows=20, cols=60))
        watcher.send_input("stty size; echo thi\"\"rd\n")  # keystrokes from either client
        assert b"20 60\r\nthird\r\n" in read_until(again, seen, b"third\r\n")

        sandbox.process.kill_pty_session(name)
        result = again.wait(timeout=DEADLINE)
        assert result.exit_code == 137 and "signal 9" in (result.error or "")
        assert watcher.wait(timeout=DEADLINE).exit_code == 137
    finally:
        again.disconnect()
        watcher.disconnect()
    assert name not in [s.id for s in sandbox.process.list_pty_sessions()]
    with pytest.raises(DaytonaError, match="404"):  # the sync SDK does not type a refused connect
        sandbox.process.connect_pty_session(name)
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.kill_pty_session(name)


def test_sync_pty_delivers_a_burst_of_output_complete(stack: Stack, sandbox_id: str) -> None:
    sandbox = Daytona(config(stack)).get(sandbox_id)
    name = pty_id("burst")
    handle = sandbox.process.create_pty_session(name)
    try:
        seen = bytearray()
        handle.send_input("seq 1 200000; echo BU\"\"RST-END\n")
        out = read_until(handle, seen, b"BURST-END\r\n")
        expected = b"".join(b"%d\r\n" % i for i in range(1, 200001))
        start = out.index(b"1\r\n2\r\n3\r\n")  # after the prompt and the echoed command line
        assert out[start: start + len(expected)] == expected
    finally:
        handle.disconnect()
        sandbox.process.kill_pty_session(name)


def test_pty_errors_are_typed(stack: Stack, sandbox_id: str) -> None:
    sandbox = Daytona(config(stack)).get(sandbox_id)
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.get_pty_session_info("no-such-pty")
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.resize_pty_session("no-such-pty", PtySize(rows=10, cols=10))
    # A refused upgrade carries only its status to the SDK (its message is "WebSocket upgrade failed").
    with pytest.raises(DaytonaBadRequestError):
        sandbox.process.create_pty_session(pty_id("badcwd"), cwd="/no/such/dir")
    with pytest.raises(DaytonaBadRequestError):
        sandbox.process.create_pty_session(pty_id("huge"), pty_size=PtySize(rows=10, cols=5000))


async def test_async_pty_create_connect_resize_list_kill(stack: Stack, sandbox_id: str) -> None:
    async with AsyncDaytona(config(stack)) as daytona:
        sandbox = await daytona.get(sandbox_id)
        name = pty_id("async")
        seen, other = bytearray(), bytearray()
        handle = await sandbox.process.create_pty_session(name, seen.extend, cwd="/tmp", envs={"WHO": "àsync"},
                                                          pty_size=PtySize(rows=25, cols=90))
        try:
            await handle.send_input("echo \"<$WHO>\"; pwd; stty size; echo A1\"\"-END\n")
            await wait_for(lambda: b"A1-END\r\n" in seen, timeout=DEADLINE, message="first output")
            assert "<àsync>\r\n/tmp\r\n25 90\r\nA1-END\r\n".encode() in seen

            await handle.send_input("printf 'caf\\303\\251\\n'; echo A2\"\"-END\n")
            await wait_for(lambda: b"A2-END\r\n" in seen, timeout=DEADLINE, message="utf-8 output")
            assert "café\r\nA2-END\r\n".encode() in seen

            info = await sandbox.process.get_pty_session_info(name)
            assert (info.active, info.cols, info.rows, info.cwd, info.envs) == (True, 90, 25, "/tmp", {"WHO": "àsync"})
            assert name in [s.id for s in await sandbox.process.list_pty_sessions()]

            await handle.disconnect()  # the PTY outlives its WebSocket
            handle = await sandbox.process.connect_pty_session(name, other.extend)
            await wait_for(lambda: b"A2-END\r\n" in other, timeout=DEADLINE, message="replayed output")
            resized = await handle.resize(PtySize(rows=50, cols=160))
            assert (resized.cols, resized.rows) == (160, 50)
            await handle.send_input("stty size; echo A3\"\"-END\n")
            await wait_for(lambda: b"A3-END\r\n" in other, timeout=DEADLINE, message="output after reconnect")
            assert b"50 160\r\nA3-END\r\n" in other

            await handle.send_input("exit 3\n")
            result = await handle.wait()
            assert (result.exit_code, result.error) == (3, None)
            assert (await sandbox.process.get_pty_session_info(name)).active is False
        finally:
            await handle.disconnect()

        killed = pty_id("async-kill")
        handle = await sandbox.process.create_pty_session(killed, seen.extend)
        try:
            await sandbox.process.kill_pty_session(killed)
            assert (await handle.wait()).exit_code == 137
        finally:
            await handle.disconnect()
        assert killed not in [s.id for s in await sandbox.process.list_pty_sessions()]
        with pytest.raises(DaytonaNotFoundError):
            await sandbox.process.get_pty_session_info(killed)


async def test_raw_websocket_gets_the_exit_in_the_close_reason(stack: Stack, sandbox_id: str) -> None:
    """Without the exit-control subprotocol there is no `exited` frame: the close reason carries the exit."""
    url = f"{stack.toolbox_url}/{sandbox_id}/process/pty/create-connect"
    auth = {"Authorization": f"Bearer {stack.admin_api_key}"}
    envs = base64.urlsafe_b64encode(json.dumps({"RAW": "yes"}).encode()).rstrip(b"=").decode()
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(url, params={"id": pty_id("raw")}) as plain:  # no upgrade
            assert plain.status == 400 and "WebSocket" in (await plain.json())["message"]
        async with http.ws_connect(url, params={"id": pty_id("raw"), "cols": "70", "rows": "20"},
                                   protocols=(f"X-Daytona-Pty-Envs~{envs}",)) as ws:
            assert json.loads(await ws.receive_str(timeout=10)) == {"type": "control", "status": "connected"}
            await ws.send_bytes(b"echo $RAW-$COLUMNS; exit 4\n")
            output, texts = b"", []
            async with asyncio.timeout(DEADLINE):
                while (message := await ws.receive()).type in (WSMsgType.BINARY, WSMsgType.TEXT):
                    if message.type == WSMsgType.BINARY:
                        output += message.data
                    else:
                        texts.append(message.data)
            assert (message.type, message.data, json.loads(message.extra)) == (WSMsgType.CLOSE, 1000, {"exitCode": 4})
            assert texts == [] and b"yes-70\r\n" in output


async def test_rest_two_step_create_then_connect_with_lazy_start(stack: Stack, sandbox_id: str) -> None:
    """`POST /process/pty` (the generated client's older flow), then the `/{id}/connect` WebSocket."""
    base = f"{stack.toolbox_url}/{sandbox_id}/process/pty"
    name = pty_id("lazy")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {stack.admin_api_key}"}) as http:
        body = {"id": name, "cwd": "/tmp", "envs": {"K": "v"}, "cols": 100, "rows": 30, "lazyStart": True}
        async with http.post(base, json=body) as created:
            assert (created.status, await created.json()) == (201, {"sessionId": name})
        async with http.post(base, json=body) as again:
            assert again.status == 409 and (await again.json())["source"] == "DAYTONA_DAEMON"
        async with http.post(base, json={"id": 5}) as bad:
            assert bad.status == 400
        async with http.get(f"{base}/{name}") as got:
            info = await got.json()
            assert {k: info[k] for k in ("active", "lazyStart", "cwd", "envs", "cols", "rows")} == {
                "active": False, "lazyStart": True, "cwd": "/tmp", "envs": {"K": "v"}, "cols": 100, "rows": 30}
        async with http.ws_connect(f"{base}/{name}/connect", protocols=("X-Daytona-Pty-Exit-Control",)) as ws:
            assert ws.protocol == "X-Daytona-Pty-Exit-Control"
            assert json.loads(await ws.receive_str(timeout=10))["status"] == "connected"
            async with http.get(f"{base}/{name}") as got:
                assert (await got.json())["active"] is True  # started by its first client
            async with http.delete(f"{base}/{name}") as deleted:
                assert (deleted.status, deleted.content_type, await deleted.json()) == (200, "application/json", {})
            texts = []
            async with asyncio.timeout(DEADLINE):
                while (message := await ws.receive()).type in (WSMsgType.BINARY, WSMsgType.TEXT):
                    if message.type == WSMsgType.TEXT:
                        texts.append(json.loads(message.data))
            assert texts == [{"type": "control", "status": "exited", "exitCode": 137,
                              "exitReason": "killed by signal 9"}]
            assert (message.data, json.loads(message.extra)["exitCode"]) == (1000, 137)
        async with http.delete(f"{base}/{name}") as gone:
            assert gone.status == 404


async def test_stopping_the_sandbox_ends_its_pty_websockets(stack: Stack, rest) -> None:  # type: ignore[no-untyped-def]
    sandbox = await rest.create()
    try:
        url = f"{stack.toolbox_url}/{sandbox['id']}/process/pty/create-connect"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {stack.admin_api_key}"}) as http:
            async with http.ws_connect(url, params={"id": "doomed"}) as ws:
                assert json.loads(await ws.receive_str(timeout=10))["status"] == "connected"
                status, body = await rest.call("POST", f"{rest.api}/sandbox/{sandbox['id']}/stop")
                assert status == 200, body
                async with asyncio.timeout(DEADLINE):
                    while (message := await ws.receive()).type in (WSMsgType.BINARY, WSMsgType.TEXT):
                        pass
                # The agent reports the shell's end as it stops, or the runner reports the lost agent.
                assert message.type == WSMsgType.CLOSE and message.data in (1000, 1011), message
                assert "exitCode" in json.loads(message.extra) or "error" in json.loads(message.extra)
    finally:
        await rest.delete(sandbox["id"])
