"""Talking to a real agent's session ops, and agents whose sessions run under a chosen shell."""
from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from pathlib import Path

from agent_harness import DEADLINE_SECONDS, SOURCE_AGENT, RunningAgent, start_agent
from corral_agent.client import call
from corral_testing.waiting import wait_for

OUT = b"\x01\x01\x01"
ERR = b"\x02\x02\x02"


def shells_here() -> list[str]:
    """The session shells this machine can test: zsh (if installed), bash and sh."""
    return [name for name in ("zsh", "bash", "sh") if shutil.which(name)]


def start_agent_with_shell(base: Path, shell: str) -> RunningAgent:
    """An agent whose PATH holds every program of this machine except the shells it prefers to `shell`."""
    preferred = ("zsh", "bash", "sh")
    hidden = set(preferred[: preferred.index(shell)])
    bin_dir = base / "bin"
    bin_dir.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            if name not in hidden and not (bin_dir / name).exists():
                (bin_dir / name).symlink_to(os.path.join(directory, name))
    return start_agent(base, command=SOURCE_AGENT, env={"PATH": str(bin_dir)})


async def frames_of(socket_path: str, op: str, **request: object) -> list[dict]:
    async with aclosing(call(socket_path, {"op": op, **request})) as frames:
        return [frame async for frame in frames]


async def result_of(socket_path: str, op: str, **request: object) -> dict:
    frames = await frames_of(socket_path, op, **request)
    assert frames[-1]["type"] == "result", frames
    return frames[-1]


async def error_of(socket_path: str, op: str, **request: object) -> str:
    frames = await frames_of(socket_path, op, **request)
    assert frames[-1]["type"] == "error", frames
    return str(frames[-1]["code"])


async def run(socket_path: str, session: str, command: str, **extra: object) -> tuple[int, bytes]:
    """A sync exec: the exit code and the marked log."""
    result = await result_of(socket_path, "session_exec", sessionId=session, command=command, **extra)
    return result["exitCode"], base64.b64decode(result["log"])


async def log_of(socket_path: str, session: str, command_id: str, **extra: object) -> tuple[list[dict], bytes]:
    frames = await frames_of(socket_path, "session_logs", sessionId=session, commandId=command_id, **extra)
    assert frames[-1]["type"] == "result", frames
    return frames, b"".join(base64.b64decode(f["data"]) for f in frames if f["type"] == "output")


def streams(log: bytes) -> tuple[bytes, bytes]:
    """(stdout, stderr) of a marked log."""
    out, err, current = [], [], None
    position = 0
    while position < len(log):
        marker = log[position:position + 3]
        if marker in (OUT, ERR):
            current = out if marker == OUT else err
            position += 3
            continue
        next_marks = [i for i in (log.find(OUT, position), log.find(ERR, position)) if i != -1]
        end = min(next_marks) if next_marks else len(log)
        assert current is not None, f"bytes before the first marker: {log!r}"
        current.append(log[position:end])
        position = end
    return b"".join(out), b"".join(err)


async def eventually(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = DEADLINE_SECONDS) -> None:
    """Poll an async predicate until it holds (the repository's one deadline-bounded helper)."""
    await wait_for(predicate, timeout=timeout, interval=0.01, message=f"timed out waiting for {what}")
