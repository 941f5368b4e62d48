"""A webhooks service started again on its store knows exactly what it had recorded: it skips the platform
events it processed (redelivered from EVT after a restart), keeps webhook-ids, and sends again what had
no recorded outcome. Real SQLite store, in-memory bus, real HTTP receiver."""

from __future__ import annotations

import os
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from corral_api.domain.webhook_endpoint import secret_from
from corral_contracts import codecs
from corral_contracts import sandbox as sbev
from corral_contracts import webhooks as wh
from corral_contracts.envelope import EventEnvelope
from corral_contracts.subjects import event_subject
from corral_messaging import MemoryBus
from corral_testing.waiting import wait_for
from corral_testing.webhooks import Receiver
from corral_webhooks.bootstrap import Webhooks, build

from webhooks_harness import webhooks_settings

ORG = "org-1"
SID = str(uuid.uuid4())
EID = str(uuid.uuid4())


def envelope(sequence: int, payload: Any, meta: dict[str, str]) -> EventEnvelope[Any]:
    return EventEnvelope(event_id=f"n{sequence}", aggregate_id=getattr(payload, "sandbox_id", EID), sequence=sequence,
                         aggregate_version=1, occurred_at=datetime.now(timezone.utc), meta=meta, payload=payload)


async def started(tmp_path: Path, events: list[EventEnvelope[Any]]) -> tuple[Webhooks, MemoryBus]:
    """A fresh bus (its EVT holds `events`, as after a restart everything not acked comes again)."""
    bus = MemoryBus()
    service = build(webhooks_settings(tmp_path), bus=bus)
    await service.start()
    for e in events:
        await bus.publish(event_subject(e.payload), codecs.encode(e), msg_id=e.event_id)
    return service, bus


def snapshot(service: Webhooks) -> dict[str, Any]:  # what a restart must find again
    ledger = service.ledger
    return {"tracked": ledger.tracked, "endpoints": {k: m.endpoint for k, m in ledger.endpoints.items()},
            "resources": {k: (r.state, r.request) for k, r in ledger.resources.items()},
            "deliveries": {k: (d.status, d.event_type, d.body, [a.attempt for a in d.attempts])
                           for k, d in ledger.deliveries.items()}}


async def test_a_restart_skips_what_was_processed_and_delivers_what_was_not(tmp_path: Path) -> None:
    receiver = await Receiver().start()
    secret = secret_from(os.urandom(32))
    receiver.secrets["r"] = secret
    user = {"Corral-Actor": "crl_user"}
    runner = {"Corral-Actor": "runner:r1", "Corral-Causation-Id": "f1"}
    history = [
        envelope(1, wh.WebhookEndpointCreated(endpoint_id=EID, organization_id=ORG, url=receiver.url("r"),
                                              secret=secret), user),
        envelope(2, sbev.SandboxCreated(sandbox_id=SID, organization_id=ORG, name="b", runner_id="r1", image="i",
                                        snapshot="s", user="u", env={"TOKEN": "t"}), user),
        envelope(4, sbev.SandboxStarted(sandbox_id=SID, runner_id="r1"), runner),
    ]
    try:
        first, _ = await started(tmp_path, history)
        await wait_for(lambda: first.ledger.tracked == 4 and len(receiver.received) == 2, message="first run")
        await wait_for(lambda: all(d.status == "succeeded" for d in first.ledger.deliveries.values()))
        before = snapshot(first)
        receiver.gate.clear()  # the next delivery arrives but gets no answer before the service stops
        more = envelope(5, sbev.SandboxStopRequested(sandbox_id=SID), user)
        await first.bus.publish(event_subject(more.payload), codecs.encode(more), msg_id=more.event_id)
        await wait_for(lambda: receiver.held == 1, message="the third delivery never arrived")
        await first.stop()
        receiver.gate.set()
        in_flight = receiver.received[-1].webhook_id

        second, _ = await started(tmp_path, [*history, more])
        try:
            after = snapshot(second)
            assert after["endpoints"] == before["endpoints"] and after["tracked"] == 5
            assert after["resources"][("sandbox", SID)][0] == "stopping"
            assert all(second.ledger.deliveries[k].status == v[0] for k, v in before["deliveries"].items())
            await wait_for(lambda: len(receiver.received) == 4, message="the unanswered delivery was not sent again")
            await wait_for(lambda: second.ledger.pending == 0)
            assert receiver.received[-1].webhook_id == in_flight, "sent again under the same webhook-id"
            assert len(receiver.unique("r")) == 3, "the events processed before the restart were not repeated"
            assert second.feed.handled == 4 and second.journal.commits >= 1
            stored = sqlite3.connect(webhooks_settings(tmp_path).database_url.removeprefix("sqlite:///"))
            assert not [s for (s,) in stored.execute("select state from stored_events") if b"TOKEN" in s], \
                "the sandbox's environment is never kept"
            stored.close()
        finally:
            await second.stop()
    finally:
        await receiver.stop()
    assert not receiver.rejected
