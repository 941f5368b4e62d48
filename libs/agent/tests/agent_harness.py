"""Running a real agent process for the tests and talking to it (sync and asyncio)."""
from __future__ import annotations

import base64
import functools
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path

from corral_agent.client import call
from corral_agent.framing import encode_frame
from corral_testing.waiting import wait_for, wait_until as wait_sync

SOURCE_AGENT = (sys.executable, "-m", "corral_agent")
DEADLINE_SECONDS = 20.0


@functools.cache
def available_pythons() -> dict[str, str]:
    """`"3.9"` -> interpreter path: python3 on PATH plus every other CPython >= 3.9 on this machine."""
    candidates = [shutil.which("python3")] + [shutil.which(f"python3.{minor}") for minor in range(9, 15)]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.*", "bin", "python3")))
    found: dict[str, str] = {}
    for candidate in filter(None, candidates):
        try:
            version = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if version and tuple(map(int, version.split("."))) >= (3, 9):
            found.setdefault(version, candidate)
    return dict(sorted(found.items(), key=lambda item: tuple(map(int, item[0].split(".")))))


def wait_until(predicate: Callable[[], object], timeout: float = DEADLINE_SECONDS, what: str = "condition"):
    """The repository's shared synchronous wait, with this harness's defaults."""
    return wait_sync(predicate, timeout=timeout, interval=0.005, message=f"timed out waiting for {what}")


@dataclass
class RunningAgent:
    proc: subprocess.Popen
    socket_path: str
    workdir: Path

    def status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def child_pids(self) -> list[int]:
        pids = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                pids += [int(pid) for pid in (task / "children").read_text().split()]
            except FileNotFoundError:  # the thread ended between the listing and the read
                continue
        return pids

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def start_agent(
    base: Path, command: Sequence[str] = SOURCE_AGENT, env: dict[str, str] | None = None, extra: Sequence[str] = ()
) -> RunningAgent:
    """Start an agent on `base`/run/agent.sock with workdir `base`/work; return once it answers a ping."""
    socket_path = str(base / "run" / "agent.sock")
    workdir = base / "work"
    proc = subprocess.Popen(
        [*command, "--socket", socket_path, "--workdir", str(workdir), *extra],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    agent = RunningAgent(proc, socket_path, workdir)
    try:
        wait_until(lambda: proc.poll() is not None or sync_ping(socket_path), what="the agent to answer a ping")
    except BaseException:
        agent.stop()
        raise
    assert proc.poll() is None, f"agent exited with {proc.returncode}"
    return agent


def sync_ping(socket_path: str) -> dict | None:
    try:
        frames = raw_exchange(socket_path, encode_frame({"op": "ping"}))
    except OSError:
        return None
    return frames[0] if frames else None


def raw_exchange(socket_path: str, payload: bytes, *, close_write: bool = False) -> list[dict]:
    """Send raw bytes, return every frame the agent sends back until it closes."""
    import json

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(DEADLINE_SECONDS)
        sock.connect(socket_path)
        sock.sendall(payload)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    frames = []
    while data:
        length = int.from_bytes(data[:4], "big")
        frames.append(json.loads(data[4 : 4 + length]))
        data = data[4 + length :]
    return frames


@dataclass
class ExecResult:
    frames: list[dict] = field(default_factory=list)

    @property
    def chunks(self) -> list[bytes]:
        return [base64.b64decode(f["data"]) for f in self.frames if f["type"] == "output"]

    @property
    def output(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def last(self) -> dict:
        return self.frames[-1]


async def run_exec(socket_path: str, **request: object) -> ExecResult:
    result = ExecResult()
    async with aclosing(call(socket_path, {"op": "exec", **request})) as frames:
        async for frame in frames:
            result.frames.append(frame)
    return result


def pid_gone(pid: int) -> bool:
    """The process no longer exists or is a zombie (dead, waiting for its new parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def wait_until_async(predicate: Callable[[], object], timeout: float = DEADLINE_SECONDS, what: str = "condition"):
    """The repository's shared deadline-bounded helper, with this harness's defaults."""
    return await wait_for(predicate, timeout=timeout, interval=0.005, message=f"timed out waiting for {what}")
