"""Contract: followers see every message from the first, in order, including later ones."""

from __future__ import annotations

import pytest

from corral_contracts.subjects import CMD_STREAM, EVT_STREAM
from corral_messaging import Bus, Delivery
from corral_observability import CAUSATION_ID, CORRELATION_ID


async def test_follow_sees_everything_in_order_including_later_messages(bus: Bus, uid: str) -> None:
    for index in range(3):
        await bus.publish(f"evt.t{uid}.a", b"%d" % index, msg_id=f"{uid}-{index}")
    await bus.publish(f"evt.u{uid}.a", b"other", msg_id=f"{uid}-other")
    seen: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        seen.append(delivery)

    follower = bus.follow(stream=EVT_STREAM, filter_subject=f"evt.t{uid}.>", handler=handler)
    await follower.start()
    await follower.wait_idle()
    assert [d.data for d in seen] == [b"0", b"1", b"2"]
    for index in range(3, 6):
        await bus.publish(f"evt.t{uid}.b", b"%d" % index, msg_id=f"{uid}-{index}")
    await follower.wait_idle()
    await follower.stop()
    assert [d.data for d in seen] == [b"%d" % i for i in range(6)]
    assert [d.msg_id for d in seen] == [f"{uid}-{i}" for i in range(6)]
    assert [d.stream_seq for d in seen] == sorted(d.stream_seq for d in seen)


async def test_two_followers_each_see_everything(bus: Bus, uid: str) -> None:
    first: list[bytes] = []
    second: list[bytes] = []

    async def one(delivery: Delivery) -> None:
        first.append(delivery.data)

    async def two(delivery: Delivery) -> None:
        second.append(delivery.data)

    followers = [bus.follow(stream=EVT_STREAM, filter_subject=f"evt.t{uid}.>", handler=h) for h in (one, two)]
    for follower in followers:
        await follower.start()
    for index in range(4):
        await bus.publish(f"evt.t{uid}.a", b"%d" % index, msg_id=f"{uid}-{index}")
    for follower in followers:
        await follower.wait_idle()
        await follower.stop()
    assert first == second == [b"0", b"1", b"2", b"3"]


async def test_a_failing_follower_handler_is_skipped_not_fatal(bus: Bus, uid: str) -> None:
    seen: list[bytes] = []

    async def handler(delivery: Delivery) -> None:
        if delivery.data == b"bad":
            raise ValueError("cannot project")
        seen.append(delivery.data)

    follower = bus.follow(stream=EVT_STREAM, filter_subject=f"evt.t{uid}.>", handler=handler)
    await follower.start()
    for data in (b"1", b"bad", b"2"):
        await bus.publish(f"evt.t{uid}.a", data, msg_id=f"{uid}-{data.decode()}")
    await follower.wait_idle()
    await follower.stop()
    assert seen == [b"1", b"2"]


async def test_a_follower_handler_runs_in_the_messages_correlation(bus: Bus, uid: str) -> None:
    async def handler(delivery: Delivery) -> None:
        await bus.publish(f"evt.v{uid}.derived", b"", msg_id=f"{uid}-derived")

    follower = bus.follow(stream=EVT_STREAM, filter_subject=f"evt.t{uid}.>", handler=handler)
    await follower.start()
    await bus.publish(f"evt.t{uid}.a", b"", msg_id=f"{uid}-origin")
    await follower.wait_idle()
    await follower.stop()
    [derived] = await bus.stream_messages(EVT_STREAM, f"evt.v{uid}.derived")
    assert (derived.headers[CORRELATION_ID], derived.headers[CAUSATION_ID]) == (f"{uid}-origin", f"{uid}-origin")


async def test_a_work_queue_cannot_be_followed(bus: Bus, uid: str) -> None:
    async def handler(delivery: Delivery) -> None:
        pass

    with pytest.raises(ValueError, match="work-queue"):
        bus.follow(stream=CMD_STREAM, filter_subject=f"cmd.t.{uid}.>", handler=handler)
