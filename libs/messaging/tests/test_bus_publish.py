"""Contract: streams, publishing, de-duplication, headers, key-value and request/reply, on both buses."""

from __future__ import annotations

import asyncio
import re

import pytest

from corral_contracts.subjects import CMD_STREAM, EVT_STREAM, RUNNERS_BUCKET
from corral_messaging import MSG_ID, Bus, NoBucketError, NoRespondersError, NoStreamError, RemoteError
from corral_observability import CAUSATION_ID, CORRELATION_ID, correlation_scope, tracer

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


async def test_ensure_streams_twice_and_concurrently(bus: Bus, uid: str) -> None:
    await bus.ensure_streams()
    await asyncio.gather(bus.ensure_streams(), bus.ensure_streams())
    ack = await bus.publish(f"evt.t{uid}.happened", b"x", msg_id=f"{uid}-1")
    assert ack.stream == EVT_STREAM and ack.seq > 0 and not ack.duplicate


async def test_publish_routes_to_the_stream_of_its_subject(bus: Bus, uid: str) -> None:
    command = await bus.publish(f"cmd.t.{uid}.do", b"c", msg_id=f"{uid}-c")
    event = await bus.publish(f"evt.t{uid}.done", b"e", msg_id=f"{uid}-e")
    assert (command.stream, event.stream) == (CMD_STREAM, EVT_STREAM)
    stored = await bus.stream_messages(EVT_STREAM, f"evt.t{uid}.>")
    assert [(m.subject, m.data, m.stream_seq) for m in stored] == [(f"evt.t{uid}.done", b"e", event.seq)]


async def test_publish_without_a_stream_fails_clearly(bus: Bus, uid: str) -> None:
    with pytest.raises(NoStreamError, match="nowhere"):
        await bus.publish(f"nowhere.{uid}", b"", msg_id=uid)


async def test_every_message_carries_id_trace_and_correlation(bus: Bus, uid: str) -> None:
    await bus.publish(f"evt.t{uid}.a", b"", msg_id=f"{uid}-a", headers={"X-Extra": "1"})
    stored = (await bus.stream_messages(EVT_STREAM, f"evt.t{uid}.a"))[0]
    assert stored.msg_id == f"{uid}-a"
    assert stored.headers[MSG_ID] == f"{uid}-a"
    assert TRACEPARENT.match(stored.headers["traceparent"])
    assert stored.headers[CORRELATION_ID] == stored.headers[CAUSATION_ID] == f"{uid}-a"
    assert stored.headers["X-Extra"] == "1"


async def test_publish_inside_a_scope_and_span_propagates_them(bus: Bus, uid: str) -> None:
    with tracer().start_as_current_span("publisher") as span, correlation_scope(f"{uid}-conv", f"{uid}-cause"):
        await bus.publish(f"evt.t{uid}.b", b"", msg_id=f"{uid}-b")
    stored = (await bus.stream_messages(EVT_STREAM, f"evt.t{uid}.b"))[0]
    assert stored.headers[CORRELATION_ID] == f"{uid}-conv"
    assert stored.headers[CAUSATION_ID] == f"{uid}-cause"
    assert stored.headers["traceparent"].split("-")[1] == f"{span.get_span_context().trace_id:032x}"


async def test_given_headers_win_except_the_message_id(bus: Bus, uid: str) -> None:
    given = {CORRELATION_ID: "kept", "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01", MSG_ID: "ignored"}
    await bus.publish(f"evt.t{uid}.c", b"", msg_id=f"{uid}-c", headers=given)
    stored = (await bus.stream_messages(EVT_STREAM, f"evt.t{uid}.c"))[0]
    assert stored.headers[CORRELATION_ID] == "kept"
    assert stored.headers["traceparent"] == given["traceparent"]
    assert stored.headers[MSG_ID] == f"{uid}-c"


async def test_a_second_publish_of_one_id_is_a_duplicate(bus: Bus, uid: str) -> None:
    first = await bus.publish(f"evt.t{uid}.d", b"one", msg_id=f"{uid}-same")
    second = await bus.publish(f"evt.t{uid}.d", b"two", msg_id=f"{uid}-same")
    assert not first.duplicate
    assert second.duplicate and second.seq == first.seq
    stored = await bus.stream_messages(EVT_STREAM, f"evt.t{uid}.d")
    assert [m.data for m in stored] == [b"one"]


async def test_dedupe_holds_on_the_command_stream_too(bus: Bus, uid: str) -> None:
    await bus.publish(f"cmd.t.{uid}.x", b"1", msg_id=f"{uid}-cmd")
    assert (await bus.publish(f"cmd.t.{uid}.x", b"1", msg_id=f"{uid}-cmd")).duplicate
    assert len(await bus.stream_messages(CMD_STREAM, f"cmd.t.{uid}.>")) == 1


async def test_stream_messages_filters_and_keeps_order(bus: Bus, uid: str) -> None:
    for index in range(5):
        await bus.publish(f"evt.t{uid}.{'odd' if index % 2 else 'even'}", str(index).encode(), msg_id=f"{uid}-{index}")
    evens = await bus.stream_messages(EVT_STREAM, f"evt.t{uid}.even")
    everything = await bus.stream_messages(EVT_STREAM, f"evt.t{uid}.*")
    assert [m.data for m in evens] == [b"0", b"2", b"4"]
    assert [m.data for m in everything] == [b"0", b"1", b"2", b"3", b"4"]
    assert [m.stream_seq for m in everything] == sorted(m.stream_seq for m in everything)


async def test_request_reply(bus: Bus, uid: str) -> None:
    async def shout(data: bytes) -> bytes:
        return data.upper()

    await bus.serve(f"rpc.t.{uid}.shout", shout)
    assert await bus.request(f"rpc.t.{uid}.shout", b"hi") == b"HI"


async def test_request_reply_errors(bus: Bus, uid: str) -> None:
    never = asyncio.Event()

    async def broken(data: bytes) -> bytes:
        raise ValueError("no such sandbox")

    async def stuck(data: bytes) -> bytes:
        await never.wait()
        return b""

    await bus.serve(f"rpc.t.{uid}.broken", broken)
    await bus.serve(f"rpc.t.{uid}.stuck", stuck)
    with pytest.raises(NoRespondersError):
        await bus.request(f"rpc.t.{uid}.nobody", b"", timeout=2)
    with pytest.raises(RemoteError, match="no such sandbox"):
        await bus.request(f"rpc.t.{uid}.broken", b"")
    with pytest.raises(TimeoutError):
        await bus.request(f"rpc.t.{uid}.stuck", b"", timeout=0.2)
    never.set()


async def test_serve_answers_requests_concurrently(bus: Bus, uid: str) -> None:
    release = asyncio.Event()

    async def gate(data: bytes) -> bytes:
        if data == b"wait":
            await release.wait()
        return data

    await bus.serve(f"rpc.t.{uid}.gate", gate)
    slow = asyncio.create_task(bus.request(f"rpc.t.{uid}.gate", b"wait"))
    assert await bus.request(f"rpc.t.{uid}.gate", b"fast") == b"fast"
    release.set()
    assert await slow == b"wait"


async def test_key_value(bus: Bus, uid: str) -> None:
    assert await bus.kv_get(RUNNERS_BUCKET, f"r-{uid}") is None
    await bus.kv_put(RUNNERS_BUCKET, f"r-{uid}", b"v1")
    await bus.kv_put(RUNNERS_BUCKET, f"r-{uid}", b"v2")
    await bus.kv_put(RUNNERS_BUCKET, f"s-{uid}", b"other")
    await bus.kv_put(RUNNERS_BUCKET, f"t-{uid}", b"gone")
    await bus.kv_delete(RUNNERS_BUCKET, f"t-{uid}")
    assert await bus.kv_get(RUNNERS_BUCKET, f"r-{uid}") == b"v2"
    assert await bus.kv_get(RUNNERS_BUCKET, f"t-{uid}") is None
    mine = {k: v for k, v in (await bus.kv_items(RUNNERS_BUCKET)).items() if k.endswith(uid)}
    assert mine == {f"r-{uid}": b"v2", f"s-{uid}": b"other"}


async def test_key_value_rejects_unknown_buckets_and_bad_keys(bus: Bus, uid: str) -> None:
    with pytest.raises(NoBucketError):
        await bus.kv_get(f"nobucket-{uid}", "k")
    with pytest.raises(ValueError):
        await bus.kv_put(RUNNERS_BUCKET, "bad key", b"")
