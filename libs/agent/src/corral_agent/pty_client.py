"""One client attached to a PTY, as the PTY's loop sees it: a non-blocking socket and its buffers."""
from __future__ import annotations

import binascii
import time

from .framing import HEADER_BYTES, MAX_REQUEST_BYTES, FrameError, decode_body

RECEIVE_BYTES = 64 * 1024


class PtyClient:
    __slots__ = ("sock", "inbox", "outbox", "progress_at", "closing")

    def __init__(self, sock) -> None:  # type: ignore[no-untyped-def]
        sock.setblocking(False)
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()  # encoded frames not yet taken by the client
        self.progress_at = time.monotonic()  # when the client last took something (or had nothing to take)
        self.closing = False  # closed once the outbox is empty

    def queue(self, frame: bytes) -> None:
        if not self.outbox:
            self.progress_at = time.monotonic()
        self.outbox += frame

    def send(self) -> bool:
        """Send what the socket takes now; False if the client is gone or done (closing, all sent)."""
        if self.outbox:
            try:
                sent = self.sock.send(self.outbox)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            del self.outbox[:sent]
            self.progress_at = time.monotonic()
        return not (self.closing and not self.outbox)

    def receive(self) -> bytes | None:
        """The keystrokes of the `input` frames received now (b"" if none yet); None if the client
        has gone or sent something that is not a frame of the protocol."""
        try:
            data = self.sock.recv(RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return None
        if not data:
            return None
        inbox = self.inbox
        inbox += data
        keystrokes = b""
        while len(inbox) >= HEADER_BYTES:
            length = int.from_bytes(inbox[:HEADER_BYTES], "big")
            if length > MAX_REQUEST_BYTES:
                return None
            if len(inbox) < HEADER_BYTES + length:
                break
            body = bytes(inbox[HEADER_BYTES:HEADER_BYTES + length])
            del inbox[:HEADER_BYTES + length]
            try:
                message = decode_body(body)
                if message.get("type") == "input":
                    keystrokes += binascii.a2b_base64(message.get("data") or "")
            except (FrameError, binascii.Error, TypeError, ValueError):
                return None
        return keystrokes

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
