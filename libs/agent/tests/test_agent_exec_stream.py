"""exec_stream through the real agent process (what SSH runs): stdout and stderr apart, streamed stdin
and its end, signals, exit statuses, hang-ups killing the process group, the built-in SFTP server driven
by OpenSSH's own `sftp` client, and a PTY running a command."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import textwrap

import pytest
from agent_harness import DEADLINE_SECONDS, RunningAgent, pid_gone, wait_until_async
from corral_agent.client import AgentError, ExecStream, open_exec_stream, open_stream
from corral_agent.framing import MUX_EXIT, MUX_STDERR, MUX_STDOUT


async def finish(stream: ExecStream) -> tuple[bytes, bytes, dict]:
    """Read to the exit: (stdout, stderr, exit)."""
    out, err = bytearray(), bytearray()
    try:
        async with asyncio.timeout(DEADLINE_SECONDS):
            while True:
                frame = await stream.read()
                assert frame is not None, "the stream ended without an exit frame"
                channel, payload = frame
                if channel == MUX_STDOUT:
                    out += payload
                elif channel == MUX_STDERR:
                    err += payload
                else:
                    assert channel == MUX_EXIT
                    return bytes(out), bytes(err), json.loads(payload)
    finally:
        await stream.close()


async def test_stdout_stderr_and_exit_status_stay_apart(agent: RunningAgent) -> None:
    stream = await open_exec_stream(agent.socket_path, {"command": "echo out; echo err >&2; exit 7"})
    assert await finish(stream) == (b"out\n", b"err\n", {"exitCode": 7, "signal": None})
    argv = await open_exec_stream(agent.socket_path, {"argv": ["printf", "%s|", "a b", "c"]})
    assert await finish(argv) == (b"a b|c|", b"", {"exitCode": 0, "signal": None})


async def test_stdin_streams_in_and_its_end_is_delivered(agent: RunningAgent) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    stream = await open_exec_stream(agent.socket_path, {"command": "sha256sum"})
    for start in range(0, len(data), 200_000):
        await stream.write_stdin(data[start:start + 200_000])
    await stream.close_stdin()
    out, err, status = await finish(stream)
    assert out.split()[0].decode() == hashlib.sha256(data).hexdigest() and status["exitCode"] == 0


async def test_large_output_arrives_whole_and_in_order(agent: RunningAgent) -> None:
    stream = await open_exec_stream(agent.socket_path, {"command": "head -c 5000000 /dev/zero | tr '\\0' x; "
                                                                   "echo done >&2"})
    out, err, status = await finish(stream)
    assert out == b"x" * 5_000_000 and err == b"done\n" and status["exitCode"] == 0


async def test_a_shell_without_command_reads_commands_from_stdin(agent: RunningAgent) -> None:
    stream = await open_exec_stream(agent.socket_path, {})
    await stream.write_stdin(b"echo $((6 * 7))\nexit 4\n")
    assert await finish(stream) == (b"42\n", b"", {"exitCode": 4, "signal": None})


async def test_a_signal_reaches_the_process_group(agent: RunningAgent) -> None:
    stream = await open_exec_stream(agent.socket_path, {"command": "echo ready; sleep 60"})
    assert await stream.read() == (MUX_STDOUT, b"ready\n")
    await stream.signal("TERM")
    out, err, status = await finish(stream)
    assert status == {"exitCode": 143, "signal": "TERM"}


async def test_hanging_up_kills_the_whole_process_group(agent: RunningAgent) -> None:
    stream = await open_exec_stream(agent.socket_path, {"command": "sleep 60 & echo $!; sleep 60"})
    _, first = await stream.read()  # type: ignore[misc]
    child = int(first.split()[0])
    await stream.close()
    await wait_until_async(lambda: pid_gone(stream.pid) and pid_gone(child), what="the process group to die")


async def test_a_background_process_holding_stdout_does_not_hold_the_exit(agent: RunningAgent) -> None:
    stream = await open_exec_stream(agent.socket_path, {"command": "sleep 30 & echo started"})
    out, _, status = await finish(stream)
    assert out == b"started\n" and status["exitCode"] == 0


def _peer_done_sending(stream: ExecStream) -> bool:
    """Blocks until the agent has shut its sending side (all its frames are then in our buffer)."""
    sock = stream.stream.writer.get_extra_info("socket")
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLRDHUP)
    return bool(poller.poll(DEADLINE_SECONDS * 1000))


async def test_a_late_end_of_stdin_does_not_cost_the_exit(agent: RunningAgent) -> None:
    """`ssh host true` sends its end of stdin while `true` is already gone: the agent has sent the exit and
    is done; the late frame must not reset the connection before the client has read that exit."""
    for _ in range(3):
        stream = await open_exec_stream(agent.socket_path, {"argv": ["true"]})
        assert await asyncio.to_thread(_peer_done_sending, stream), "the agent never finished sending"
        await stream.close_stdin()
        await stream.write_stdin(b"late bytes nobody reads")
        assert await finish(stream) == (b"", b"", {"exitCode": 0, "signal": None})


async def test_refusals_are_error_frames(agent: RunningAgent) -> None:
    for request, code in (({"argv": ["/no/such/program"]}, "EXEC_FAILED"),
                          ({"argv": ["true"], "command": "true"}, "BAD_REQUEST"),
                          ({"program": "telnetd"}, "BAD_REQUEST"),
                          ({"command": "true", "cwd": "/no/such/dir"}, "CWD_NOT_FOUND")):
        with pytest.raises(AgentError) as refused:
            await open_exec_stream(agent.socket_path, request)
        assert refused.value.code == code, request


BRIDGE = textwrap.dedent("""
    # stdin/stdout <-> an exec_stream of the agent's sftp-server: what the runner and the gateway do
    import asyncio, os, sys
    from corral_agent.client import open_exec_stream
    from corral_agent.framing import MUX_EXIT, MUX_STDOUT

    async def main(path):
        stream = await open_exec_stream(path, {"program": "sftp-server"})
        loop = asyncio.get_running_loop()

        async def pump_in():
            while data := await loop.run_in_executor(None, os.read, 0, 65536):
                await stream.write_stdin(data)
            await stream.close_stdin()

        task = asyncio.create_task(pump_in())
        while (frame := await stream.read()) is not None and frame[0] != MUX_EXIT:
            if frame[0] == MUX_STDOUT:
                view = memoryview(frame[1])
                while view:
                    view = view[os.write(1, view):]
        await stream.close()
        os._exit(0)  # the thread reading stdin may still be blocked

    asyncio.run(main(sys.argv[1]))
""")


@pytest.mark.skipif(shutil.which("sftp") is None, reason="needs OpenSSH's sftp client")
def test_the_sftp_server_serves_openssh_sftp(agent: RunningAgent, short_tmp) -> None:
    bridge = short_tmp / "bridge.py"
    bridge.write_text(BRIDGE)
    local = short_tmp / "local.bin"
    local.write_bytes(os.urandom(2 * 1024 * 1024 + 3))
    batch = short_tmp / "batch"
    batch.write_text(textwrap.dedent(f"""\
        mkdir up
        put {local} up/file.bin
        chmod 640 up/file.bin
        get up/file.bin {short_tmp}/back.bin
        rename up/file.bin up/renamed.bin
        symlink renamed.bin up/link
        ls -l up
        pwd
        """))
    result = subprocess.run(["sftp", "-b", str(batch), "-D", f"{sys.executable} {bridge} {agent.socket_path}"],
                            capture_output=True, text=True, timeout=60, cwd=short_tmp)
    assert result.returncode == 0, result.stderr
    assert (short_tmp / "back.bin").read_bytes() == local.read_bytes()
    uploaded = agent.workdir / "up" / "renamed.bin"
    assert uploaded.read_bytes() == local.read_bytes()
    assert oct(uploaded.stat().st_mode & 0o777) == "0o640"
    assert os.readlink(agent.workdir / "up" / "link") == "renamed.bin"
    assert f"Remote working directory: {agent.workdir}" in result.stdout
    assert "renamed.bin" in result.stdout and "link -> renamed.bin" not in result.stderr


async def test_a_pty_can_run_one_command(agent: RunningAgent) -> None:
    stream = await open_stream(agent.socket_path, {"op": "pty_create", "id": "cmd-pty", "attach": True,
                                                   "cols": 91, "rows": 17, "command": "stty size; tty; exit 5"})
    frames = []
    try:
        async with asyncio.timeout(DEADLINE_SECONDS):
            while (frame := await stream.recv()) is not None:
                frames.append(frame)
                if frame["type"] == "exit":
                    break
    finally:
        await stream.close()
    import base64

    output = b"".join(base64.b64decode(f["data"]) for f in frames if f["type"] == "output")
    assert b"17 91" in output and b"/dev/pts/" in output
    assert frames[-1]["exitCode"] == 5
