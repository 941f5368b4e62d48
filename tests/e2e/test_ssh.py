"""SSH into sandboxes through the ssh-gateway, driven by the real OpenSSH client (`ssh`, `scp`, `sftp`) and
the official SDK's SSH access calls: shells on a PTY, exec with exit statuses and stderr apart, streamed
stdin, file transfers byte for byte, a host key that survives a restart, every refusal, the slow-down
after failures, and the audit events in the sandbox's timeline."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daytona import Daytona, Sandbox

from corral_stack.stack import Stack
from corral_testing.openssh import ensure_openssh
from corral_testing.stack import log_tail

from .conftest import config
from .ssh_tools import OpenSsh, end, poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture(scope="module")
def daytona(stack: Stack) -> Daytona:
    ensure_openssh()
    return Daytona(config(stack))


@pytest.fixture(scope="module")
def sandbox(daytona: Daytona, sandbox_id: str) -> Sandbox:
    return daytona.get(sandbox_id)


@pytest.fixture(scope="module")
def token(sandbox: Sandbox) -> str:
    return sandbox.create_ssh_access(60).token


@pytest.fixture(scope="module")
def client(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> OpenSsh:
    return OpenSsh(stack, tmp_path_factory.mktemp("ssh") / "known_hosts")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    return tmp_path


def text(result) -> str:  # type: ignore[no-untyped-def]
    return result.stdout.decode(errors="replace")


def test_the_sdk_issues_validates_and_revokes_access(daytona: Daytona, sandbox: Sandbox, client: OpenSsh) -> None:
    access = sandbox.create_ssh_access(expires_in_minutes=5)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", access.token) and access.sandbox_id == sandbox.id
    assert 4 * 60 < (access.expires_at - access.created_at).total_seconds() <= 5 * 60
    assert access.ssh_command == f"ssh -p {client.port} {access.token}@{client.host}"
    validation = sandbox.validate_ssh_access(access.token)
    assert validation.valid and validation.sandbox_id == sandbox.id

    # the command as printed works (with this test's client options added before it)
    argv = shlex.split(access.ssh_command)
    import subprocess

    done = subprocess.run([argv[0], *client.options(), *argv[1:], "echo", "via-sshCommand"], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0 and done.stdout == b"via-sshCommand\n", done.stderr

    kept = sandbox.create_ssh_access(5)  # issuing another keeps the first valid
    assert sandbox.validate_ssh_access(access.token).valid
    sandbox.revoke_ssh_access(access.token)
    assert not sandbox.validate_ssh_access(access.token).valid
    assert sandbox.validate_ssh_access(kept.token).valid  # only the named token is revoked
    refused = client.ssh(access.token, "true")
    assert refused.returncode == 255 and b"revoked" in refused.stderr


def test_exec_keeps_stdout_stderr_and_the_exit_status(client: OpenSsh, token: str, sandbox: Sandbox) -> None:
    done = client.ssh(token, "echo out; echo err >&2; hostname; id -un; exit 7")
    assert done.returncode == 7
    assert text(done) == f"out\n{sandbox.id}\ndaytona\n"
    assert done.stderr == b"err\n"
    killed = client.ssh(token, "kill -TERM $$")
    assert killed.returncode == 255  # as OpenSSH's sshd: an exit signal ends the client with 255
    assert client.ssh(token, "exit 0").returncode == 0


def test_stdin_streams_in_with_its_end(client: OpenSsh, token: str) -> None:
    data = os.urandom(16 * 1024 * 1024 + 5)
    done = client.ssh(token, "sha256sum", input=data)
    assert done.returncode == 0, done.stderr
    assert text(done).split()[0] == hashlib.sha256(data).hexdigest()
    counted = client.ssh(token, "wc -c", input=b"")
    assert text(counted).strip() == "0"  # the end of an empty stdin arrives too
    shell = client.ssh(token, input=b"echo from-a-shell; exit 3\n")  # no command: the shell reads stdin
    assert shell.returncode == 3 and text(shell) == "from-a-shell\n"


def test_an_interactive_shell_on_a_pty_follows_the_window(client: OpenSsh, token: str) -> None:
    terminal = client.terminal(token, cols=101, rows=33)
    try:
        terminal.read_until(b"$ ")
        terminal.type("stty size; tty; echo $TERM\n")
        seen = terminal.read_until(b"33 101")
        assert b"/dev/pts/" in terminal.read_until(b"$ ") or b"/dev/pts/" in seen
        terminal.resize(120, 40)
        poll_until(lambda: _size_after_resize(terminal), timeout=30, message="the resize never reached the PTY")
        terminal.type("exit 6\n")
        assert terminal.wait() == 6
    finally:
        terminal.close()


def _size_after_resize(terminal) -> bool:  # type: ignore[no-untyped-def]
    terminal.type("stty size\n")
    try:
        terminal.read_until(b"40 120", timeout=2)
        return True
    except AssertionError:
        return False


def test_a_command_on_a_pty(client: OpenSsh, token: str) -> None:
    terminal = client.terminal(token, "tty; stty size; exit 3", cols=90, rows=20)
    try:
        terminal.read_until(b"20 90")
        assert b"/dev/pts/" in bytes(terminal.seen)
        assert terminal.wait() == 3
    finally:
        terminal.close()


def test_scp_both_ways_byte_for_byte(client: OpenSsh, token: str, files: Path) -> None:
    local = files / "up.bin"
    local.write_bytes(os.urandom(24 * 1024 * 1024 + 11))
    os.chmod(local, 0o640)
    up = client.scp(str(local), client.remote(token, "scp-up.bin"))
    assert up.returncode == 0, up.stderr
    remote = client.ssh(token, "stat -c '%U %G %a %s' scp-up.bin; sha256sum scp-up.bin")
    owner, checksum = text(remote).splitlines()
    assert owner == f"daytona daytona 640 {local.stat().st_size}"
    assert checksum.split()[0] == hashlib.sha256(local.read_bytes()).hexdigest()
    down = client.scp(client.remote(token, "scp-up.bin"), str(files / "down.bin"))
    assert down.returncode == 0, down.stderr
    assert (files / "down.bin").read_bytes() == local.read_bytes()

    tree = files / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("alpha\n")
    (tree / "b.bin").write_bytes(os.urandom(70_000))
    assert client.scp("-r", str(tree), client.remote(token, "copied")).returncode == 0
    listing = client.ssh(token, "cd copied && find . -type f | sort && cat sub/a.txt")
    assert text(listing) == "./b.bin\n./sub/a.txt\nalpha\n"
    missing = client.scp(client.remote(token, "no/such/file"), str(files / "x"))
    assert missing.returncode != 0 and b"No such file" in missing.stderr


def test_sftp_batch_mode(client: OpenSsh, token: str, files: Path) -> None:
    local = files / "data.bin"
    local.write_bytes(os.urandom(3 * 1024 * 1024 + 1))
    batch = f"""
mkdir sftp-dir
cd sftp-dir
put {local} data.bin
chmod 600 data.bin
get data.bin {files}/back.bin
rename data.bin moved.bin
symlink moved.bin link
ls -l
pwd
"""
    done = client.sftp(token, batch)
    assert done.returncode == 0, done.stderr
    assert (files / "back.bin").read_bytes() == local.read_bytes()
    assert "Remote working directory: /home/daytona/sftp-dir" in text(done)
    check = client.ssh(token, "cd sftp-dir && stat -c '%U %a' moved.bin && readlink link && sha256sum < moved.bin")
    owner, link, checksum = text(check).splitlines()
    assert (owner, link) == ("daytona 600", "moved.bin")
    assert checksum.split()[0] == hashlib.sha256(local.read_bytes()).hexdigest()
    refused = client.sftp(token, "get /no/such/file\n")
    assert refused.returncode != 0


def test_refusals_say_why(client: OpenSsh, token: str, daytona: Daytona, sandbox: Sandbox) -> None:
    unknown = client.ssh("A" * 32, "true")
    assert unknown.returncode == 255 and b"Corral: This SSH access token is not valid" in unknown.stderr
    assert client.ssh("", "true").returncode == 255

    other = daytona.create(timeout=120)
    try:
        theirs = other.create_ssh_access(10).token
        # each token reaches its own sandbox and nothing else
        assert text(client.ssh(theirs, "hostname")).strip() == other.id
        assert text(client.ssh(token, "hostname")).strip() == sandbox.id
        client.ssh(theirs, "echo secret > only-here.txt")
        assert client.ssh(token, "test -e only-here.txt").returncode == 1
        with pytest.raises(Exception) as revoke_elsewhere:  # a token is revoked through its own sandbox only
            sandbox.revoke_ssh_access(theirs)
        assert "not found" in str(revoke_elsewhere.value).lower()
        assert client.ssh(theirs, "true").returncode == 0
        daytona.delete(other, timeout=60)
        gone = client.ssh(theirs, "true")
        assert gone.returncode == 255 and b"has been destroyed" in gone.stderr
    finally:
        try:
            daytona.delete(other, timeout=60)
        except Exception:
            pass


def test_repeated_failures_from_one_address_are_slowed_down(stack: Stack, client: OpenSsh) -> None:
    attacker = OpenSsh(stack, client.known_hosts, source="127.0.0.42")
    for _ in range(3):  # the free failures
        assert attacker.ssh("x" * 32, "true").returncode == 255
    started = time.monotonic()
    slowed = attacker.ssh("y" * 32, "true")
    assert slowed.returncode == 255 and time.monotonic() - started >= 1.0
    assert "127.0.0.42 slowed down" in log_tail(stack, "ssh-gateway", 200)
    elsewhere = time.monotonic()
    assert client.ssh("z" * 32, "true").returncode == 255  # another address is not slowed
    assert "127.0.0.1 slowed down" not in log_tail(stack, "ssh-gateway", 200)
    assert time.monotonic() - elsewhere < 60


def test_sessions_are_in_the_sandbox_timeline(stack: Stack, client: OpenSsh, token: str, sandbox: Sandbox) -> None:
    marker = f"echo audit-{os.urandom(4).hex()}"
    assert client.ssh(token, marker).returncode == 0
    import urllib.request
    import json

    def ended() -> dict | None:  # type: ignore[type-arg]
        request = urllib.request.Request(f"{stack.api_url}/sandbox/{sandbox.id}/events",
                                         headers={"Authorization": f"Bearer {stack.admin_api_key}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            items = json.loads(response.read())["items"]
        for event in items:
            if event["type"] == "SshSessionEnded" and any(c.get("command") == marker for c in event["data"]["channels"]):
                started = [e for e in items if e["type"] == "SshSessionStarted"
                           and e["data"]["session_id"] == event["data"]["session_id"]]
                return {"ended": event, "started": started}
        return None

    found = poll_until(ended, timeout=30, message="the session's end never reached the timeline")
    started = found["started"][0]
    assert started["data"]["client_address"] == "127.0.0.1" and "OpenSSH" in started["data"]["client_version"]
    assert started["meta"]["Corral-Actor"] == "ssh-gateway"
    channel = found["ended"]["data"]["channels"][0]
    assert channel["kind"] == "exec" and channel["exit_status"] == 0 and channel["bytes_out"] > 0


def test_the_host_key_is_kept_across_a_restart(stack: Stack, client: OpenSsh, token: str) -> None:
    assert client.ssh(token, "true").returncode == 0  # learnt (or already known)
    key_file = stack.home / "ssh-gateway" / "host_ed25519_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    before = key_file.read_bytes()
    stack.restart("ssh-gateway")
    assert key_file.read_bytes() == before
    again = client.ssh(token, "echo same-key", strict="yes")
    assert again.returncode == 0 and again.stdout == b"same-key\n", again.stderr


@pytest.mark.parametrize("path", ["../../internal/{sid}/exec", "%2e%2e/%2e%2e/internal/{sid}/exec",
                                  "process/../../{sid}/process/execute"])
def test_internal_endpoints_are_not_reachable_through_the_proxy(stack: Stack, sandbox_id: str, path: str) -> None:
    import http.client
    import json

    connection = http.client.HTTPConnection(stack.config.host, stack.config.proxy_port, timeout=30)
    try:  # http.client sends the path as written: no client-side normalization of the dot segments
        connection.request("POST", f"/toolbox/{sandbox_id}/" + path.format(sid=sandbox_id), body=b'{"command":"id"}',
                           headers={"Authorization": f"Bearer {stack.admin_api_key}",
                                    "Content-Type": "application/json"})
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 400 and body["code"] == "INVALID_PATH", body


def test_local_port_forwarding_reaches_a_server_in_the_sandbox(client: OpenSsh, token: str, files: Path) -> None:
    import socket
    import subprocess
    import urllib.request

    content = os.urandom(1024 * 1024 + 9)
    (files / "served.bin").write_bytes(content)
    assert client.ssh(token, "mkdir -p www").returncode == 0
    assert client.scp(str(files / "served.bin"), client.remote(token, "www/served.bin")).returncode == 0
    started = client.ssh(token, "cd www && nohup python3 -m http.server 18080 --bind 127.0.0.1 "
                                ">/dev/null 2>&1 & echo started")
    assert started.stdout == b"started\n", started.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local = probe.getsockname()[1]
    verbose = OpenSsh(client.stack, client.known_hosts, log_level="INFO")  # channel refusals are logged at INFO
    forward = verbose.popen(token, "-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{local}:localhost:18080",
                           "-L", f"{local + 1 if local < 65535 else local - 1}:10.255.255.1:80")
    try:
        def fetched() -> bytes | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{local}/served.bin", timeout=30) as response:
                    return response.read()
            except OSError:
                return None

        assert poll_until(fetched, timeout=60, message="the forward never reached the sandbox's server") == content
        other = local + 1 if local < 65535 else local - 1
        with socket.create_connection(("127.0.0.1", other), timeout=30) as refused:
            refused.settimeout(30)
            assert refused.recv(1) == b""  # the gateway refused the channel: the local connection closes
    finally:
        stderr = end(forward)
    assert b"administratively prohibited" in stderr and b"only the sandbox's own ports" in stderr, stderr
    remote = subprocess.run(["ssh", *client.options(), "-p", str(client.port), "-N", "-o", "ExitOnForwardFailure=yes",
                             "-R", "0:localhost:22", f"{token}@{client.host}"], capture_output=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert remote.returncode == 255 and b"remote port forwarding failed" in remote.stderr.lower()


def test_a_client_that_goes_away_takes_its_command_with_it(client: OpenSsh, token: str) -> None:
    running = client.popen(token, "sleep 300 & echo $!; wait")
    try:
        assert running.stdout is not None
        pid = int(running.stdout.readline())
        assert client.ssh(token, f"kill -0 {pid}").returncode == 0
    finally:
        running.kill()  # the client vanishes without a word
        running.wait(30)
    poll_until(lambda: client.ssh(token, f"kill -0 {pid} 2>/dev/null").returncode == 1, timeout=60,
               message="the command outlived its SSH client")
