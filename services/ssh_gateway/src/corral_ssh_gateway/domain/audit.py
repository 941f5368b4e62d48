"""What an SSH session did, for the audit trail: one record per channel, kept short."""

from __future__ import annotations

from datetime import datetime

from corral_contracts.ssh import SshChannel

MAX_CHANNELS = 100
MAX_COMMAND = 1000


class ChannelRecord:
    """A channel while it is open; `finish` turns it into the `SshChannel` of the session's end event."""

    __slots__ = ("kind", "command", "pty", "opened_at", "started", "bytes_in", "bytes_out", "exit_status", "signal",
                 "refused", "seconds")

    def __init__(self, kind: str, command: str = "", pty: bool = False, *, opened_at: datetime, started: float):
        self.kind = kind
        self.command = command[:MAX_COMMAND]
        self.pty = pty
        self.opened_at = opened_at
        self.started = started
        self.bytes_in = 0
        self.bytes_out = 0
        self.exit_status: int | None = None
        self.signal = ""
        self.refused = ""
        self.seconds = 0.0

    def finish(self, now: float) -> None:
        self.seconds = round(max(0.0, now - self.started), 3)

    def record(self) -> SshChannel:
        return SshChannel(kind=self.kind, command=self.command, pty=self.pty, exit_status=self.exit_status,
                          signal=self.signal, opened_at=self.opened_at, seconds=self.seconds,
                          bytes_in=self.bytes_in, bytes_out=self.bytes_out, refused=self.refused)


class ChannelLog:
    """The first `MAX_CHANNELS` channels of a session, and a count of the rest."""

    def __init__(self) -> None:
        self.channels: list[ChannelRecord] = []
        self.more = 0

    def add(self, record: ChannelRecord) -> ChannelRecord:
        if len(self.channels) < MAX_CHANNELS:
            self.channels.append(record)
        else:
            self.more += 1
        return record

    def records(self) -> list[SshChannel]:
        return [c.record() for c in self.channels]
