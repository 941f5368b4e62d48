"""The same core SSH flows with a programmatic client (asyncssh): exec, stdin, a PTY with resizes, SFTP with
random access, and a refusal the client can read."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest
from daytona import Daytona

from corral_stack.stack import Stack

from .conftest import config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture(scope="module")
def token(stack: Stack, sandbox_id: str) -> str:
    return Daytona(config(stack)).get(sandbox_id).create_ssh_access(30).token


async def connect(stack: Stack, token: str) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(stack.config.host, stack.config.ssh_port, username=token, known_hosts=None,
                                  client_keys=None, agent_path=None, password=None, ignore_encrypted=True,
                                  config=[])


@pytest.fixture
async def conn(stack: Stack, token: str) -> AsyncIterator[asyncssh.SSHClientConnection]:
    connection = await connect(stack, token)
    try:
        yield connection
    finally:
        connection.close()
        await connection.wait_closed()


async def test_exec_and_stdin(conn: asyncssh.SSHClientConnection, sandbox_id: str) -> None:
    result = await conn.run("echo out; echo err >&2; hostname; exit 5", check=False)
    assert (result.exit_status, result.stdout, result.stderr) == (5, f"out\n{sandbox_id}\n", "err\n")
    data = os.urandom(5 * 1024 * 1024 + 3)
    summed = await conn.run("sha256sum", input=data, encoding=None, check=True)
    assert summed.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    killed = await conn.run("kill -KILL $$", check=False)
    assert killed.exit_signal is not None and killed.exit_signal[0] == "KILL"


async def test_a_pty_with_resizes(conn: asyncssh.SSHClientConnection) -> None:
    process = await conn.create_process(term_type="xterm-256color", term_size=(100, 30))
    try:
        await process.stdout.readuntil("$ ")
        process.stdin.write("stty size\n")
        await process.stdout.readuntil("30 100")
        process.change_terminal_size(120, 40)
        seen = ""
        while "40 120" not in seen:  # the resize travels beside the keystrokes: ask until it has arrived
            process.stdin.write("stty size\n")
            seen += await process.stdout.readuntil("$ ")
        process.stdin.write("exit 4\n")
        await process.wait_closed()
        assert process.exit_status == 4
    finally:
        process.close()


async def test_sftp_with_random_access(conn: asyncssh.SSHClientConnection, tmp_path: Path) -> None:
    local = tmp_path / "a.bin"
    local.write_bytes(os.urandom(4 * 1024 * 1024 + 7))
    async with conn.start_sftp_client() as sftp:
        await sftp.makedirs("asyncssh/deep", exist_ok=True)
        await sftp.put(str(local), "asyncssh/deep/a.bin")
        await sftp.get("asyncssh/deep/a.bin", str(tmp_path / "back.bin"))
        assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()
        attrs = await sftp.stat("asyncssh/deep/a.bin")
        assert attrs.size == local.stat().st_size
        async with sftp.open("asyncssh/patch.bin", "wb") as handle:
            await handle.write(b"0123456789")
            await handle.seek(4)
            await handle.write(b"ab")
        async with sftp.open("asyncssh/patch.bin", "rb") as handle:
            await handle.seek(3)
            assert await handle.read(4) == b"3ab6"
        await sftp.chmod("asyncssh/patch.bin", 0o600)
        assert (await sftp.stat("asyncssh/patch.bin")).permissions & 0o777 == 0o600
        assert sorted(await sftp.listdir("asyncssh")) == [".", "..", "deep", "patch.bin"]
        await sftp.rename("asyncssh/patch.bin", "asyncssh/moved.bin")
        assert await sftp.exists("asyncssh/moved.bin") and not await sftp.exists("asyncssh/patch.bin")
        await sftp.remove("asyncssh/moved.bin")
        with pytest.raises(asyncssh.SFTPNoSuchFile):
            await sftp.stat("asyncssh/moved.bin")
        await sftp.rmtree("asyncssh")
        assert not await sftp.exists("asyncssh")
    owner = await conn.run("stat -c %U .", check=True)
    assert owner.stdout == "daytona\n"


async def test_a_refused_login_reads_why(stack: Stack) -> None:
    with pytest.raises(asyncssh.PermissionDenied) as refused:
        await connect(stack, "N" * 32)
    assert "This SSH access token is not valid" in refused.value.reason


async def test_local_forwarding(conn: asyncssh.SSHClientConnection) -> None:
    server = ("python3 -c 'import socket\n"
              "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "s.bind((\"127.0.0.1\", 18081)); s.listen()\n"
              "while True:\n"
              "    c, _ = s.accept(); data = c.recv(100); c.sendall(data.upper()); c.close()\n"
              "' >/dev/null 2>&1 &")
    await conn.run(server, check=True)

    async def echoed() -> bytes | None:
        try:
            reader, writer = await conn.open_connection("localhost", 18081)
        except asyncssh.ChannelOpenError:
            return None
        writer.write(b"hello tunnel")
        data = await reader.read(100)
        writer.close()
        return data

    from corral_testing.waiting import wait_for

    assert await wait_for(echoed, timeout=60, message="the echo server never answered") == b"HELLO TUNNEL"
    with pytest.raises(asyncssh.ChannelOpenError) as closed:
        await conn.open_connection("127.0.0.1", 1)
    assert "Nothing accepts connections on port 1" in closed.value.reason
    with pytest.raises(asyncssh.ChannelOpenError) as elsewhere:
        await conn.open_connection("169.254.169.254", 80)
    assert "only the sandbox's own ports" in elsewhere.value.reason
    with pytest.raises(asyncssh.ChannelListenError):
        await conn.forward_remote_port("", 0, "localhost", 22)
