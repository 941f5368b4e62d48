"""Wire framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON (one object).

Shared by the agent (blocking sockets) and the host client (asyncio), so the wire is defined once.
"""
from __future__ import annotations

import binascii
import json

HEADER_BYTES = 4
# A request carries at most this much JSON (stdin is inlined as base64, hence the room).
MAX_REQUEST_BYTES = 16 * 1024 * 1024
# The agent never sends more than one output chunk (base64 of 64 KiB) plus a small envelope.
MAX_RESPONSE_BYTES = 1024 * 1024
OUTPUT_CHUNK_BYTES = 64 * 1024


class FrameError(Exception):
    """The peer sent bytes that are not one frame holding one JSON object."""


def encode_frame(message: dict) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return len(body).to_bytes(HEADER_BYTES, "big") + body


def encode_output_frame(chunk: bytes) -> bytes:
    """`{"type": "output", "data": <base64>}` built without a JSON round trip (hot path)."""
    body = b'{"type":"output","data":"' + binascii.b2a_base64(chunk, newline=False) + b'"}'
    return len(body).to_bytes(HEADER_BYTES, "big") + body


def frame_length(header: bytes, limit: int) -> int:
    length = int.from_bytes(header, "big")
    if length > limit:
        raise FrameError("frame of %d bytes exceeds the limit of %d" % (length, limit))
    return length


def decode_body(body: bytes) -> dict:
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise FrameError("frame is not UTF-8 JSON: %s" % (error,)) from None
    if not isinstance(message, dict):
        raise FrameError("frame must hold a JSON object, got %s" % (type(message).__name__,))
    return message


# --- streamed exec (`exec_stream`): after the agent's `started` frame, both sides send mux frames -------
# A mux frame is one channel byte, a 4-byte big-endian length, then that many bytes.

MUX_HEADER_BYTES = 5
MUX_STDIN = 0  # client -> agent: bytes for the process's stdin
MUX_STDOUT = 1  # agent -> client: bytes the process wrote to stdout
MUX_STDERR = 2  # agent -> client: bytes the process wrote to stderr
MUX_EXIT = 3  # agent -> client, last: JSON {"exitCode": N, "signal": name | null}
MUX_EOF = 4  # client -> agent: no more stdin (the process reads end-of-file)
MUX_SIGNAL = 5  # client -> agent: a signal name ("INT", "TERM", ...) for the process group
MAX_MUX_PAYLOAD = 1024 * 1024


def encode_mux(channel: int, payload: bytes = b"") -> bytes:
    return bytes((channel,)) + len(payload).to_bytes(4, "big") + payload


def mux_header(header: bytes) -> tuple:
    """(channel, length) of a mux frame header; FrameError when the length is out of bounds."""
    length = int.from_bytes(header[1:5], "big")
    if length > MAX_MUX_PAYLOAD:
        raise FrameError("mux frame of %d bytes exceeds the limit of %d" % (length, MAX_MUX_PAYLOAD))
    return header[0], length
