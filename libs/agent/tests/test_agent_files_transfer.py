"""Streaming file contents through the agent: `files.write` and `files.read` in raw chunks."""
from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable

from agent_harness import RunningAgent, wait_until_async
from corral_agent.client import open_stream

MIB = 1024 * 1024
CHUNK = 256 * 1024


def pattern(size: int) -> bytes:
    block = hashlib.sha256(b"corral").digest() * (MIB // 32)
    return (block * (size // len(block) + 1))[:size]


async def upload(agent: RunningAgent, path: str, chunks: Iterable[bytes], *, finish: bool = True) -> dict | None:
    """Send the chunks; the agent's final frame (None when we hang up without the end chunk)."""
    async with await open_stream(agent.socket_path, {"op": "files.write", "path": path}) as stream:
        ready = await stream.recv()
        if ready is None or ready["type"] != "ready":
            return ready
        for chunk in chunks:
            await stream.send_raw(len(chunk).to_bytes(4, "big") + chunk)
        if not finish:
            return None
        await stream.send_raw(b"\0\0\0\0")
        return await stream.recv()


async def download(agent: RunningAgent, path: str) -> tuple[dict, list[bytes], dict]:
    async with await open_stream(agent.socket_path, {"op": "files.read", "path": path}) as stream:
        ready = await stream.recv()
        assert ready is not None
        if ready["type"] != "ready":
            return ready, [], ready
        chunks = []
        while length := int.from_bytes(await stream.read_exactly(4), "big"):
            chunks.append(await stream.read_exactly(length))
        final = await stream.recv()
        assert final is not None
        return ready, chunks, final


def leftovers(directory) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".corral-upload")]


async def test_upload_streams_to_a_temp_file_then_renames_with_flat_memory(agent: RunningAgent):
    data = pattern(32 * MIB)
    assert await upload(agent, "warm-up.bin", [b"x"]) == {"type": "result", "path": str(agent.workdir / "warm-up.bin"),
                                                         "size": 1}
    peak_before = agent.status_kib("VmHWM")
    result = await upload(agent, "deep/new/dirs/data.bin", (data[i:i + CHUNK] for i in range(0, len(data), CHUNK)))
    assert result == {"type": "result", "path": str(agent.workdir / "deep/new/dirs/data.bin"), "size": len(data)}
    assert (agent.workdir / "deep/new/dirs/data.bin").read_bytes() == data
    assert leftovers(agent.workdir / "deep/new/dirs") == []
    growth = agent.status_kib("VmHWM") - peak_before
    assert growth < 4 * 1024, f"agent peak RSS grew by {growth} KiB for a 32 MiB upload"


async def test_overwriting_keeps_the_file_mode_and_an_empty_upload_empties(agent: RunningAgent):
    target = agent.workdir / "script.sh"
    target.write_text("old")
    os.chmod(target, 0o750)
    assert (await upload(agent, str(target), [b"#!/bin/sh\n"]))["size"] == 10
    assert target.read_bytes() == b"#!/bin/sh\n" and stat.S_IMODE(os.stat(target).st_mode) == 0o750
    assert (await upload(agent, str(target), []))["size"] == 0
    assert target.read_bytes() == b""


async def test_a_hang_up_before_the_end_leaves_the_target_untouched(agent: RunningAgent):
    target = agent.workdir / "keep.txt"
    target.write_bytes(b"original")
    assert await upload(agent, "keep.txt", [b"partial" * 1000], finish=False) is None
    await wait_until_async(lambda: leftovers(agent.workdir) == [], what="the temporary file to be removed")
    assert target.read_bytes() == b"original"


async def test_upload_refusals_come_before_any_data(agent: RunningAgent):
    (agent.workdir / "dir").mkdir()
    (agent.workdir / "file").write_text("x")
    assert (await upload(agent, "dir", [b"x"]))["code"] == "INVALID_FILE_PATH"
    assert (await upload(agent, "file/below", [b"x"]))["code"] == "INVALID_FILE_PATH"
    assert (await upload(agent, "", [b"x"]))["code"] == "INVALID_FILE_PATH"


async def test_download_streams_bounded_chunks_and_reports_the_size(agent: RunningAgent):
    data = pattern(3 * MIB + 17)
    (agent.workdir / "big.bin").write_bytes(data)
    ready, chunks, final = await download(agent, "big.bin")
    assert ready == {"type": "ready", "path": str(agent.workdir / "big.bin"), "size": len(data)}
    assert b"".join(chunks) == data and max(map(len, chunks)) <= CHUNK
    assert final == {"type": "result", "size": len(data)}
    (agent.workdir / "empty").touch()
    ready, chunks, final = await download(agent, "empty")
    assert ready["size"] == 0 and chunks == [] and final["size"] == 0


async def test_download_refuses_what_is_not_a_regular_file(agent: RunningAgent):
    os.mkfifo(agent.workdir / "fifo")
    (agent.workdir / "dir").mkdir()
    for path, code in (("missing", "FILE_NOT_FOUND"), ("dir", "INVALID_FILE_PATH"), ("fifo", "INVALID_FILE_PATH")):
        error, _, _ = await download(agent, path)
        assert error["type"] == "error" and error["code"] == code, (path, error)
