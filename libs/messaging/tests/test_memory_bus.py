"""MemoryBus only: what needs a movable clock (windows and TTLs) or has no server to compare with."""

from __future__ import annotations

import pytest

from corral_contracts.subjects import EVT_STREAM, RUNNERS_BUCKET
from corral_messaging import BUCKETS, MemoryBus, NotConnectedError, NoStreamError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clock_and_bus() -> tuple[Clock, MemoryBus]:
    clock = Clock()
    bus = MemoryBus(clock=clock)
    await bus.connect()
    await bus.ensure_streams()
    return clock, bus


async def test_key_value_entries_expire_after_the_bucket_ttl(clock_and_bus: tuple[Clock, MemoryBus]) -> None:
    clock, bus = clock_and_bus
    ttl = next(b.ttl for b in BUCKETS if b.name == RUNNERS_BUCKET)
    await bus.kv_put(RUNNERS_BUCKET, "r1", b"alive")
    clock.now += ttl - 0.1
    assert await bus.kv_items(RUNNERS_BUCKET) == {"r1": b"alive"}
    await bus.kv_put(RUNNERS_BUCKET, "r2", b"alive")
    clock.now += 0.2
    assert await bus.kv_get(RUNNERS_BUCKET, "r1") is None
    assert await bus.kv_items(RUNNERS_BUCKET) == {"r2": b"alive"}


async def test_duplicates_are_dropped_only_within_the_window(clock_and_bus: tuple[Clock, MemoryBus]) -> None:
    clock, bus = clock_and_bus
    first = await bus.publish("evt.x.y", b"1", msg_id="m")
    clock.now += 3599
    assert (await bus.publish("evt.x.y", b"2", msg_id="m")).duplicate
    clock.now += 2
    again = await bus.publish("evt.x.y", b"3", msg_id="m")
    assert not again.duplicate and again.seq == first.seq + 1
    assert [m.data for m in await bus.stream_messages(EVT_STREAM, "evt.x.y")] == [b"1", b"3"]


async def test_unconnected_or_unensured_buses_refuse_work() -> None:
    bus = MemoryBus()
    with pytest.raises(NotConnectedError):
        await bus.publish("evt.x.y", b"", msg_id="m")
    await bus.connect()
    with pytest.raises(NoStreamError):
        await bus.publish("evt.x.y", b"", msg_id="m")
    await bus.close()
    with pytest.raises(NotConnectedError):
        await bus.kv_items(RUNNERS_BUCKET)
