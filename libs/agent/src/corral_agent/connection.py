"""One client connection on the agent side: read its one request, send reply frames."""
from __future__ import annotations

import socket
import time

from .framing import (
    HEADER_BYTES,
    MAX_REQUEST_BYTES,
    FrameError,
    decode_body,
    encode_frame,
    frame_length,
)


class Connection:
    """A connected client socket. Sends block (natural backpressure on the child's output)."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def read_request(self, timeout: float) -> dict | None:
        """The request frame, or None if the client closed without sending one.

        Raises FrameError for anything that is not one complete frame of one JSON object, and
        socket.timeout if the request does not arrive within `timeout` seconds.
        """
        self.sock.settimeout(timeout)
        header = self._read_exactly(HEADER_BYTES, allow_eof=True)
        if header is None:
            return None
        length = frame_length(header, MAX_REQUEST_BYTES)
        body = self._read_exactly(length, allow_eof=False)
        return decode_body(body if body is not None else b"")

    def read_frame(self, timeout: float | None) -> dict | None:
        """The client's next frame after its request (streaming ops), or None once it half-closed."""
        return self.read_request(timeout if timeout is not None else 0) if timeout else self._read_blocking()

    def _read_blocking(self) -> dict | None:
        self.sock.settimeout(None)
        header = self._read_exactly(HEADER_BYTES, allow_eof=True)
        if header is None:
            return None
        body = self._read_exactly(frame_length(header, MAX_REQUEST_BYTES), allow_eof=False)
        return decode_body(body if body is not None else b"")

    def send(self, message: dict, timeout: float | None = None) -> None:
        self.send_encoded(encode_frame(message), timeout)

    def send_encoded(self, frame: bytes, timeout: float | None = None) -> None:
        """Send one encoded frame; OSError (socket.timeout included) if the client is gone or stuck."""
        self.sock.settimeout(timeout)
        self.sock.sendall(frame)

    def linger(self, timeout: float) -> None:
        """Half-close, then take (and drop) what the client still sends until it closes, at most `timeout`
        seconds. A client still writing when we are done (its end of stdin racing a process that exits at
        once) would otherwise get a reset that can cost it our last frames, the exit among them."""
        deadline = time.monotonic() + timeout
        try:
            self.sock.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                if not self.sock.recv(65536):
                    return
        except OSError:  # socket.timeout included: the client did not close in time
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _read_exactly(self, size: int, allow_eof: bool) -> bytearray | None:
        buffer = bytearray(size)
        view = memoryview(buffer)
        received = 0
        while received < size:
            count = self.sock.recv_into(view[received:])
            if count == 0:
                if received == 0 and allow_eof:
                    return None
                raise FrameError("connection closed after %d of %d bytes" % (received, size))
            received += count
        return buffer
