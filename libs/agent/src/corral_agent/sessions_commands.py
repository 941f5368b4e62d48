"""One command of a session: its directory (command file, three FIFOs, the log) and its state."""
from __future__ import annotations

import os

from .sessions_log import MarkedLog

NOT_RUN_EXIT_CODE = -1  # the session ended (or was deleted) before the command could start
LISTED_COMMAND_CHARS = 64 * 1024  # listings show at most this much of a command's text
_FIFOS = ("in", "out", "err")


def new_id() -> str:
    """A random UUID (version 4) in its usual text form, without importing uuid."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return "%s-%s-%s-%s-%s" % (text[:8], text[8:12], text[12:16], text[16:20], text[20:])


def encode_text(text: str) -> bytes:
    """UTF-8 of a request's text; lone surrogates (possible in JSON) become U+FFFD."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def exit_code_of(returncode: int) -> int:
    """A process's status as a shell reports it: a death by signal N reads 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class Command:
    """Written by the session's pump thread; read by request threads under the session's lock."""

    __slots__ = ("id", "text", "dir", "log", "exit_code", "end_offset", "echo_input", "out_fd", "err_fd", "in_fd")

    def __init__(self, command_id: str, text: str, directory: str, echo_input: bool) -> None:
        self.id = command_id
        self.text = text[:LISTED_COMMAND_CHARS].encode("utf-8", "replace").decode()  # lone surrogates: "?"
        self.dir = directory
        self.echo_input = echo_input
        self.exit_code: int | None = None
        self.end_offset = 0  # the log's size when the command ended: what a follower gets
        self.out_fd: int | None = None
        self.err_fd: int | None = None
        self.in_fd: int | None = None
        self.log = MarkedLog(self.path("output.log"))

    @classmethod
    def create(cls, session_dir: str, text: str, echo_input: bool) -> "Command":
        """Make the command's files; the output FIFOs are open for reading before the shell sees them."""
        command_id = new_id()
        directory = os.path.join(session_dir, command_id)
        os.mkdir(directory, 0o700)
        command = cls(command_id, text, directory, echo_input)
        try:
            with open(command.path("cmd"), "wb") as script:
                script.write(encode_text(text))
                script.write(b"\n")
            for name in _FIFOS:
                os.mkfifo(command.path(name), 0o600)
            flags = os.O_NONBLOCK | os.O_CLOEXEC
            command.out_fd = os.open(command.path("out"), os.O_RDONLY | flags)
            command.err_fd = os.open(command.path("err"), os.O_RDONLY | flags)
            # Read-write: the open never blocks, and the command's stdin stays open (no EOF) until
            # the command ends, so that `input` requests can feed it.
            command.in_fd = os.open(command.path("in"), os.O_RDWR | flags)
        except BaseException:
            command.release()
            raise
        return command

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def finish(self, exit_code: int) -> None:
        """Record the exit code (call under the session's lock, after logging the output)."""
        self.exit_code = exit_code
        self.end_offset = self.log.size
        try:
            with open(self.path("exit_code"), "w") as record:
                record.write("%d\n" % (exit_code,))
        except OSError:
            pass
        self.in_fd = _close(self.in_fd)  # background readers of its stdin see the end now

    def close_output(self, fd: int) -> None:
        if fd == self.out_fd:
            self.out_fd = _close(fd)
        elif fd == self.err_fd:
            self.err_fd = _close(fd)

    def release(self) -> None:
        """Drop everything but the log and the exit code (idempotent)."""
        self.out_fd = _close(self.out_fd)
        self.err_fd = _close(self.err_fd)
        self.in_fd = _close(self.in_fd)
        self.log.close()
        for name in ("cmd",) + _FIFOS:
            try:
                os.unlink(self.path(name))
            except OSError:
                pass

    def describe(self) -> dict:
        return {"id": self.id, "command": self.text, "exitCode": self.exit_code}


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
    return None
