"""JetStreamBus only: the server's view of the streams, creation races, outages and restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.js import api

from corral_contracts.subjects import CMD_STREAM, DLQ_STREAM, EVT_STREAM, RUNNERS_BUCKET
from corral_messaging import Delivery, JetStreamBus
from corral_stack.nats import NatsServer


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A server of this test alone, for tests that stop it or need it empty."""
    server = NatsServer(tmp_path / "store", log_file=tmp_path / "nats-server.log")
    yield server
    server.stop()


@pytest.fixture
async def js_bus(nats_server: NatsServer, uid: str) -> AsyncIterator[JetStreamBus]:
    bus = JetStreamBus(nats_server.url, name=f"js-{uid}")
    await bus.connect()
    await bus.ensure_streams()
    yield bus
    await bus.close()


async def test_streams_and_bucket_are_configured_as_designed(nats_server: NatsServer, js_bus: JetStreamBus) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        cmd, evt, dlq = [(await js.stream_info(name)).config for name in (CMD_STREAM, EVT_STREAM, DLQ_STREAM)]
        assert (cmd.subjects, cmd.retention, cmd.storage) == (["cmd.>"], api.RetentionPolicy.WORK_QUEUE,
                                                              api.StorageType.FILE)
        assert cmd.duplicate_window == 600
        assert (evt.subjects, evt.retention, evt.duplicate_window) == (["evt.>"], api.RetentionPolicy.LIMITS, 3600)
        assert not evt.max_age
        assert (dlq.subjects, dlq.retention) == (["dlq.>"], api.RetentionPolicy.LIMITS)
        assert (await (await js.key_value(RUNNERS_BUCKET)).status()).ttl == 30
    finally:
        await nc.close()


async def test_two_processes_ensure_streams_at_once_and_fix_drifted_settings(own_server: NatsServer) -> None:
    await asyncio.to_thread(own_server.start)
    nc = await nats.connect(own_server.url)
    await nc.jetstream().add_stream(name=EVT_STREAM, subjects=["evt.>"], duplicate_window=60)
    buses = [JetStreamBus(own_server.url, name=f"p{i}") for i in range(3)]
    try:
        for bus in buses:
            await bus.connect()
        await asyncio.gather(*(bus.ensure_streams() for bus in buses))
        await buses[0].ensure_streams()
        assert (await nc.jetstream().stream_info(EVT_STREAM)).config.duplicate_window == 3600
    finally:
        for bus in buses:
            await bus.close()
        await nc.close()


async def test_connect_waits_for_a_server_that_starts_later(own_server: NatsServer) -> None:
    bus = JetStreamBus(own_server.url, name="early", reconnect_wait=0.1)
    connecting = asyncio.create_task(bus.connect())
    await asyncio.sleep(0)  # a yield: the first attempt is refused
    assert not connecting.done()
    await asyncio.to_thread(own_server.start)
    await asyncio.wait_for(connecting, 20)
    await bus.ensure_streams()
    assert (await bus.publish("evt.early.x", b"", msg_id="1")).seq == 1
    await bus.close()


async def test_a_deleted_consumer_is_recreated(nats_server: NatsServer, js_bus: JetStreamBus, uid: str) -> None:
    seen: list[bytes] = []
    followed: list[bytes] = []

    async def handler(delivery: Delivery) -> None:
        seen.append(delivery.data)

    async def follow(delivery: Delivery) -> None:
        followed.append(delivery.data)

    consumer = js_bus.consume(stream=CMD_STREAM, durable=f"d{uid}", filter_subject=f"cmd.t.{uid}.>", handler=handler)
    follower = js_bus.follow(stream=EVT_STREAM, filter_subject=f"evt.t{uid}.>", handler=follow)
    await consumer.start()
    await follower.start()
    await js_bus.publish(f"evt.t{uid}.a", b"e1", msg_id=f"{uid}-e1")
    await follower.wait_idle()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.delete_consumer(CMD_STREAM, f"d{uid}")
    for info in await js.consumers_info(EVT_STREAM):
        if info.config.filter_subject == f"evt.t{uid}.>":
            await js.delete_consumer(EVT_STREAM, info.name)
    await nc.close()
    await js_bus.publish(f"cmd.t.{uid}.do", b"c1", msg_id=f"{uid}-c1")
    await js_bus.publish(f"evt.t{uid}.a", b"e2", msg_id=f"{uid}-e2")
    await consumer.wait_idle(20)
    await follower.wait_idle(20)
    assert seen == [b"c1"]
    assert followed == [b"e1", b"e2"]


async def test_nothing_is_lost_across_server_restarts(own_server: NatsServer, uid: str) -> None:
    await asyncio.to_thread(own_server.start)
    bus = JetStreamBus(own_server.url, name="restarts", reconnect_wait=0.1)
    await bus.connect()
    await bus.ensure_streams()
    commands: list[bytes] = []
    events: list[Delivery] = []

    async def on_command(delivery: Delivery) -> None:
        commands.append(delivery.data)

    async def on_event(delivery: Delivery) -> None:
        events.append(delivery)

    consumer = bus.consume(stream=CMD_STREAM, durable="worker", filter_subject="cmd.w.>", handler=on_command)
    follower = bus.follow(stream=EVT_STREAM, filter_subject="evt.w.>", handler=on_event)
    await consumer.start()
    await follower.start()

    async def publish(numbers: range) -> None:
        for n in numbers:
            await bus.publish("cmd.w.do", b"%d" % n, msg_id=f"c{n}")
            await bus.publish("evt.w.done", b"%d" % n, msg_id=f"e{n}")

    try:
        await publish(range(0, 5))
        await consumer.wait_idle()
        await follower.wait_idle()
        await asyncio.to_thread(own_server.restart)
        await publish(range(5, 10))
        await asyncio.to_thread(own_server.stop)  # an outage while publishing: the publish waits it out
        during = asyncio.create_task(publish(range(10, 12)))
        await asyncio.to_thread(own_server.start)
        await asyncio.wait_for(during, 30)
        await consumer.wait_idle(30)
        await follower.wait_idle(30)
    finally:
        await bus.close()
    expected = [b"%d" % n for n in range(12)]
    assert sorted(set(commands), key=int) == expected  # at least once: every command handled
    assert [d.data for d in events] == expected  # ordered follower: each event once, in order
    assert [d.stream_seq for d in events] == sorted({d.stream_seq for d in events})


async def test_frequent_bucket_reads_do_not_pile_up_consumers(js_bus: JetStreamBus, uid: str) -> None:
    """Every read of a bucket costs the server a consumer: readers share reads and the server drops
    them quickly, so a busy api (health checks, sweeps, creates) never hits the consumer limit."""
    await js_bus.kv_put(RUNNERS_BUCKET, f"k{uid}", b"1")
    reads = await asyncio.gather(*(js_bus.kv_items(RUNNERS_BUCKET) for _ in range(200)))
    assert all(items[f"k{uid}"] == b"1" for items in reads)
    for round_ in range(100):
        await js_bus.kv_put(RUNNERS_BUCKET, f"k{uid}", str(round_).encode())
        assert (await js_bus.kv_items(RUNNERS_BUCKET))[f"k{uid}"] == str(round_).encode(), "a write is seen at once"
    info = await js_bus._jetstream().stream_info(f"KV_{RUNNERS_BUCKET}")  # noqa: SLF001
    assert info.state.consumer_count <= 110
