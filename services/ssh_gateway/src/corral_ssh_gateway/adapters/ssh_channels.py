"""SSH channels (asyncssh) bridged to the sandbox: sessions (shell, exec, sftp) and direct TCP forwards.

A session with a PTY (`ssh host`, `ssh -t host cmd`) runs on a terminal in the sandbox, resized with
the client's window; one without (`ssh host cmd`, `sftp`, `scp`) runs as a process with stdin, stdout and
stderr apart, its exit status (or signal) passed back. Both directions respect flow control: a client
that does not read stalls the sandbox's output, a sandbox that does not read stalls the client's input.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncssh

from ..app.ports import Process, SandboxLink, Terminal, Tunnel, Unreachable
from ..app.sessions import Session
from ..domain.audit import ChannelRecord

log = logging.getLogger(__name__)

HIGH_WATER = 1024 * 1024
"""Client bytes queued towards the sandbox beyond which the client is asked to pause."""
LOW_WATER = 256 * 1024
PASSED_ENV = ("LANG", "LANGUAGE")
"""Client variables passed to the sandbox (with every `LC_*`), as OpenSSH's default AcceptEnv."""
LOST = "the connection to the sandbox was lost"
_EOF = object()


class _Inbox:
    """Client input in order (bytes, EOF, resizes, signals) with the read side paused when too much waits."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.queued = 0
        self.paused = False
        self.chan: asyncssh.SSHChannel[bytes] | None = None

    def put(self, item: Any) -> None:
        if isinstance(item, (bytes, bytearray)):
            self.queued += len(item)
            if self.queued > HIGH_WATER and not self.paused and self.chan is not None:
                self.paused = True
                self.chan.pause_reading()
        self.queue.put_nowait(item)

    async def get(self) -> Any:
        item = await self.queue.get()
        if isinstance(item, (bytes, bytearray)):
            self.queued -= len(item)
            if self.paused and self.queued < LOW_WATER and self.chan is not None:
                self.paused = False
                self.chan.resume_reading()
        return item


class SessionChannel(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    def __init__(self, session: Session, link: SandboxLink):
        self._session = session
        self._link = link
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._pty: tuple[str, int, int] | None = None
        self._kind = ""
        self._command: str | None = None
        self._inbox = _Inbox()
        self._writable = asyncio.Event()
        self._writable.set()
        self._task: asyncio.Task[None] | None = None
        self._record: ChannelRecord | None = None

    # --- asyncssh callbacks ---------------------------------------------------------------------------

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self._chan = chan
        self._inbox.chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Any) -> bool:
        self._pty = (term_type or "xterm-256color", term_size[0] or 80, term_size[1] or 24)
        return True

    def shell_requested(self) -> bool:
        self._kind = "shell"
        return True

    def exec_requested(self, command: str) -> bool:
        self._kind, self._command = "exec", command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem != "sftp":
            return False
        self._kind = "sftp"
        return True

    def session_started(self) -> None:
        command = self._command or ("sftp" if self._kind == "sftp" else "")
        self._record = self._session.channel(self._kind, command, pty=self._pty is not None and self._kind != "sftp")
        self._session.live.add(self.abort)
        self._task = asyncio.ensure_future(self._run())

    def abort(self, message: str) -> None:
        """The session is being ended (its token revoked, the gateway stopping): say why, then close."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._chan is not None:
            self._fail(message)

    def data_received(self, data: bytes, datatype: int | None) -> None:  # type: ignore[override]
        if datatype is None:
            if self._record is not None:
                self._record.bytes_in += len(data)
            self._inbox.put(data)

    def eof_received(self) -> bool:
        self._inbox.put(_EOF)
        return True  # half-open: the output goes on

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if width and height:
            self._inbox.put(("resize", width, height))

    def signal_received(self, signal: str) -> None:
        self._inbox.put(("signal", signal))

    def break_received(self, msec: int) -> bool:
        return False

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._session.live.discard(self.abort)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # --- the bridge -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._chan is not None and self._record is not None
        grant = self._session.grant
        try:
            if self._pty is not None and self._kind in ("shell", "exec"):
                term, cols, rows = self._pty
                terminal = await self._link.terminal(grant.runner_id, grant.sandbox_id, term=term, cols=cols,
                                                     rows=rows, command=self._command)
                await self._terminal(terminal)
            else:
                process = await self._link.process(grant.runner_id, grant.sandbox_id, self._request())
                await self._process(process)
        except Unreachable as failure:
            self._record.refused = failure.message
            self._fail(failure.message)
        except asyncio.CancelledError:
            pass  # the client went away: the backend is closed on the way out
        except Exception as error:  # a bug or a broken link: end this channel, not the gateway
            log.exception("SSH channel of session %s failed", grant.session_id)
            self._fail(f"{LOST} ({type(error).__name__})")
        finally:
            self._session.finish(self._record)

    def _request(self) -> dict[str, object]:
        request: dict[str, object] = {}
        if self._kind == "sftp":
            request["program"] = "sftp-server"
        elif self._command is not None:
            request["command"] = self._command
        assert self._chan is not None
        env = {k: v for k, v in self._chan.get_environment().items()
               if isinstance(k, str) and isinstance(v, str) and (k in PASSED_ENV or k.startswith("LC_"))}
        if env:
            request["env"] = env
        return request

    async def _write(self, data: bytes, stderr: bool = False) -> None:
        assert self._chan is not None and self._record is not None
        await self._writable.wait()
        self._record.bytes_out += len(data)
        if stderr:
            self._chan.write_stderr(data)
        else:
            self._chan.write(data)

    async def _process(self, process: Process) -> None:
        feeder = asyncio.create_task(self._feed_process(process))
        try:
            while (item := await process.read()) is not None:
                kind, data = item
                if kind == "exit":
                    self._exit(json.loads(data))
                    return
                await self._write(data, stderr=kind == "stderr")
            self._fail(LOST)
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            await process.close()

    async def _feed_process(self, process: Process) -> None:
        while True:
            item = await self._inbox.get()
            if item is _EOF:
                await process.close_stdin()
            elif isinstance(item, tuple):
                if item[0] == "signal":
                    await process.signal(item[1])
            else:
                await process.write_stdin(item)

    async def _terminal(self, terminal: Terminal) -> None:
        feeder = asyncio.create_task(self._feed_terminal(terminal))
        try:
            while True:
                item = await terminal.read()
                if item is None:
                    self._fail(LOST)
                    return
                if isinstance(item, int):
                    self._exit({"exitCode": item})
                    return
                await self._write(item)
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            await terminal.close()

    async def _feed_terminal(self, terminal: Terminal) -> None:
        while True:
            item = await self._inbox.get()
            if isinstance(item, tuple):
                if item[0] == "resize":
                    await terminal.resize(item[1], item[2])
            elif item is not _EOF:
                await terminal.write(item)

    def _exit(self, status: dict[str, Any]) -> None:
        assert self._chan is not None and self._record is not None
        signal = status.get("signal")
        if signal:
            self._record.signal = str(signal)
            self._record.exit_status = int(status.get("exitCode", 255))
            self._chan.exit_with_signal(str(signal))
        else:
            self._record.exit_status = int(status.get("exitCode", 255))
            self._chan.exit(self._record.exit_status)

    def _fail(self, message: str) -> None:
        assert self._chan is not None and self._record is not None
        try:
            self._chan.write_stderr(f"corral: {message}\r\n".encode())
            self._record.exit_status = 255
            self._chan.exit(255)
        except (OSError, asyncssh.Error):
            pass  # the channel is already closing


class TunnelChannel(asyncssh.SSHTCPSession):  # type: ignore[type-arg]
    """A direct TCP/IP channel (`ssh -L`) bridged to a port on the sandbox's loopback."""

    def __init__(self, tunnel: Tunnel, session: Session, record: ChannelRecord):
        self._tunnel = tunnel
        self._session = session
        self._record = record
        self._chan: asyncssh.SSHTCPChannel[bytes] | None = None
        self._inbox = _Inbox()
        self._writable = asyncio.Event()
        self._writable.set()
        self._tasks: list[asyncio.Task[None]] = []

    def connection_made(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:  # type: ignore[override]
        self._chan = chan
        self._inbox.chan = chan
        self._session.live.add(self.abort)
        self._tasks = [asyncio.ensure_future(self._upstream()), asyncio.ensure_future(self._downstream())]

    def abort(self, message: str) -> None:
        self._close()

    def data_received(self, data: bytes, datatype: int | None) -> None:  # type: ignore[override]
        self._record.bytes_in += len(data)
        self._inbox.put(data)

    def eof_received(self) -> bool:
        return True  # keep reading what the sandbox sends back

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._session.live.discard(self.abort)
        for task in self._tasks:
            task.cancel()
        asyncio.ensure_future(self._tunnel.close())
        self._session.finish(self._record)

    async def _upstream(self) -> None:
        try:
            while True:
                item = await self._inbox.get()
                if isinstance(item, (bytes, bytearray)):
                    await self._tunnel.write(bytes(item))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.info("tunnel write failed: %s", error)
            self._close()

    async def _downstream(self) -> None:
        try:
            while data := await self._tunnel.read():
                await self._writable.wait()
                self._record.bytes_out += len(data)
                assert self._chan is not None
                self._chan.write(data)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.info("tunnel read failed: %s", error)
        self._close()

    def _close(self) -> None:
        if self._chan is not None:
            self._chan.close()
