"""The multipart wire of the files area (daytona-wire.md §5.3): reading upload parts incrementally and
writing the bulk-download response part by part.

Download parts name their file by echoing the requested path byte for byte: a plain quoted
`filename="..."` when the path is printable ASCII without quotes or backslashes, otherwise the
RFC 5987 `filename*=utf-8''<percent-encoded>` (which the SDK prefers) beside an ASCII stand-in.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from urllib.parse import quote

import msgspec
from aiohttp import BodyPartReader

from ...app.files import FileFailure
from .common import DAEMON

UPLOAD_FIELD = re.compile(r"^files\[(\d{1,6})\]\.(path|file)$")
"""`files[i].path` (the destination, a text field) and `files[i].file` (the bytes)."""

READ_CHUNK = 256 * 1024
MAX_PATH_FIELD = 16 * 1024
_PLAIN = re.compile(r'^[\x20-\x7e]*$')


class BadPathField(Exception):
    """A destination field that is too long or not UTF-8."""


def new_boundary() -> str:
    return "corral-" + secrets.token_hex(16)


def filename_params(path: str) -> str:
    if _PLAIN.match(path) and '"' not in path and "\\" not in path and path:
        return f'filename="{path}"'
    stand_in = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in path) or "_"
    return f"filename=\"{stand_in}\"; filename*=utf-8''{quote(path, safe='')}"


def disposition(kind: str, path: str) -> str:
    """`Content-Disposition` of a single-file download (`attachment`), named after the base name."""
    name = path.rstrip("/").rsplit("/", 1)[-1] or "download"
    return f"{kind}; {filename_params(name)}"


def file_part_head(boundary: str, path: str, size: int | None) -> bytes:
    length = f"Content-Length: {size}\r\n" if size is not None else ""
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; {filename_params(path)}\r\n"
            f"Content-Type: application/octet-stream\r\n{length}\r\n").encode("ascii")


def error_part(boundary: str, path: str, failure: FileFailure) -> bytes:
    body = msgspec.json.encode({**failure.body(), "source": DAEMON})
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"error\"; {filename_params(path)}\r\n"
            f"Content-Type: application/json\r\n\r\n").encode("ascii") + body + b"\r\n"


def closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("ascii")


async def part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    """A part's body as it arrives, in pieces of at most READ_CHUNK bytes."""
    while chunk := await part.read_chunk(READ_CHUNK):
        yield chunk


async def path_field(part: BodyPartReader) -> str:
    """A small text field (a destination path), read with a size bound."""
    data = bytearray()
    async for chunk in part_chunks(part):
        data += chunk
        if len(data) > MAX_PATH_FIELD:
            await part.release()
            raise BadPathField(f"the field {part.name} is longer than {MAX_PATH_FIELD} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPathField(f"the field {part.name} is not UTF-8 text") from None
