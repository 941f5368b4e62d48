"""A reachable Docker engine: the configured one, else the distribution's, installed and started.

`ensure_docker(home)` is what `make run` and the test fixtures call. It only ever installs from the
machine's own apt sources (`docker.io`), never from a registry or a vendor repository.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import docker
from docker.errors import DockerException

from .docker_storage import engine_storage_args

Log = Callable[[str], None]

DEFAULT_URL = "unix:///var/run/docker.sock"
SYSTEM_PIDFILE = Path("/var/run/docker.pid")
SYSTEM_CONTAINERD_PIDFILE = Path("/var/run/docker/containerd/containerd.pid")
START_TIMEOUT = 60.0
TAIL_LINES = 30


def ensure_docker(home: Path, *, log: Log = print) -> str:
    """Return a DOCKER_HOST-style URL of an engine that answers `ping`, starting one if needed.

    DOCKER_HOST is honoured when set, else the default socket. When nothing answers and we are root
    on Debian/Ubuntu, `docker.io` is installed if `dockerd` is missing and `dockerd` is started
    detached (own session, output in `home/dockerd.log`, pidfile `home/dockerd.pid`), its data on an
    btrfs filesystem with quotas so that sandbox disk sizes hold (`docker_storage`). That engine is
    deliberately left running when the caller exits: it is shared machine infrastructure, like one
    started by the init system, and other tools and the next run use it. Concurrent callers
    serialise on a lock file in `home`; calling again is cheap and changes nothing.
    """
    url = os.environ.get("DOCKER_HOST") or DEFAULT_URL
    if engine_answers(url):
        return url
    home = Path(home)
    with file_lock(home / "docker-engine.lock", log=log):
        if engine_answers(url):  # another process started it while we waited for the lock
            return url
        refusal = why_we_cannot_start(url)
        if refusal:
            raise RuntimeError(refusal)
        if find_dockerd() is None:
            install_debian_packages(["docker.io"], log=log)
        storage = engine_storage_args(dict(os.environ), log=log,
                                      install=lambda packages: install_debian_packages(packages, log=log))
        pid = start_dockerd(home, log=log, extra_args=storage)
        wait_for_engine(url, pid=pid, log_file=home / "dockerd.log", log=log)
    return url


def engine_answers(url: str, timeout: float = 3.0) -> bool:
    """True when a Docker engine at `url` answers `ping` (what `docker info` needs)."""
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout)
    except DockerException:  # the version probe failed: nothing (usable) listens there
        return False
    try:
        return bool(client.ping())
    except (DockerException, OSError):
        return False
    finally:
        client.close()


def why_we_cannot_start(url: str) -> str | None:
    """Why we may not start a local engine ourselves (None when we may), phrased for the user."""
    if url != DEFAULT_URL:
        return (f"DOCKER_HOST={url} is set but no Docker engine answers there. Start that engine, or "
                "unset DOCKER_HOST so that corral uses (or starts) the local one.")
    if os.geteuid() != 0:
        return (f"No Docker engine answers at {url}. Start one (e.g. `sudo systemctl start docker`), "
                "make sure your user may use its socket (the `docker` group), or set DOCKER_HOST. "
                "Run as root on Debian/Ubuntu and corral installs and starts docker.io itself.")
    if not is_debian_like():
        return (f"No Docker engine answers at {url}, and corral installs one only on Debian/Ubuntu. "
                "Install Docker Engine with your distribution's packages, start it, and retry.")
    return None


def is_debian_like(os_release: Path = Path("/etc/os-release")) -> bool:
    try:
        fields = dict(line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line)
    except OSError:
        return False
    ids = f"{fields.get('ID', '')} {fields.get('ID_LIKE', '')}".replace('"', "").split()
    return bool({"debian", "ubuntu"} & set(ids)) and shutil.which("apt-get") is not None


def find_dockerd() -> str | None:
    """`dockerd` on PATH or in /usr/sbin (often missing from a non-login root PATH)."""
    return shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin")


def install_debian_packages(packages: Sequence[str], *, log: Log = print) -> None:
    """`apt-get install -y` from the machine's own sources, as root on Debian/Ubuntu.

    `apt-get update` runs only when the install fails without it (fresh lists are the common case,
    and updating costs time and network).
    """
    if os.geteuid() != 0 or not is_debian_like():
        raise RuntimeError(f"{', '.join(packages)} missing: install it with your package manager "
                           "(corral installs packages itself only as root on Debian/Ubuntu)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait_for_dpkg_lock = ["-o", "DPkg::Lock::Timeout=300"]
    install = ["apt-get", *wait_for_dpkg_lock, "install", "-y", *packages]
    log(f"installing {' '.join(packages)}: {' '.join(install)}")
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        log("apt-get install failed; refreshing the package lists (apt-get update) and retrying")
        _run_or_raise(["apt-get", *wait_for_dpkg_lock, "update"], env)
        _run_or_raise(install, env)
    log(f"installed {' '.join(packages)}")


def _run_or_raise(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-TAIL_LINES:])
        raise RuntimeError(f"`{' '.join(command)}` failed with exit code {done.returncode}:\n{tail}")


def start_dockerd(home: Path, *, log: Log = print, extra_args: Sequence[str] = (),
                  other_pidfiles: Sequence[Path] = (SYSTEM_PIDFILE,),
                  command_prefix: Sequence[str] = ()) -> int:
    """Start `dockerd` detached and return its pid (or the pid of one that is already starting).

    `other_pidfiles` belong to daemons that would share our socket and data root: a live dockerd
    behind one of them means we wait for it instead of starting a second. Stale pidfiles (dead
    process, or a pid reused by something else after a crash or container restart) are removed,
    since dockerd refuses to start while its pidfile names a live process.

    A second engine beside the machine's (tests) needs its own socket, data and exec roots, and its
    own network namespace (`command_prefix=["unshare", "--net"]`): in the host's namespace
    `--bridge=none` deletes the shared `docker0` bridge, and any other bridge setting adopts it.
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    pidfile = home / "dockerd.pid"
    for candidate in (pidfile, *other_pidfiles):
        running = live_pid(candidate, "dockerd", log=log)
        if running is not None:
            log(f"dockerd (pid {running}, {candidate}) is already running; waiting for it to answer")
            return running
    if "--exec-root" not in extra_args:  # the default exec root: its containerd pidfile may be stale too
        live_pid(SYSTEM_CONTAINERD_PIDFILE, "containerd", log=log)
    dockerd = find_dockerd()
    if dockerd is None:
        raise RuntimeError("dockerd not found (install the docker.io package)")
    log_file = home / "dockerd.log"
    log(f"starting {dockerd} (output in {log_file}); it keeps running after corral exits")
    # `sh` backgrounds dockerd and exits, so dockerd is nobody's child here; the new session keeps
    # it out of our terminal's Ctrl-C.
    launched = subprocess.run(
        ["sh", "-c", '"$@" </dev/null >>"$CORRAL_DOCKERD_LOG" 2>&1 & echo $!', "sh",
         *command_prefix, dockerd, "--pidfile", str(pidfile), *extra_args],
        env={**os.environ, "CORRAL_DOCKERD_LOG": str(log_file)},
        capture_output=True, text=True, check=True, start_new_session=True,
    )
    return int(launched.stdout.strip())


def wait_for_engine(url: str, *, pid: int, log_file: Path, log: Log = print,
                    timeout: float = START_TIMEOUT) -> None:
    """Poll `ping` until the engine answers; fail at once if dockerd `pid` dies meanwhile."""
    def answered_or_died() -> bool:
        if engine_answers(url, timeout=2.0):
            return True
        if _running_program(pid) is None:  # exited (briefly it may still be the launching `sh`)
            raise RuntimeError(f"dockerd exited during start-up; end of {log_file}:\n{tail_of(log_file)}")
        return False

    if not wait_until(answered_or_died, timeout=timeout):
        raise RuntimeError(f"Docker engine at {url} did not answer within {timeout:.0f}s; "
                           f"end of {log_file}:\n{tail_of(log_file)}")
    log(f"Docker engine answers at {url}")


def live_pid(pidfile: Path, program: str, *, log: Log | None = None) -> int | None:
    """The pid in `pidfile` if that process is a running `program`; else remove the stale file."""
    try:
        pid = int(pidfile.read_text().strip())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        pid = 0
    if pid > 0 and _running_program(pid) == program:
        return pid
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
        if log:
            log(f"removed stale pidfile {pidfile} (pid {pid} is not a running {program})")
    return None


def _running_program(pid: int) -> str | None:
    """The command name of a live (not zombie) process, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, _, rest = stat.partition("(")[2].rpartition(")")
    return None if rest.split()[:1] == ["Z"] else name


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2) -> bool:
    """Poll `predicate` until it is true (returns True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@contextlib.contextmanager
def file_lock(path: Path, *, log: Log | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the block (released by the kernel if we die)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log(f"waiting for another corral process (lock {path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tail_of(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


__all__ = ["ensure_docker", "engine_answers", "file_lock", "install_debian_packages", "start_dockerd",
           "wait_until"]
