"""Contract: durable consumers ack after the handler, retry with backoff, dead-letter, keep order."""

from __future__ import annotations

import asyncio

from corral_contracts.subjects import CMD_STREAM, DLQ_STREAM, EVT_STREAM, dead_letter_subject
from corral_messaging import (
    DEAD_LETTER_REASON,
    MSG_ID,
    ORIGINAL_SUBJECT,
    Bus,
    ConsumerPolicy,
    Delivery,
    PoisonMessage,
    TransientError,
)
from corral_observability import CAUSATION_ID, CORRELATION_ID
from corral_testing.waiting import wait_for

FAST = ConsumerPolicy(max_deliver=3, backoff=(0.05,), ack_wait=5.0)


def trace_id(delivery: Delivery) -> str:
    return delivery.headers["traceparent"].split("-")[1]


async def test_messages_published_before_start_are_delivered_in_order(bus: Bus, uid: str) -> None:
    for index in range(5):
        await bus.publish(f"cmd.t.{uid}.do", str(index).encode(), msg_id=f"{uid}-{index}")
    seen: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        seen.append(delivery)

    consumer = bus.consume(stream=CMD_STREAM, durable=f"d{uid}", filter_subject=f"cmd.t.{uid}.>", handler=handler)
    await consumer.start()
    await consumer.wait_idle()
    assert [d.data for d in seen] == [b"0", b"1", b"2", b"3", b"4"]
    assert [d.msg_id for d in seen] == [f"{uid}-{i}" for i in range(5)]
    assert all(d.num_delivered == 1 and d.headers[MSG_ID] == d.msg_id for d in seen)
    await consumer.stop()


async def test_one_at_a_time_in_stream_order(bus: Bus, uid: str) -> None:
    running = 0
    most = 0
    seen: list[bytes] = []

    async def handler(delivery: Delivery) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0)  # yield to the loop: a second handler would start now
        seen.append(delivery.data)
        running -= 1

    consumer = bus.consume(stream=CMD_STREAM, durable=f"d{uid}", filter_subject=f"cmd.t.{uid}.>", handler=handler)
    await consumer.start()
    for index in range(20):
        await bus.publish(f"cmd.t.{uid}.{'a' if index % 2 else 'b'}", b"%d" % index, msg_id=f"{uid}-{index}")
    await consumer.wait_idle()
    await consumer.stop()
    assert seen == [b"%d" % i for i in range(20)]
    assert most == 1


async def test_max_ack_pending_one_keeps_stream_order_across_retries(bus: Bus, uid: str) -> None:
    seen: list[tuple[bytes, int]] = []

    async def handler(delivery: Delivery) -> None:
        seen.append((delivery.data, delivery.num_delivered))
        if delivery.data == b"first" and delivery.num_delivered == 1:
            raise TransientError("not yet")

    policy = ConsumerPolicy(max_deliver=3, backoff=(0.05,), ack_wait=5.0, max_ack_pending=1)
    consumer = bus.consume(stream=CMD_STREAM, durable=f"d{uid}", filter_subject=f"cmd.t.{uid}.>",
                           handler=handler, policy=policy)
    await bus.publish(f"cmd.t.{uid}.do", b"first", msg_id=f"{uid}-1")
    await bus.publish(f"cmd.t.{uid}.do", b"second", msg_id=f"{uid}-2")
    await consumer.start()
    await consumer.wait_idle()
    await consumer.stop()
    assert seen == [(b"first", 1), (b"first", 2), (b"second", 1)]


async def test_ack_comes_only_after_the_handler_returned(bus: Bus, uid: str) -> None:
    attempts: list[int] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append(delivery.num_delivered)
        if len(attempts) == 1:
            raise RuntimeError("crash before the effect was committed")

    consumer = bus.consume(stream=CMD_STREAM, durable=f"d{uid}", filter_subject=f"cmd.t.{uid}.>",
                           handler=handler, policy=FAST)
    await consumer.start()
    await bus.publish(f"cmd.t.{uid}.do", b"x", msg_id=f"{uid}-1")
    await consumer.wait_idle()
    await consumer.stop()
    assert attempts == [1, 2]
    assert await bus.stream_messages(CMD_STREAM, f"cmd.t.{uid}.>") == []


async def test_transient_failures_back_off_then_succeed(bus: Bus, uid: str) -> None:
    policy = ConsumerPolicy(max_deliver=5, backoff=(0.1, 0.3), ack_wait=5.0)
    times: list[float] = []
    clock = asyncio.get_running_loop().time

    async def handler(delivery: Delivery) -> None:
        times.append(clock())
        if delivery.num_delivered < 4:
            raise TransientError("runner busy")

    consumer = bus.consume(stream=CMD_STREAM, durable=f"d{uid}", filter_subject=f"cmd.t.{uid}.>",
                           handler=handler, policy=policy)
    await consumer.start()
    await bus.publish(f"cmd.t.{uid}.do", b"x", msg_id=f"{uid}-1")
    await consumer.wait_idle()
    await consumer.stop()
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert len(times) == 4
    assert gaps[0] >= 0.09 and gaps[1] >= 0.29 and gaps[2] >= 0.29  # the last backoff repeats
    assert await bus.stream_messages(DLQ_STREAM, f"dlq.cmd.d{uid}") == []


async def test_poison_goes_to_the_dead_letter_subject_at_once(bus: Bus, uid: str) -> None:
    attempts: list[int] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append(delivery.num_delivered)
        raise PoisonMessage("cannot decode")

    durable = f"d{uid}"
    consumer = bus.consume(stream=CMD_STREAM, durable=durable, filter_subject=f"cmd.t.{uid}.>",
                           handler=handler, policy=FAST)
    await consumer.start()
    ack = await bus.publish(f"cmd.t.{uid}.do", b"garbage", msg_id=f"{uid}-1")
    await consumer.wait_idle()
    await consumer.stop()
    assert attempts == [1]
    [dead] = await bus.stream_messages(DLQ_STREAM, dead_letter_subject(CMD_STREAM, durable))
    assert dead.data == b"garbage"
    assert "cannot decode" in dead.headers[DEAD_LETTER_REASON]
    assert dead.headers[ORIGINAL_SUBJECT] == f"cmd.t.{uid}.do"
    assert dead.headers[MSG_ID] == f"dlq:{durable}:{ack.seq}"
    assert dead.headers[CORRELATION_ID] == f"{uid}-1"
    assert await bus.stream_messages(CMD_STREAM, f"cmd.t.{uid}.>") == []


async def test_max_deliver_failures_go_to_the_dead_letter_subject(bus: Bus, uid: str) -> None:
    attempts: list[int] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append(delivery.num_delivered)
        raise ValueError("always broken")

    durable = f"d{uid}"
    consumer = bus.consume(stream=EVT_STREAM, durable=durable, filter_subject=f"evt.t{uid}.>",
                           handler=handler, policy=FAST)
    await consumer.start()
    await bus.publish(f"evt.t{uid}.bad", b"e", msg_id=f"{uid}-1", headers={"X-Trace": "kept"})
    await bus.publish(f"evt.t{uid}.bad", b"f", msg_id=f"{uid}-2")
    await consumer.wait_idle()
    await consumer.stop()
    assert attempts == [1, 2, 3, 1, 2, 3] or sorted(attempts) == [1, 1, 2, 2, 3, 3]
    dead = await bus.stream_messages(DLQ_STREAM, dead_letter_subject(EVT_STREAM, durable))
    assert sorted(d.data for d in dead) == [b"e", b"f"]
    first = next(d for d in dead if d.data == b"e")
    assert "max_deliver 3" in first.headers[DEAD_LETTER_REASON] and "always broken" in first.headers[DEAD_LETTER_REASON]
    assert first.headers["X-Trace"] == "kept"
    assert len(await bus.stream_messages(EVT_STREAM, f"evt.t{uid}.>")) == 2  # limits: events stay


async def test_acked_commands_leave_the_work_queue(bus: Bus, uid: str) -> None:
    async def handler(delivery: Delivery) -> None:
        pass

    for index in range(3):
        await bus.publish(f"cmd.t.{uid}.do", b"c", msg_id=f"{uid}-{index}")
    await bus.publish(f"cmd.t.{uid}x.other", b"not mine", msg_id=f"{uid}-other")
    assert len(await bus.stream_messages(CMD_STREAM, f"cmd.t.{uid}.>")) == 3
    consumer = bus.consume(stream=CMD_STREAM, durable=f"d{uid}", filter_subject=f"cmd.t.{uid}.>", handler=handler)
    await consumer.start()
    await consumer.wait_idle()
    await consumer.stop()
    assert await bus.stream_messages(CMD_STREAM, f"cmd.t.{uid}.>") == []
    assert len(await bus.stream_messages(CMD_STREAM, f"cmd.t.{uid}x.>")) == 1


async def test_a_durable_resumes_where_it_stopped(bus: Bus, uid: str) -> None:
    seen: list[bytes] = []

    async def handler(delivery: Delivery) -> None:
        seen.append(delivery.data)

    def consumer_():
        return bus.consume(stream=EVT_STREAM, durable=f"d{uid}", filter_subject=f"evt.t{uid}.>", handler=handler)

    first = consumer_()
    await first.start()
    await bus.publish(f"evt.t{uid}.a", b"1", msg_id=f"{uid}-1")
    await first.wait_idle()
    await first.stop()
    await bus.publish(f"evt.t{uid}.a", b"2", msg_id=f"{uid}-2")
    second = consumer_()
    await second.start()
    await second.wait_idle()
    await second.stop()
    assert seen == [b"1", b"2"]


async def test_stop_finishes_the_handler_in_flight_and_loses_no_ack(bus: Bus, uid: str) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()
    seen: list[bytes] = []

    async def handler(delivery: Delivery) -> None:
        entered.set()
        await release.wait()
        seen.append(delivery.data)

    consumer = bus.consume(stream=CMD_STREAM, durable=f"d{uid}", filter_subject=f"cmd.t.{uid}.>", handler=handler)
    await consumer.start()
    await bus.publish(f"cmd.t.{uid}.do", b"1", msg_id=f"{uid}-1")
    await entered.wait()
    stopping = asyncio.create_task(consumer.stop())
    await asyncio.sleep(0)  # a yield, not a wait: stop() must now be blocked on the handler
    assert not stopping.done()
    release.set()
    await stopping
    assert seen == [b"1"]
    assert await bus.stream_messages(CMD_STREAM, f"cmd.t.{uid}.>") == []  # acked, so removed


async def test_a_handler_that_publishes_passes_correlation_on(bus: Bus, uid: str) -> None:
    commands: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        commands.append(delivery)
        await bus.publish(f"evt.t{uid}.done", b"", msg_id=f"{uid}-evt")

    consumer = bus.consume(stream=CMD_STREAM, durable=f"d{uid}", filter_subject=f"cmd.t.{uid}.>", handler=handler)
    await consumer.start()
    await bus.publish(f"cmd.t.{uid}.do", b"", msg_id=f"{uid}-cmd", headers={CORRELATION_ID: f"{uid}-conv"})
    await consumer.wait_idle()
    await consumer.stop()
    [event] = await bus.stream_messages(EVT_STREAM, f"evt.t{uid}.done")
    assert event.headers[CORRELATION_ID] == f"{uid}-conv"
    assert event.headers[CAUSATION_ID] == f"{uid}-cmd"
    assert trace_id(event) == trace_id(commands[0])


async def test_wait_idle_waits_for_messages_published_meanwhile(bus: Bus, uid: str) -> None:
    seen: list[bytes] = []

    async def handler(delivery: Delivery) -> None:
        seen.append(delivery.data)
        if delivery.data == b"0":
            await bus.publish(f"cmd.t.{uid}.do", b"1", msg_id=f"{uid}-1")

    consumer = bus.consume(stream=CMD_STREAM, durable=f"d{uid}", filter_subject=f"cmd.t.{uid}.>", handler=handler)
    await consumer.start()
    await bus.publish(f"cmd.t.{uid}.do", b"0", msg_id=f"{uid}-0")
    await wait_for(lambda: seen, message="first message handled")
    await consumer.wait_idle()
    await consumer.stop()
    assert seen == [b"0", b"1"]
