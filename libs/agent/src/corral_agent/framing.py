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
