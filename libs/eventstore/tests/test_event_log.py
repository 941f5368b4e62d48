"""The event log on real persistence: SQLite (the default) and the library's in-memory store."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from corral_contracts.codecs import RecordedEvent
from corral_contracts.sandbox import SandboxLabelsReplaced, SandboxStartRequested, SandboxStopRequested
from corral_eventstore import ConcurrencyConflict, EventLog, iter_all


@pytest.fixture(params=["sqlite", "memory"])
def event_log(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'events.db'}" if request.param == "sqlite" else "memory://"
    log = EventLog(RecordedEvent, url)
    yield log
    log.close()


def test_contract_events_round_trip_with_their_metadata(event_log: EventLog) -> None:
    key = uuid.uuid4()
    events = [SandboxStartRequested(sandbox_id=str(key)), SandboxLabelsReplaced(sandbox_id=str(key), labels={"a": "b"})]
    last = event_log.append(key, 0, events, {"Corral-Actor": "tester"})
    history = event_log.history(key)
    assert [e.payload for e in history] == events
    assert [e.originator_version for e in history] == [1, 2]
    assert all(e.meta == {"Corral-Actor": "tester"} and e.timestamp.tzinfo for e in history)
    assert last == event_log.last_notification_id() == 2
    assert [(n, e.payload) for n, e in iter_all(event_log)] == [(1, events[0]), (2, events[1])]


def test_a_second_writer_at_the_same_version_conflicts_and_changes_nothing(event_log: EventLog) -> None:
    key = uuid.uuid4()
    event_log.append(key, 0, [SandboxStartRequested(sandbox_id=str(key))])
    with pytest.raises(ConcurrencyConflict):
        event_log.append(key, 0, [SandboxStopRequested(sandbox_id=str(key))])
    assert len(event_log.history(key)) == 1


def test_several_aggregates_are_recorded_in_one_transaction(event_log: EventLog) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    event_log.append(second, 0, [SandboxStartRequested(sandbox_id=str(second))])
    with pytest.raises(ConcurrencyConflict):
        event_log.append(first, 0, [SandboxStartRequested(sandbox_id=str(first))], None,
                         (second, 0, [SandboxStopRequested(sandbox_id=str(second))]))
    assert event_log.history(first) == [], "nothing of a failed transaction is recorded"


def test_tracking_positions_survive_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    log = EventLog(RecordedEvent, url)
    log.track("outbox", 7)
    log.close()
    reopened = EventLog(RecordedEvent, url)
    assert reopened.tracked("outbox") == 7 and reopened.tracked("other") == 0
    reopened.close()


def test_a_tracking_position_is_recorded_once_with_the_events(event_log: EventLog) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    event_log.record([(first, 0, [SandboxStartRequested(sandbox_id=str(first))], {"Corral-Actor": "a"}),
                      (second, 0, [SandboxStopRequested(sandbox_id=str(second))], {"Corral-Actor": "b"})],
                     tracking=("consumer", 7))
    assert event_log.tracked("consumer") == 7
    assert [e.meta for e in event_log.history(first) + event_log.history(second)] == [
        {"Corral-Actor": "a"}, {"Corral-Actor": "b"}], "each write keeps its own metadata"
    with pytest.raises(ConcurrencyConflict):
        event_log.append(uuid.uuid4(), 0, [SandboxStartRequested(sandbox_id="x")], None, tracking=("consumer", 7))
    assert event_log.last_notification_id() == 2, "a position recorded before: nothing of the append is kept"


def test_version_is_the_last_version_without_loading_the_history(event_log: EventLog) -> None:
    key = uuid.uuid4()
    assert event_log.version(key) == 0
    event_log.append(key, 0, [SandboxStartRequested(sandbox_id=str(key)), SandboxStopRequested(sandbox_id=str(key))])
    event_log.append(uuid.uuid4(), 0, [SandboxStartRequested(sandbox_id="other")])
    assert event_log.version(key) == 2
    event_log.append(key, 2, [SandboxStartRequested(sandbox_id=str(key))])
    assert event_log.version(key) == 3


def test_close_waits_for_calls_in_flight(tmp_path: Path) -> None:
    """A task cancelled while its call runs in a worker thread leaves the call running: closing the store
    under it crashed the process (SQLite)."""
    import threading

    log = EventLog(RecordedEvent, f"sqlite:///{tmp_path / 'events.db'}")
    entered, release, closed = threading.Event(), threading.Event(), threading.Event()

    def call_in_flight() -> None:
        with log._in_use():
            entered.set()
            release.wait(10)
            log.last_notification_id()

    worker = threading.Thread(target=call_in_flight)
    worker.start()
    entered.wait(10)
    closer = threading.Thread(target=lambda: (log.close(), closed.set()))
    closer.start()
    assert not closed.wait(0.2), "close did not wait for the call in flight"
    release.set()
    worker.join(10)
    closer.join(10)
    assert closed.is_set()
