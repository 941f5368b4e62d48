"""Splitting a marked session log into `output`, `stdout` and `stderr`, whole or streamed in chunks."""

from __future__ import annotations

import json

import pytest

from corral_runner.app.sessions import LogDemux, split_log, stream_split_log

OUT, ERR = b"\x01\x01\x01", b"\x02\x02\x02"
LOG = (b"dropped" + OUT + b"a\n" + OUT + b"b" + ERR + "é!\n".encode() + OUT + b"c\x01\n" + ERR
       + "€".encode() + OUT + b"\x01\x01" + ERR + b"end")


def test_a_whole_log() -> None:
    assert split_log(LOG) == {"output": "a\nbé!\nc\x01\n€\x01\x01end", "stdout": "a\nbc\x01\n\x01\x01",
                              "stderr": "é!\n€end"}
    assert split_log(b"") == {"output": "", "stdout": "", "stderr": ""}


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_markers_split_across_chunks(size: int) -> None:
    demux = LogDemux()
    pieces = []
    for start in range(0, len(LOG), size):
        pieces += demux.feed(LOG[start:start + size])
    pieces += demux.feed(b"", final=True)
    stdout = b"".join(data for stream, data in pieces if stream == "stdout")
    stderr = b"".join(data for stream, data in pieces if stream == "stderr")
    assert (stdout, stderr) == (b"a\nbc\x01\n\x01\x01", "é!\n€".encode() + b"end")


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
async def test_streamed_json_matches_the_whole_log(size: int) -> None:
    written: list[bytes] = []

    async def write(data: bytes) -> None:
        written.append(data)

    async def read_log():  # type: ignore[no-untyped-def]
        for start in range(0, len(LOG), size):
            yield LOG[start:start + size]

    await stream_split_log(write, read_log)
    assert json.loads(b"{" + b"".join(written) + b"}") == split_log(LOG)
