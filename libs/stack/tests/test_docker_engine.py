"""ensure_docker: reuse a reachable engine, start one detached, refuse clearly when it may not."""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from corral_stack import docker_engine
from corral_stack.docker_engine import (
    engine_answers, ensure_docker, file_lock, find_dockerd, live_pid, start_dockerd, wait_for_engine,
    wait_until,
)


def _own_program() -> str:
    return Path(f"/proc/{os.getpid()}/stat").read_text().partition("(")[2].rpartition(")")[0]


def test_live_pid_keeps_a_pidfile_naming_the_running_program(tmp_path: Path) -> None:
    pidfile = tmp_path / "x.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    assert live_pid(pidfile, _own_program()) == os.getpid()
    assert pidfile.exists()


@pytest.mark.parametrize("content", ["999999999", "garbage", "{self}"])
def test_live_pid_removes_a_stale_pidfile(tmp_path: Path, content: str) -> None:
    # a dead pid, an unreadable one, and a live pid reused by another program (after a crash)
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text(content.replace("{self}", str(os.getpid())))
    messages: list[str] = []
    assert live_pid(pidfile, "dockerd", log=messages.append) is None
    assert not pidfile.exists()
    assert "stale pidfile" in messages[0]


def test_file_lock_excludes_other_holders(tmp_path: Path) -> None:
    lock = tmp_path / "home" / "x.lock"
    with file_lock(lock), open(lock, "rb") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock, "rb") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_unreachable_docker_host_is_reported_not_replaced(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(RuntimeError, match="DOCKER_HOST=.* is set but no Docker engine answers"):
        ensure_docker(tmp_path / "home", log=lambda _: None)


def test_non_root_gets_instructions_instead_of_an_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_engine.os, "geteuid", lambda: 1000)
    reason = docker_engine.why_we_cannot_start(docker_engine.DEFAULT_URL)
    assert reason is not None and "as root" in reason and "DOCKER_HOST" in reason


@pytest.mark.docker
def test_ensure_docker_returns_an_engine_that_pings(docker_url: str, tmp_path: Path) -> None:
    client = docker.DockerClient(base_url=docker_url)
    try:
        assert client.ping()
    finally:
        client.close()
    assert ensure_docker(tmp_path, log=lambda _: None) == docker_url  # idempotent


needs_dockerd = pytest.mark.skipif(os.geteuid() != 0 or find_dockerd() is None,
                                   reason="starting dockerd needs root and the docker.io package")


@pytest.fixture
def private_dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A home and `start_dockerd` options for a second engine beside the machine's: its own socket,
    state and network namespace (so it cannot touch the shared docker0 bridge or iptables). The
    daemon a test starts there is stopped afterwards."""
    home = tmp_path_factory.mktemp("dockerd")
    flags = ["--host", f"unix://{home}/docker.sock", "--data-root", str(home / "data"),
             "--exec-root", str(home / "exec"), "--storage-driver=vfs", "--bridge=none",
             "--iptables=false", "--ip6tables=false", "--ip-masq=false"]
    yield home, {"extra_args": flags, "other_pidfiles": (), "command_prefix": ["unshare", "--net"]}
    pid = live_pid(home / "dockerd.pid", "dockerd")
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: live_pid(home / "dockerd.pid", "dockerd") is None, timeout=30)


@needs_dockerd
@pytest.mark.docker
def test_start_dockerd_detaches_an_engine_that_answers(private_dockerd: tuple[Path, dict[str, Any]]) -> None:
    home, options = private_dockerd
    (home / "dockerd.pid").write_text(f"{os.getpid()}\n")  # stale: a live pid, but not dockerd
    url = f"unix://{home}/docker.sock"
    messages: list[str] = []
    pid = start_dockerd(home, log=messages.append, **options)
    wait_for_engine(url, pid=pid, log_file=home / "dockerd.log", log=messages.append)
    assert engine_answers(url)
    assert Path(f"/proc/{pid}/stat").read_text().split()[5] != str(os.getsid(0))  # own session
    assert any("stale pidfile" in message for message in messages)
    # a second call finds the running daemon instead of starting another
    assert start_dockerd(home, log=messages.append, **options) == pid


@needs_dockerd
@pytest.mark.docker
def test_a_dockerd_that_dies_at_start_up_is_reported_with_its_log(
        private_dockerd: tuple[Path, dict[str, Any]]) -> None:
    home, options = private_dockerd
    options["extra_args"] = [*options["extra_args"], "--no-such-flag"]
    pid = start_dockerd(home, log=lambda _: None, **options)
    with pytest.raises(RuntimeError, match="(?s)dockerd exited during start-up.*no-such-flag"):
        wait_for_engine(f"unix://{home}/docker.sock", pid=pid, log_file=home / "dockerd.log", timeout=30)
