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

from corral_stack import docker_engine, docker_storage
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


def test_the_btrfs_mount_is_read_from_mountinfo(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "36 25 7:0 / /var/lib/corral/docker rw,relatime shared:1 - btrfs /dev/loop0 rw,discard=async,space_cache=v2\n"
        "37 25 7:1 / /var/lib/with\\040space rw - btrfs /dev/loop1 rw\n"
        "38 25 8:1 / /var/lib/other rw - ext4 /dev/vda rw\n")
    assert docker_storage.is_btrfs(Path("/var/lib/corral/docker"), mountinfo)
    assert docker_storage.is_btrfs(Path("/var/lib/with space"), mountinfo)
    assert not docker_storage.is_btrfs(Path("/var/lib/other"), mountinfo)  # not btrfs
    assert not docker_storage.is_btrfs(Path("/nowhere"), mountinfo)


def test_the_data_root_choice_follows_the_setting() -> None:
    never = lambda *_: pytest.fail("nothing should be prepared or installed")  # noqa: E731
    assert docker_storage.engine_storage_args({"CORRAL_DOCKER_DATA_ROOT": "default"}, log=never, install=never) == []
    assert docker_storage.engine_storage_args({"CORRAL_DOCKER_DATA_ROOT": "/srv/docker"}, log=never,
                                              install=never) == ["--data-root", "/srv/docker"]


needs_loop_btrfs = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/dev/loop-control").exists()
    or "btrfs" not in Path("/proc/filesystems").read_text().split(),
    reason="a btrfs loop filesystem needs root, loop devices and the kernel's btrfs")


@needs_dockerd
@needs_loop_btrfs
@pytest.mark.docker
def test_an_engine_on_the_quota_data_root_bounds_a_containers_writable_layer(
        private_dockerd: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> None:
    """The storage Corral gives an engine it starts: a container's disk stops at its `storage_opt` size."""
    home, options = private_dockerd
    base = tmp_path_factory.mktemp("storage")
    install = lambda packages: docker_engine.install_debian_packages(packages, log=lambda _: None)  # noqa: E731
    root = docker_storage.quota_data_root(base, log=lambda _: None, install=install, size=2 * 1024**3)
    try:
        assert docker_storage.quota_data_root(base, log=lambda _: None, install=install) == root  # reused
        assert docker_storage.quota_mode(root) == "squota"
        flags = [f for f in options["extra_args"] if f != "--storage-driver=vfs"]
        flags[flags.index("--data-root") + 1] = str(root)
        options["extra_args"] = [*flags, "--storage-driver", "btrfs"]
        url = f"unix://{home}/docker.sock"
        pid = start_dockerd(home, log=lambda _: None, **options)
        wait_for_engine(url, pid=pid, log_file=home / "dockerd.log")
        client = docker.DockerClient(base_url=url)
        try:
            status = client.info()["DriverStatus"]
            assert client.info()["Driver"] == "btrfs", status
            client.api.import_image_from_data(_tar({"marker": b"x"}), repository="corral-disk-test", tag="1")
            container = client.containers.create("corral-disk-test:1", command=["/none"],
                                                 storage_opt={"size": "64M"})
            assert container.put_archive("/", _tar({"small": os.urandom(16 * 1024**2)}))
            with pytest.raises(docker.errors.APIError, match="(?i)quota|no space"):
                container.put_archive("/", _tar({"big": os.urandom(96 * 1024**2)}))
            container.remove(force=True)
        finally:
            client.close()
    finally:
        pid = live_pid(home / "dockerd.pid", "dockerd")
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            assert wait_until(lambda: live_pid(home / "dockerd.pid", "dockerd") is None, timeout=30)
        docker_storage.unmount(base)


def _tar(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
