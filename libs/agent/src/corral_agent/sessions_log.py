"""One session command's log: stdout and stderr interleaved in one file, every line marked.

The format is Daytona's: each output line starts with a 3-byte marker naming its stream,
`\\x01\\x01\\x01` for stdout and `\\x02\\x02\\x02` for stderr, and a marker also appears wherever the
stream switches in the middle of a line. The file lives on disk, so a command's output of any size
costs the agent one read buffer, and readers (logs, follow) go through `os.pread` from any offset.
"""
from __future__ import annotations

import os
import threading

STDOUT_MARK = b"\x01\x01\x01"
STDERR_MARK = b"\x02\x02\x02"
READ_CHUNK_BYTES = 64 * 1024


class MarkedLog:
    """The append side (the session's pump, and `input` echoes); `size` is what readers may read."""

    __slots__ = ("path", "fd", "size", "mark", "line_open", "failed", "lock")

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.size = 0
        self.mark: bytes | None = None  # the stream the last byte belonged to
        self.line_open = False  # the last byte written was not a newline
        self.failed = False  # a write failed (disk full): the log stops growing
        self.lock = threading.Lock()

    def append(self, mark: bytes, data: bytes) -> None:
        with self.lock:
            self._append(mark, data)

    def _append(self, mark: bytes, data: bytes) -> None:
        if not data or self.fd is None or self.failed:
            return
        body = data.replace(b"\n", b"\n" + mark)
        if data.endswith(b"\n"):
            body = body[: -len(mark)]  # the next line gets its marker when it comes
        if self.mark != mark or not self.line_open:
            body = mark + body
        self.mark = mark
        self.line_open = not data.endswith(b"\n")
        try:
            view = memoryview(body)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
                self.size += written
        except OSError:
            self.failed = True

    def close(self) -> None:
        with self.lock:
            self._close()

    def _close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


def read_range(path: str, start: int, end: int, send) -> int:  # type: ignore[no-untyped-def]
    """Pass the bytes [start, end) of the file at `path` to `send` in chunks; returns the new offset.

    Stops early (returning where it stopped) if the file is shorter or gone.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return start
    try:
        offset = start
        while offset < end:
            chunk = os.pread(fd, min(READ_CHUNK_BYTES, end - offset), offset)
            if not chunk:
                break
            send(chunk)
            offset += len(chunk)
        return offset
    finally:
        os.close(fd)


def read_all(path: str, end: int) -> bytes:
    chunks: list[bytes] = []
    read_range(path, 0, end, chunks.append)
    return b"".join(chunks)
