"""Streaming file contents: `files.write` (upload) and `files.read` (download), raw bytes in chunks.

After the request (and the agent's `{"type": "ready"}` frame) the file's bytes travel as chunks: a
4-byte big-endian length, then that many raw bytes; a zero length ends the file. No side ever holds
more than one chunk.

- `files.write {"path", "mode"?}`: the agent answers `ready` once the destination is usable, then
  reads the client's chunks into a temporary file beside the target and renames it over the target
  after the end chunk, as the agent's (the sandbox) user; parent directories are created. If the
  client goes away before the end chunk, the temporary file is removed and the target is untouched.
  On a write failure the agent sends its error frame at once and discards the rest of the chunks.
  The reply ends with `{"type": "result", "path", "size"}`.
- `files.read {"path"}`: `ready` carries `size` (at open time), then the agent's chunks, the end
  chunk, and `{"type": "result", "size"}` (or an error frame after the end chunk if reading failed).
"""
from __future__ import annotations

import os
import socket
import stat

from .errors import BAD_REQUEST, AgentError
from .files_paths import INVALID_FILE_PATH, os_failure, parse_mode, resolve, text

CHUNK_BYTES = 256 * 1024  # what `files.read` sends per chunk
STALL_SECONDS = 900.0  # a client that neither sends nor reads for this long is dropped
MAX_CHUNK_BYTES = 16 * 1024 * 1024  # the largest chunk `files.write` accepts
END = b"\0\0\0\0"


class _ClientGone(Exception):
    """The client closed the connection before the end chunk."""


def write_file(message: dict, context, connection) -> None:
    path = resolve(context, message.get("path"))
    mode = parse_mode(message.get("mode"), None)
    directory, name = os.path.split(path)
    if os.path.isdir(path):
        raise AgentError(INVALID_FILE_PATH, "is a directory: %s" % (text(path),))
    try:
        os.makedirs(directory, exist_ok=True)
    except FileExistsError:
        raise AgentError(INVALID_FILE_PATH, "a parent is not a directory: %s" % (text(directory),)) from None
    except OSError as error:
        raise os_failure(error, directory) from None
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)  # overwriting keeps the file's permissions
        except OSError:
            mode = None
    temporary = os.path.join(directory, ".%s.%s.corral-upload" % (name[:64], os.urandom(6).hex()))
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise os_failure(error, path) from None
    committed = False
    try:
        connection.send({"type": "ready", "path": text(path)})
        connection.sock.settimeout(STALL_SECONDS)
        try:
            size = _receive_into(connection.sock, fd)
        except _ClientGone:
            return
        except OSError as error:  # the disk refused (full, quota): say so, then let the client finish
            failure = os_failure(error, path)
            connection.send(failure.frame())
            _discard_chunks(connection.sock)
            return
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            os.close(fd)
            fd = -1
            os.rename(temporary, path)
        except OSError as error:
            raise os_failure(error, path) from None
        committed = True
        connection.send({"type": "result", "path": text(path), "size": size})
    finally:
        if fd >= 0:
            os.close(fd)
        if not committed:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def read_file(message: dict, context, connection) -> None:
    path = resolve(context, message.get("path"))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO must not block the open
    except OSError as error:
        raise os_failure(error, path) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise AgentError(INVALID_FILE_PATH, "is a directory: %s" % (text(path),))
        if not stat.S_ISREG(st.st_mode):
            raise AgentError(INVALID_FILE_PATH, "not a regular file: %s" % (text(path),))
        os.set_blocking(fd, True)
        sock = connection.sock
        connection.send({"type": "ready", "path": text(path), "size": st.st_size})
        sock.settimeout(STALL_SECONDS)
        buffer = bytearray(4 + CHUNK_BYTES)
        view = memoryview(buffer)
        body = [view[4:]]
        total = 0
        try:
            while True:
                count = os.readv(fd, body)
                if count == 0:
                    break
                buffer[0:4] = count.to_bytes(4, "big")
                sock.sendall(view[: 4 + count])
                total += count
        except OSError as error:
            if isinstance(error, (ConnectionError, socket.timeout)):
                raise  # the client is gone or stuck: nothing more to tell it
            sock.sendall(END)
            raise os_failure(error, path) from None
        sock.sendall(END)
        connection.send({"type": "result", "size": total})
    finally:
        os.close(fd)


def _receive_into(sock, fd: int) -> int:
    """Write the client's chunks to `fd` until the end chunk; the number of bytes written."""
    buffer = bytearray(CHUNK_BYTES)
    total = 0
    while True:
        length = int.from_bytes(_read_exactly(sock, 4, bytearray(4)), "big")
        if length == 0:
            return total
        if length > MAX_CHUNK_BYTES:
            raise AgentError(BAD_REQUEST, "chunk of %d bytes exceeds %d" % (length, MAX_CHUNK_BYTES))
        if length > len(buffer):
            buffer = bytearray(length)
        data = memoryview(_read_exactly(sock, length, buffer))[:length]
        while data:
            written = os.write(fd, data)
            data = data[written:]
        total += length


def _discard_chunks(sock) -> None:
    """Read and drop chunks until the end chunk or the client closes."""
    buffer = bytearray(CHUNK_BYTES)
    try:
        while True:
            length = int.from_bytes(_read_exactly(sock, 4, bytearray(4)), "big")
            if length == 0 or length > MAX_CHUNK_BYTES:
                return
            while length:
                step = min(length, len(buffer))
                _read_exactly(sock, step, buffer)
                length -= step
    except (_ClientGone, OSError):
        return


def _read_exactly(sock, size: int, buffer: bytearray) -> bytearray:
    """Fill the first `size` bytes of `buffer` from the socket; _ClientGone at an early end."""
    view = memoryview(buffer)
    received = 0
    while received < size:
        try:
            count = sock.recv_into(view[received:size])
        except (ConnectionError, socket.timeout):
            raise _ClientGone() from None
        if count == 0:
            raise _ClientGone()
        received += count
    return buffer
