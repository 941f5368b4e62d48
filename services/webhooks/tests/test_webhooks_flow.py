"""Webhooks through both services' composition roots: the REST API of endpoints, lifecycle events signed
and delivered to a real receiver, retries in the delivery log, disabling, test sends and replays."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook

from corral_contracts import runner as rc
from corral_testing.waiting import wait_for

from webhooks_harness import AUTH, OTHER, Platform

pytestmark = pytest.mark.asyncio


async def test_endpoints_are_managed_per_organization_and_bad_input_is_a_json_4xx(platform: Platform) -> None:
    created = await platform.endpoint("crud", description="mine", eventTypes=["sandbox.created"])
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    assert created["eventTypes"] == ["sandbox.created"] and created["disabledReason"] is None
    one = f"/api/webhooks/endpoints/{created['id']}"

    status, listed = await platform.call("GET", "/api/webhooks/endpoints")
    assert status == 200 and [e["id"] for e in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0], "the list never shows secrets"
    status, got = await platform.call("GET", one)
    assert status == 200 and got["secret"] == created["secret"]

    for method, path in (("GET", one), ("PATCH", one), ("DELETE", one), ("POST", one + "/secret/rotate"),
                         ("POST", one + "/test"), ("GET", one + "/deliveries")):
        status, body = await platform.call(method, path, headers=OTHER,
                                           json={"description": "x"} if method == "PATCH" else None)
        assert status == 404 and body["code"] == "NOT_FOUND", (method, path, body)
    status, others = await platform.call("GET", "/api/webhooks/endpoints", headers=OTHER)
    assert status == 200 and others["items"] == []

    status, updated = await platform.call("PATCH", one, json={"eventTypes": [], "description": "all"})
    assert status == 200 and updated["eventTypes"] == [] and updated["description"] == "all"
    status, rotated = await platform.call("POST", one + "/secret/rotate")
    assert status == 200 and rotated["secret"] != created["secret"] and rotated["secret"].startswith("whsec_")
    assert rotated["previousSecretExpiresAt"] > rotated["updatedAt"]
    status, rotated = await platform.call("POST", one + "/secret/rotate", json={"previousSecretValidFor": 0})
    assert status == 200 and rotated["previousSecretExpiresAt"] is None

    bad = [
        ("POST", "/api/webhooks/endpoints", {"url": "ftp://example.com/hook"}),
        ("POST", "/api/webhooks/endpoints", {"url": "http://"}),
        ("POST", "/api/webhooks/endpoints", {"url": platform.receiver.url("x"), "eventTypes": ["sandbox.exploded"]}),
        ("POST", "/api/webhooks/endpoints", {"url": 42}),
        ("POST", "/api/webhooks/endpoints", {"url": platform.receiver.url("x"), "colour": "red"}),
        ("POST", "/api/webhooks/endpoints", None),
        ("PATCH", one, {"url": "not a url"}),
        ("POST", one + "/test", {"eventType": "nope"}),
        ("POST", one + "/secret/rotate", {"previousSecretValidFor": -5}),
        ("POST", one + "/replay", {"since": "yesterday"}),
        ("POST", one + "/replay", {}),
        ("GET", one + "/deliveries?limit=0", None),
        ("GET", one + "/deliveries?since=now", None),
        ("GET", one + "/deliveries?status=lost", None),
    ]
    for method, path, body in bad:
        status, answer = await platform.call(method, path, json=body)
        assert status == 400 and answer["statusCode"] == 400 and answer["code"], (method, path, body, answer)
    status, answer = await platform.call("GET", "/api/webhooks/endpoints/not-a-uuid")
    assert status == 404 and answer["code"] == "NOT_FOUND"

    assert (await platform.call("DELETE", one))[0] == 204
    assert (await platform.call("GET", one))[0] == 404
    assert (await platform.call("DELETE", one))[0] == 404
    status, types = await platform.call("GET", "/api/webhooks/event-types")
    assert status == 200 and {t["name"] for t in types["items"]} >= {"sandbox.created", "sandbox.state.updated",
                                                                      "snapshot.created", "volume.state.updated"}


@pytest.mark.parametrize("platform", [{"allow_private": False}], indirect=True)
async def test_private_and_metadata_addresses_are_refused_unless_allowed(platform: Platform) -> None:
    for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.0.0.8/", "http://[::1]/x",
                "http://169.254.169.254/latest/meta-data", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/"):
        status, body = await platform.call("POST", "/api/webhooks/endpoints", json={"url": url})
        assert status == 400 and "refused" in body["message"], (url, body)
    assert (await platform.call("GET", "/api/webhooks/endpoints"))[1]["items"] == []


async def sandbox_lifecycle(platform: Platform) -> str:
    """Create, start (runner fact), stop, stopped, delete, removed: through REST and reported facts."""
    status, sandbox = await platform.call("POST", "/api/sandbox", json={})
    assert status == 200, sandbox
    sid = sandbox["id"]

    async def state(wanted: str) -> bool:
        return (await platform.call("GET", f"/api/sandbox/{sid}"))[1].get("state") == wanted

    await platform.report(rc.SandboxContainerStarted(runner_id="r1", sandbox_id=sid, container_id="c1"))
    await wait_for(lambda: state("started"), message="never started")
    assert (await platform.call("POST", f"/api/sandbox/{sid}/stop"))[0] == 200
    await platform.report(rc.SandboxContainerStopped(runner_id="r1", sandbox_id=sid, exit_code=0))
    await wait_for(lambda: state("stopped"), message="never stopped")
    assert (await platform.call("DELETE", f"/api/sandbox/{sid}"))[0] == 200
    await platform.report(rc.SandboxContainerRemoved(runner_id="r1", sandbox_id=sid))
    return sid


LIFECYCLE = [("creating", "started"), ("started", "stopping"), ("stopping", "stopped"), ("stopped", "destroying"),
             ("destroying", "destroyed")]


async def test_lifecycle_events_reach_subscribed_endpoints_signed_with_their_cause(platform: Platform) -> None:
    everything = await platform.endpoint("all")
    await platform.endpoint("created-only", eventTypes=["sandbox.created"])
    sid = await sandbox_lifecycle(platform)
    receiver = platform.receiver

    def states(path: str) -> list[tuple[str, str]]:
        return [(r.payload["oldState"], r.payload["newState"]) for r in receiver.unique(path).values()
                if r.payload["event"] == "sandbox.state.updated" and r.payload["id"] == sid]

    await wait_for(lambda: states("all") == LIFECYCLE, timeout=10, message=f"lifecycle not delivered: {states('all')}")
    created = [r.payload for r in receiver.unique("all").values() if r.payload["event"] == "sandbox.created"]
    assert len(created) == 1 and created[0]["id"] == sid and created[0]["state"] == "creating"
    assert created[0]["sandboxClass"] == "container" and created[0]["organizationId"] == everything["organizationId"]
    assert created[0]["timestamp"].endswith("Z") and created[0]["createdAt"] == created[0]["timestamp"]
    assert created[0]["cause"]["kind"] == "user" and created[0]["cause"]["actor"] == AUTH["Authorization"][7:15]

    by_transition = {(r.payload["oldState"], r.payload["newState"]): r.payload for r in receiver.unique("all").values()
                     if r.payload["event"] == "sandbox.state.updated"}
    started = by_transition[("creating", "started")]
    assert started["cause"] == {"kind": "user", "reason": "created", "actor": AUTH["Authorization"][7:15],
                                "observedBy": "runner:r1"}, "the runner completed what the user asked"
    assert by_transition[("started", "stopping")]["cause"]["reason"] == "user"
    assert set(started) == {"event", "timestamp", "id", "organizationId", "oldState", "newState", "updatedAt", "cause"}

    await wait_for(lambda: len(receiver.unique("created-only")) == 1, message="the filtered endpoint got nothing")
    assert [r.payload["event"] for r in receiver.at("created-only")] == ["sandbox.created"]
    assert len({r.webhook_id for r in receiver.at("all")}) == 6

    async def all_succeeded() -> dict | None:  # type: ignore[type-arg]
        status, log = await platform.call("GET", f"/api/webhooks/endpoints/{everything['id']}/deliveries")
        assert status == 200 and len(log["items"]) == 6, log
        return log if all(d["status"] == "succeeded" for d in log["items"]) else None

    log = await wait_for(all_succeeded, message="the delivery log never showed every delivery succeeded")
    newest = log["items"][0]
    assert newest["payload"]["newState"] == "destroyed" and newest["id"].startswith("msg_")
    attempt = newest["attempts"][0]
    assert attempt["statusCode"] == 200 and attempt["succeeded"] and attempt["responseExcerpt"] == "answered 200"
    assert attempt["latencyMs"] > 0 and attempt["url"] == platform.receiver.url("all")
    page = await platform.call("GET", f"/api/webhooks/endpoints/{everything['id']}/deliveries?limit=4")
    assert [d["id"] for d in page[1]["items"]] == [d["id"] for d in log["items"][:4]]
    rest = await platform.call("GET", f"/api/webhooks/endpoints/{everything['id']}/deliveries?limit=4&cursor="
                                      f"{page[1]['nextCursor']}")
    assert [d["id"] for d in rest[1]["items"]] == [d["id"] for d in log["items"][4:]] and rest[1]["nextCursor"] is None


async def test_a_failing_receiver_is_retried_with_the_same_webhook_id(platform: Platform) -> None:
    endpoint = await platform.endpoint("flaky")
    platform.receiver.statuses["flaky"] = lambda n: 500 if n <= 2 else 204
    status, test = await platform.call("POST", f"/api/webhooks/endpoints/{endpoint['id']}/test",
                                       json={"eventType": "sandbox.state.updated"})
    assert status == 200 and test["test"] is True and test["eventType"] == "sandbox.state.updated"
    one = f"/api/webhooks/endpoints/{endpoint['id']}/deliveries/{test['id']}"

    async def succeeded() -> dict | None:  # type: ignore[type-arg]
        status, delivery = await platform.call("GET", one)
        return delivery if status == 200 and delivery["status"] == "succeeded" else None

    delivery = await wait_for(succeeded, timeout=10, message="never succeeded")
    assert [(a["attempt"], a["statusCode"], a["succeeded"]) for a in delivery["attempts"]] == [
        (1, 500, False), (2, 500, False), (3, 204, True)]
    arrivals = platform.receiver.at("flaky")
    assert len(arrivals) == 3 and {r.webhook_id for r in arrivals} == {test["id"]}
    assert arrivals[0].payload["test"] is True and arrivals[0].payload["newState"] == "stopped"
    gaps = [(datetime.fromisoformat(b["at"]) - datetime.fromisoformat(a["at"])).total_seconds()
            for a, b in zip(delivery["attempts"], delivery["attempts"][1:])]
    assert gaps[0] < gaps[1], f"the retries back off: {gaps}"


@pytest.mark.parametrize("platform", [{"disable_after": 0.03, "retry_scale": 0.01}], indirect=True)
async def test_an_endpoint_failing_long_enough_is_disabled_and_says_why(platform: Platform) -> None:
    endpoint = await platform.endpoint("down")
    platform.receiver.statuses["down"] = lambda n: 503
    one = f"/api/webhooks/endpoints/{endpoint['id']}"
    assert (await platform.call("POST", one + "/test"))[0] == 200

    async def disabled() -> dict | None:  # type: ignore[type-arg]
        status, body = await platform.call("GET", one)
        return body if status == 200 and not body["enabled"] else None

    got = await wait_for(disabled, timeout=15, message="the failing endpoint was never disabled")
    assert "every delivery attempt failed since" in got["disabledReason"] and "HTTP 503" in got["disabledReason"]
    assert got["disabledAt"] and got["failingSince"] and got["failingSince"] <= got["disabledAt"]

    async def ended() -> dict | None:  # type: ignore[type-arg]
        status, log = await platform.call("GET", one + "/deliveries")
        return log["items"][0] if log["items"][0]["status"] == "failed" else None

    delivery = await wait_for(ended, timeout=2, message="the pending delivery (next retry in 3 s) did not end when "
                                                        "its endpoint was disabled")
    assert "the endpoint was disabled by the platform" in delivery["failure"]
    assert delivery["nextAttemptAt"] is None
    status, body = await platform.call("POST", one + "/test")
    assert status == 409 and body["code"] == "INVALID_STATE"
    platform.receiver.statuses["down"] = lambda n: 200
    status, enabled = await platform.call("PATCH", one, json={"enabled": True})
    assert status == 200 and enabled["enabled"] and enabled["disabledReason"] is None
    status, test = await platform.call("POST", one + "/test")
    assert status == 200
    await wait_for(lambda: platform.receiver.unique("down").get(test["id"]), message="not delivered once re-enabled")


async def test_replays_send_again_with_the_same_webhook_id(platform: Platform) -> None:
    endpoint = await platform.endpoint("replay")
    base = f"/api/webhooks/endpoints/{endpoint['id']}"
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    ids = []
    for _ in range(3):
        status, test = await platform.call("POST", base + "/test")
        assert status == 200
        ids.append(test["id"])
    await wait_for(lambda: len(platform.receiver.at("replay")) == 3, message="tests not delivered")

    status, replayed = await platform.call("POST", f"{base}/deliveries/{ids[0]}/replay")
    assert status == 200 and replayed == {"replayed": 1, "deliveryIds": [ids[0]]}
    await wait_for(lambda: len(platform.receiver.at("replay")) == 4, message="replay not delivered")
    assert platform.receiver.at("replay")[-1].webhook_id == ids[0]

    status, replayed = await platform.call("POST", base + "/replay", json={"since": before.isoformat()})
    assert status == 200 and sorted(replayed["deliveryIds"]) == sorted(ids)
    await wait_for(lambda: len(platform.receiver.at("replay")) == 7, message="replay since not delivered")
    status, none = await platform.call("POST", base + "/replay", json={"since": before.isoformat(), "failedOnly": True})
    assert status == 200 and none["replayed"] == 0
    status, delivery = await platform.call("GET", f"{base}/deliveries/{ids[0]}")
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3]
    status, missing = await platform.call("POST", f"{base}/deliveries/msg_nope/replay")
    assert status == 404 and missing["code"] == "NOT_FOUND"


async def test_after_a_rotation_receivers_verify_with_the_old_or_the_new_secret(platform: Platform) -> None:
    endpoint = await platform.endpoint("rotate")
    one = f"/api/webhooks/endpoints/{endpoint['id']}"
    status, rotated = await platform.call("POST", one + "/secret/rotate")
    assert status == 200
    status, test = await platform.call("POST", one + "/test")
    assert status == 200
    await wait_for(lambda: platform.receiver.unique("rotate").get(test["id"]), message="not delivered")
    arrived = platform.receiver.unique("rotate")[test["id"]]
    assert len(arrived.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], rotated["secret"]):
        assert Webhook(secret).verify(arrived.body, arrived.headers) == arrived.payload
    status, rotated = await platform.call("POST", one + "/secret/rotate", json={"previousSecretValidFor": 0})
    platform.receiver.secrets["rotate"] = rotated["secret"]
    status, test = await platform.call("POST", one + "/test")
    await wait_for(lambda: platform.receiver.unique("rotate").get(test["id"]), message="not delivered")
    assert len(platform.receiver.unique("rotate")[test["id"]].headers["webhook-signature"].split(" ")) == 1
