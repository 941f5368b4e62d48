"""Real processes killed with SIGKILL: state comes back from the event log, and every recorded event is
on `EVT` once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import docker
import pytest

from corral_contracts import codecs
from corral_contracts.codecs import RecordedEvent
from corral_contracts.subjects import EVT_STREAM
from corral_eventstore import EventLog
from corral_messaging import JetStreamBus
from corral_stack.stack import Stack
from corral_testing.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


async def test_killing_the_api_loses_nothing(stack: Stack, rest) -> None:  # type: ignore[no-untyped-def]
    sandbox = await rest.create(labels={"suite": "api-kill"})
    sid = sandbox["id"]
    try:
        status, result = await rest.execute(sid, "echo before-kill > state.txt")
        assert status == 200 and result["exitCode"] == 0
        stack.services["api"].kill()
        stack.services["api"].start()
        await asyncio.to_thread(stack.wait_ready)

        status, again = await rest.get(sid)
        assert status == 200 and again["state"] == "started" and again["labels"]["suite"] == "api-kill"
        status, result = await rest.execute(sid, "cat state.txt")
        assert status == 200 and result["result"] == "before-kill\n"
        newer = await rest.create()
        await rest.delete(newer["id"])
        status, stopped = await rest.call("POST", f"{rest.api}/sandbox/{sid}/stop")
        assert status == 200
        await rest.wait_state(sid, "stopped")
    finally:
        await rest.delete(sid)
    await rest.wait_state(sid, "gone")


async def test_killing_the_runner_removes_orphans_and_keeps_sandboxes(stack: Stack, rest) -> None:  # type: ignore[no-untyped-def]
    sandbox = await rest.create(labels={"suite": "runner-kill"})
    sid = sandbox["id"]
    runner_id = sandbox["runnerId"]
    client = docker.from_env()
    orphan = client.containers.create("corral/sandbox:default", command=["sleep", "600"],
                                      name=f"corral-orphan-{sid[:8]}",
                                      labels={"corral.managed": "true", "corral.runner_id": runner_id,
                                              "corral.sandbox_id": "00000000-0000-4000-8000-0000000000aa",
                                              **stack.config.container_labels})
    try:
        stack.services["runner"].kill()
        stack.services["runner"].start()
        await asyncio.to_thread(stack.wait_ready)

        def orphan_gone() -> bool:
            try:
                return not client.containers.list(all=True, filters={"id": orphan.id})
            except docker.errors.NotFound:  # removed between docker-py's listing and its inspect: gone
                return True

        await wait_for(orphan_gone, timeout=30, message="the runner left an orphan container")
        status, result = await rest.execute(sid, "echo still-here")
        assert status == 200 and result["result"] == "still-here\n"
    finally:
        await rest.delete(sid)
        try:
            orphan.remove(force=True)
        except docker.errors.NotFound:
            pass
        client.close()
    await rest.wait_state(sid, "gone")


async def test_every_recorded_event_is_on_evt_once_and_in_order(stack: Stack, rest) -> None:  # type: ignore[no-untyped-def]
    sid = (await rest.create())["id"]
    await rest.delete(sid)
    await rest.wait_state(sid, "gone")
    log = EventLog(RecordedEvent, f"sqlite:///{Path(stack.home) / 'api' / 'events.db'}")
    last = log.last_notification_id()
    log.close()
    assert stack.nats is not None
    bus = JetStreamBus(stack.nats.url, name="test-reader")
    await bus.connect()
    try:
        async def relayed() -> bool:
            messages = await bus.stream_messages(EVT_STREAM, "evt.>")
            sequences = [codecs.recorded_events.decode(m.data).sequence for m in messages
                         if not m.subject.startswith("evt.runner.")]
            return bool(sequences) and sequences[-1] >= last

        await wait_for(relayed, timeout=20, message="the outbox never caught up")
        messages = await bus.stream_messages(EVT_STREAM, "evt.>")
        recorded = [m for m in messages if not m.subject.startswith("evt.runner.")]
        sequences = [codecs.recorded_events.decode(m.data).sequence for m in recorded]
        assert sequences == list(range(1, len(sequences) + 1)), "gaps, duplicates or disorder on EVT"
        assert all(m.msg_id == f"n{s}" for m, s in zip(recorded, sequences))
        assert all("traceparent" in m.headers and "Nats-Msg-Id" in m.headers for m in messages)
    finally:
        await bus.close()
