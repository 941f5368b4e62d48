"""The outbox relay against a real nats-server: every event on EVT exactly once, even across crashes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from corral_contracts import codecs
from corral_contracts.codecs import RecordedEvent
from corral_contracts.sandbox import SandboxLabelsReplaced
from corral_contracts.subjects import EVT_STREAM
from corral_eventstore import EventLog, OutboxRelay
from corral_messaging import JetStreamBus
from corral_testing.waiting import wait_for


class Crash(Exception):
    pass


@pytest.fixture
async def bus(nats_server):  # type: ignore[no-untyped-def]
    bus = JetStreamBus(nats_server.url, name="outbox-test")
    await bus.connect()
    await bus.ensure_streams()
    yield bus
    await bus.close()


async def evt_sequences(bus: JetStreamBus, subject: str) -> list[int]:
    return [codecs.recorded_events.decode(m.data).sequence for m in await bus.stream_messages(EVT_STREAM, subject)]


def record(log: EventLog, key: uuid.UUID, count: int, start: int = 0) -> None:
    for i in range(count):
        log.append(key, start + i, [SandboxLabelsReplaced(sandbox_id=str(key), labels={"i": str(start + i)})],
                   {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})


async def test_a_relay_killed_between_publish_and_tracking_repeats_nothing(bus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = EventLog(RecordedEvent, f"sqlite:///{tmp_path / 'events.db'}")
    key = uuid.uuid4()
    subject = "evt.sandbox.labels_replaced"
    before = len(await evt_sequences(bus, subject))
    record(log, key, 25)
    published = 0

    async def dies_after_ten(subject: str, data: bytes, *, msg_id: str, headers: dict[str, str]) -> object:
        nonlocal published
        if published == 10:
            raise Crash("killed mid-batch")
        published += 1
        return await bus.publish(subject, data, msg_id=msg_id, headers=headers)

    crashing = OutboxRelay(log, dies_after_ten, batch=100)
    assert await crashing.resume() == 0
    with pytest.raises(Crash):
        await crashing.relay_once()
    assert published == 10
    assert log.tracked("outbox-evt") == 0, "nothing was tracked: the batch never completed"

    record(log, key, 5, start=25)
    relay = OutboxRelay(log, bus.publish, batch=7)
    await relay.start()
    await relay.wait_published(log.last_notification_id())
    await relay.stop()
    got = (await evt_sequences(bus, subject))[before:]
    assert got == list(range(1, 31)), "each event once, in order, despite 10 being published twice"
    messages = (await bus.stream_messages(EVT_STREAM, subject))[before:]
    assert [m.msg_id for m in messages] == [f"n{i}" for i in range(1, 31)]
    assert all(m.headers["traceparent"].startswith("00-111") for m in messages), "trace context travels on"
    log.close()


async def test_a_restarted_relay_resumes_from_its_tracking_position(bus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'events.db'}"
    log = EventLog(RecordedEvent, url)
    key = uuid.uuid4()
    record(log, key, 3)
    relay = OutboxRelay(log, bus.publish)
    await relay.start()
    await relay.wait_published(3)
    await relay.stop()
    log.close()

    reopened = EventLog(RecordedEvent, url)
    record(reopened, key, 2, start=3)
    published: list[str] = []

    async def counting(subject: str, data: bytes, *, msg_id: str, headers: dict[str, str]) -> object:
        published.append(msg_id)
        return await bus.publish(subject, data, msg_id=msg_id, headers=headers)

    relay = OutboxRelay(reopened, counting, poll_interval=0.05)
    await relay.start()
    await wait_for(lambda: relay.position >= 5, timeout=10)
    await relay.stop()
    assert published == ["n4", "n5"], "only what was not yet relayed"
    reopened.close()
