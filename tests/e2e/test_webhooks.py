"""Webhooks end to end, with real processes: sandboxes driven through REST make lifecycle events, a real
HTTP receiver verifies every delivery with the `standardwebhooks` library and counts them, and the
webhooks service is SIGKILLed, or nats-server restarted, while deliveries are in flight.

Every time: every (event, endpoint) arrives; a repeat comes only with the same `webhook-id` (at least
once, never a second id for one event); the delivery log shows every delivery succeeded.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from corral_stack.stack import Stack
from corral_testing.stack import running_stack
from corral_testing.waiting import wait_for
from corral_testing.webhooks import Receiver

from .conftest import Rest

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ENV = {"CORRAL_WEBHOOKS_ALLOW_PRIVATE": "1", "CORRAL_WEBHOOKS_RETRY_SCALE": "0.001",
       "CORRAL_WEBHOOKS_DISABLE_AFTER": "1"}
"""Retries 1000 times sooner (5 ms, 300 ms, 1.8 s, ...); an endpoint failing every attempt for 1 s is disabled."""
LIFECYCLE = [("creating", "started"), ("started", "stopping"), ("stopping", "stopped"), ("stopped", "starting"),
             ("starting", "started"), ("started", "destroying"), ("destroying", "destroyed")]


@pytest.fixture(scope="module")
def hooks_stack() -> Iterator[Stack]:
    with running_stack(env=ENV) as stack:
        yield stack


@pytest.fixture
async def rest(hooks_stack: Stack) -> AsyncIterator[Rest]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield Rest(session, hooks_stack)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    try:
        yield started
    finally:
        await started.stop()
    assert not started.rejected, f"deliveries failed signature verification: {started.rejected}"


async def subscribe(rest: Rest, receiver: Receiver, path: str, **body: Any) -> dict[str, Any]:
    status, endpoint = await rest.call("POST", f"{rest.api}/webhooks/endpoints", json={"url": receiver.url(path),
                                                                                      **body})
    assert status == 200, endpoint
    receiver.secrets[path] = endpoint["secret"]
    return endpoint  # type: ignore[no-any-return]


async def lifecycle(rest: Rest, suite: str) -> str:
    """Create (waits for started), stop, start, delete: seven state changes."""
    return await finish(rest, await started(rest, suite))


async def started(rest: Rest, suite: str) -> str:
    sandbox = await rest.create(labels={"suite": suite})
    await rest.wait_state(sandbox["id"], "started")
    return str(sandbox["id"])


async def finish(rest: Rest, sid: str) -> str:
    """Stop, start, delete (no request of these needs NATS: they may run while nats-server restarts)."""
    for action, state in (("stop", "stopped"), ("start", "started")):
        status, body = await rest.call("POST", f"{rest.api}/sandbox/{sid}/{action}")
        assert status == 200, body
        await rest.wait_state(sid, state)
    await rest.delete(sid)
    await rest.wait_state(sid, "gone")
    return sid


def check_deliveries(receiver: Receiver, paths: list[str], sandboxes: list[str]) -> dict[str, int]:
    """Every expected event arrived at every path, each under one webhook-id. Returns repeats per path."""
    repeats = {}
    for path in paths:
        by_event: dict[tuple[str, ...], set[str]] = defaultdict(set)
        by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in receiver.at(path):
            p = r.payload
            by_event[(p["id"], p["event"], p.get("oldState", ""), p.get("newState", ""))].add(r.webhook_id)
            by_id[r.webhook_id].append(p)
        expected = {(sid, "sandbox.created", "", "") for sid in sandboxes} | {
            (sid, "sandbox.state.updated", old, new) for sid in sandboxes for old, new in LIFECYCLE}
        mine = {k: v for k, v in by_event.items() if k[0] in sandboxes}
        assert set(mine) == expected, f"{path}: missing {expected - set(mine)}, unexpected {set(mine) - expected}"
        assert all(len(ids) == 1 for ids in mine.values()), f"{path}: one event under two webhook-ids: {mine}"
        assert all(all(p == ps[0] for p in ps) for ps in by_id.values()), f"{path}: a repeat differs"
        repeats[path] = sum(len(ps) - 1 for ps in by_id.values())
    return repeats


async def all_succeeded(rest: Rest, endpoint: dict[str, Any], at_least: int) -> bool:
    status, log = await rest.call("GET", f"{rest.api}/webhooks/endpoints/{endpoint['id']}/deliveries",
                                  params={"limit": "200"})
    assert status == 200, log
    return len(log["items"]) >= at_least and all(d["status"] == "succeeded" for d in log["items"])


async def test_deliveries_survive_the_webhooks_service_killed_mid_burst(hooks_stack: Stack, rest: Rest,
                                                                       receiver: Receiver) -> None:
    endpoints = [await subscribe(rest, receiver, p) for p in ("kill-a", "kill-b")]
    await subscribe(rest, receiver, "kill-created", eventTypes=["sandbox.created"])
    receiver.gate.clear()  # deliveries arrive and are counted, but their answers wait
    burst = [asyncio.create_task(lifecycle(rest, "webhooks-kill")) for _ in range(2)]
    await wait_for(lambda: receiver.held >= 3, timeout=90, message="no deliveries in flight")
    hooks_stack.services["webhooks"].kill()
    receiver.gate.set()
    hooks_stack.services["webhooks"].start()
    await asyncio.to_thread(hooks_stack.wait_ready)
    sandboxes = list(await asyncio.gather(*burst))

    def arrived() -> bool:
        ids = {(r.path, r.payload["id"], r.payload["event"], r.payload.get("newState")) for r in receiver.received}
        return all((p, sid, "sandbox.state.updated", "destroyed") in ids for p in ("kill-a", "kill-b")
                   for sid in sandboxes)

    await wait_for(arrived, timeout=60, message="not every event arrived after the restart")
    repeats = check_deliveries(receiver, ["kill-a", "kill-b"], sandboxes)
    assert sum(repeats.values()) >= 1, "the answers lost with the killed process were never sent again"
    created = [r for r in receiver.at("kill-created") if r.payload["id"] in sandboxes]
    assert {r.payload["id"] for r in created} == set(sandboxes) and {r.payload["event"] for r in created} == {
        "sandbox.created"}
    for endpoint in endpoints:
        await wait_for(lambda: all_succeeded(rest, endpoint, 16), timeout=30, message="the delivery log disagrees")


async def test_deliveries_survive_nats_server_restarted_mid_burst(hooks_stack: Stack, rest: Rest,
                                                                  receiver: Receiver) -> None:
    endpoint = await subscribe(rest, receiver, "nats")
    created = [await started(rest, "webhooks-nats") for _ in range(2)]
    receiver.gate.clear()
    burst = [asyncio.create_task(finish(rest, sid)) for sid in created]
    await wait_for(lambda: receiver.held >= 1, timeout=90, message="no deliveries in flight")
    assert hooks_stack.nats is not None
    await asyncio.to_thread(hooks_stack.nats.restart)
    receiver.gate.set()
    sandboxes = list(await asyncio.gather(*burst))

    def arrived() -> bool:
        got = {(r.payload["id"], r.payload.get("newState")) for r in receiver.at("nats")}
        return all((sid, "destroyed") in got for sid in sandboxes)

    await wait_for(arrived, timeout=60, message="not every event arrived after nats-server restarted")
    check_deliveries(receiver, ["nats"], sandboxes)
    await wait_for(lambda: all_succeeded(rest, endpoint, 16), timeout=30, message="the delivery log disagrees")


async def test_a_failing_receiver_is_retried_as_the_delivery_log_shows(rest: Rest, receiver: Receiver) -> None:
    endpoint = await subscribe(rest, receiver, "flaky")
    receiver.statuses["flaky"] = lambda n: 500 if n < 3 else 200
    status, test = await rest.call("POST", f"{rest.api}/webhooks/endpoints/{endpoint['id']}/test")
    assert status == 200, test
    url = f"{rest.api}/webhooks/endpoints/{endpoint['id']}/deliveries/{test['id']}"

    async def succeeded() -> dict[str, Any] | None:
        status, delivery = await rest.call("GET", url)
        assert status == 200, delivery
        return delivery if delivery["status"] == "succeeded" else None

    delivery = await wait_for(succeeded, timeout=30, message="the flaky receiver never got it")
    assert [(a["statusCode"], a["succeeded"]) for a in delivery["attempts"]] == [(500, False), (500, False),
                                                                                 (200, True)]
    assert [r.webhook_id for r in receiver.at("flaky")] == [test["id"]] * 3


async def test_an_endpoint_that_keeps_failing_is_disabled_and_the_api_says_why(rest: Rest, receiver: Receiver) -> None:
    endpoint = await subscribe(rest, receiver, "down")
    receiver.statuses["down"] = lambda n: 500
    url = f"{rest.api}/webhooks/endpoints/{endpoint['id']}"
    status, test = await rest.call("POST", url + "/test")
    assert status == 200, test

    async def disabled() -> dict[str, Any] | None:
        status, body = await rest.call("GET", url)
        assert status == 200, body
        return body if not body["enabled"] else None

    got = await wait_for(disabled, timeout=30, message="the failing endpoint was never disabled")
    assert "every delivery attempt failed since" in got["disabledReason"] and "HTTP 500" in got["disabledReason"]
    assert got["failingSince"] <= got["disabledAt"]

    async def ended() -> dict[str, Any] | None:
        status, log = await rest.call("GET", url + "/deliveries")
        assert status == 200, log
        return log["items"][0] if log["items"][0]["status"] == "failed" else None

    delivery = await wait_for(ended, timeout=30, message="the pending delivery did not end with its endpoint")
    assert len(delivery["attempts"]) >= 3 and "disabled by the platform" in delivery["failure"]


async def test_snapshot_and_volume_changes_are_delivered(hooks_stack: Stack, rest: Rest, receiver: Receiver) -> None:
    """The snapshot and volume events of daytona-platform.md §16, from real REST calls to a verifying receiver."""
    await subscribe(rest, receiver, "storage", eventTypes=["snapshot.created", "snapshot.state.updated",
                                                           "snapshot.removed", "volume.created",
                                                           "volume.state.updated"])
    run = hooks_stack.config.container_labels["corral.test-run"]
    status, volume = await rest.call("POST", f"{rest.api}/volumes", json={"name": f"hooks-{run}"})
    assert status == 200, volume
    status, snapshot = await rest.call("POST", f"{rest.api}/snapshots",
                                       json={"name": f"hooks-{run}", "imageName": hooks_stack.sandbox_image})
    assert status == 200, snapshot

    async def settled(kind: str, resource: dict[str, Any], state: str) -> bool:
        status, body = await rest.call("GET", f"{rest.api}/{kind}/{resource['id']}")
        assert status == 200 and body["state"] not in ("error", "build_failed"), body
        return bool(body["state"] == state)

    await wait_for(lambda: settled("volumes", volume, "ready"), timeout=60, message="the volume never got ready")
    await wait_for(lambda: settled("snapshots", snapshot, "active"), timeout=120, message="the snapshot never got active")
    for kind, resource in (("snapshots", snapshot), ("volumes", volume)):
        status, body = await rest.call("DELETE", f"{rest.api}/{kind}/{resource['id']}")
        assert status in (200, 204), body

    def events() -> dict[str, list[dict[str, Any]]]:
        seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in receiver.at("storage"):
            if r.payload["id"] in (snapshot["id"], volume["id"]):
                seen[r.payload["event"]].append(r.payload)
        return seen

    def complete() -> bool:
        seen = events()
        return bool(seen["snapshot.removed"]) and any(p["newState"] == "deleted" for p in seen["volume.state.updated"])

    await wait_for(complete, timeout=60, message=f"not every storage event arrived: {dict(events())}")
    seen = events()
    assert [p["name"] for p in seen["snapshot.created"]] == [snapshot["name"]]
    assert [p["name"] for p in seen["volume.created"]] == [volume["name"]]
    assert any(p["newState"] == "active" for p in seen["snapshot.state.updated"])
    assert any(p["oldState"] != p["newState"] == "ready" for p in seen["volume.state.updated"])
    removed = seen["snapshot.removed"][0]
    assert removed["organizationId"] == snapshot["organizationId"] and removed["removedAt"]
