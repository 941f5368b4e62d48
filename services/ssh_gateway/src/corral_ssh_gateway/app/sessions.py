"""Open SSH sessions: what each did (for its end event), activity reports while they are open, and
revocation checks that end the sessions of a revoked token or a destroyed sandbox."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from corral_contracts.ssh import SshSessionEnded

from ..domain.audit import ChannelLog, ChannelRecord
from .access import Grant
from .ports import AccessDesk

log = logging.getLogger(__name__)

ReportActivity = Callable[[str], Awaitable[None]]
END_ATTEMPTS = 6
ENDED_BY = {"revoked": "This SSH access token was revoked.", "sandbox-gone": "The sandbox has been destroyed.",
            "unknown": "This SSH access token is no longer valid."}


class Session:
    """One SSH connection, from login to logout."""

    def __init__(self, grant: Grant, disconnect: Callable[[str], None], clock: Callable[[], float]):
        self.grant = grant
        self.channels = ChannelLog()
        self._disconnect = disconnect
        self._clock = clock
        self.started = clock()
        self.ended = False
        self.live: set[Callable[[str], None]] = set()
        """How to end each open channel with a message for the client (its stderr, for a session)."""

    def channel(self, kind: str, command: str = "", pty: bool = False) -> ChannelRecord:
        return self.channels.add(ChannelRecord(kind, command, pty, opened_at=datetime.now(timezone.utc),
                                               started=self._clock()))

    def finish(self, record: ChannelRecord) -> None:
        record.finish(self._clock())

    def disconnect(self, message: str) -> None:
        """End every open channel with `message`, then the connection."""
        for abort in list(self.live):
            abort(message)
        self._disconnect(message)


class Sessions:
    def __init__(self, desk: AccessDesk, report_activity: ReportActivity, *, activity_every: float = 10.0,
                 check_every: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self._desk = desk
        self._report_activity = report_activity
        self._activity_every = activity_every
        self._check_every = check_every
        self._clock = clock
        self.open: dict[str, Session] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()

    def begin(self, grant: Grant, disconnect: Callable[[str], None]) -> Session:
        session = Session(grant, disconnect, self._clock)
        self.open[grant.session_id] = session
        self._background(self._activity(grant.sandbox_id))
        return session

    def end(self, session: Session, reason: str) -> None:
        """Record the end (in the background, retried): the connection is gone or going."""
        if session.ended:
            return
        session.ended = True
        self.open.pop(session.grant.session_id, None)
        for record in session.channels.channels:
            if not record.seconds:
                session.finish(record)
        grant = session.grant
        ended = SshSessionEnded(session_id=grant.session_id, sandbox_id=grant.sandbox_id, access_id=grant.access_id,
                                client_address=grant.client_address,
                                seconds=round(self._clock() - session.started, 3), reason=reason,
                                channels=session.channels.records(), more_channels=session.channels.more)
        self._background(self._record_end(ended))

    async def _record_end(self, ended: SshSessionEnded) -> None:
        for attempt in range(END_ATTEMPTS):
            try:
                await self._desk.session_ended(ended)
                return
            except Exception as error:
                log.warning("recording the end of SSH session %s failed (%s); attempt %d", ended.session_id,
                            error, attempt + 1)
                await asyncio.sleep(min(8.0, 0.25 * 2 ** attempt))
        log.error("the end of SSH session %s could not be recorded", ended.session_id)

    async def _activity(self, sandbox_id: str) -> None:
        try:
            await self._report_activity(sandbox_id)
        except Exception as error:  # activity is best effort; the session goes on
            log.warning("could not report activity of %s: %s", sandbox_id, error)

    def _background(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # --- while open ---------------------------------------------------------------------------------

    async def report_open(self) -> None:
        """Each sandbox with an open session counts as active now."""
        for sandbox_id in {s.grant.sandbox_id for s in self.open.values()}:
            await self._activity(sandbox_id)

    async def check_open(self) -> int:
        """End the sessions whose token was revoked or whose sandbox is gone; how many were ended."""
        accesses = sorted({s.grant.access_id for s in self.open.values()})
        if not accesses:
            return 0
        invalid = await self._desk.check(accesses)
        ended = 0
        for session in list(self.open.values()):
            why = invalid.get(session.grant.access_id)
            if why:
                log.info("ending SSH session %s: %s", session.grant.session_id, why)
                self.end(session, why)
                session.disconnect(ENDED_BY.get(why, "This SSH session is no longer allowed."))
                ended += 1
        return ended

    async def _every(self, interval: float, step: Callable[[], Awaitable[object]], what: str) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("%s failed: %s", what, error)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._every(self._activity_every, self.report_open, "activity report")),
                       asyncio.create_task(self._every(self._check_every, self.check_open, "revocation check"))]

    async def stop(self, timeout: float = 5.0) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for session in list(self.open.values()):
            self.end(session, "gateway-stopped")
            session.disconnect("The SSH gateway is stopping.")
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)
