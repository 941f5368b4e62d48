"""Organizations, API keys and permissions through the real api (in-process, `bootstrap.build()`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from api_harness import ADMIN, running_api

from corral_api.domain.identity import PERMISSIONS
from corral_api.entrypoints.access import classification
from corral_api.entrypoints.http import ROUTES
from corral_api.domain.identity import CLASSIFICATIONS
from corral_contracts import identity as idev
from corral_eventstore import iter_all


def test_every_route_has_a_permission_classification() -> None:
    """Other routes are being added: each must say who may call it (one `permission=` on its Route)."""
    unclassified = [f"{r.method} {r.path}" for r in ROUTES if classification(r) not in CLASSIFICATIONS]
    assert not unclassified, f"classify these routes (permission=...): {unclassified}"
    assert {r.rate for r in ROUTES} <= {None, "sandbox-create", "sandbox-lifecycle"}


async def test_an_operator_creates_organizations_whose_first_key_is_shown_once() -> None:
    async with running_api() as api:
        org, key = await api.organization("acme")
        assert key.startswith("crl_") and len(key) == 68 and org["apiKey"]["permissions"] == list(PERMISSIONS)
        status, current, _ = await api.call("GET", "/api/api-keys/current", key)
        assert status == 200 and current["organizationId"] == org["id"] and current["name"] == "default"
        assert current["value"] == f"{key[:8]}...{key[-4:]}"
        status, listed, _ = await api.call("GET", "/api/api-keys", key)
        assert [k["name"] for k in listed] == ["default"] and key not in str(listed)
        assert (await api.call("POST", "/api/organizations", json={"name": "ACME"}))[0] == 409
        status, body, _ = await api.call("POST", "/api/organizations", key, json={"name": "other"})
        assert status == 403 and body["code"] == "FORBIDDEN"
        status, orgs, _ = await api.call("GET", "/api/organizations", key)
        assert [o["id"] for o in orgs] == [org["id"]]
        status, orgs, _ = await api.call("GET", "/api/organizations")
        assert {o["name"] for o in orgs} == {"default", "acme"}
        for bad in ({}, {"name": ""}, {"name": "x" * 80}, {"name": 3}, {"name": "-lead"}):
            status, body, _ = await api.call("POST", "/api/organizations", json=bad)
            assert status == 400 and body["statusCode"] == 400, (bad, body)
        # no key value reaches the event log: only hashes
        events = [e for _, e in iter_all(api.api.event_log)]
        assert key not in repr(events) and ADMIN not in repr(events)
        assert any(isinstance(e.payload, idev.ApiKeyCreated) and e.payload.key_hash for e in events)


async def test_another_organizations_resources_are_404_never_403() -> None:
    async with running_api() as api:
        a_org, a = await api.organization()
        b_org, b = await api.organization()
        sandbox = await api.create(a, name="same-name")
        assert (await api.create(b, name="same-name"))["id"] != sandbox["id"], "names are per organization"
        for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/start"), ("POST", "/stop"), ("PUT", "/labels"),
                             ("GET", "/events"), ("GET", "/signing-key"), ("POST", "/autostop/5")):
            status, body, _ = await api.call(method, f"/api/sandbox/{sandbox['id']}{path}", b, json={"labels": {}})
            assert status == 404 and body["code"] == "NOT_FOUND", (method, path, body)
        status, body, _ = await api.call("GET", f"/api/organizations/{a_org['id']}", b)
        assert status == 404
        status, body, _ = await api.call("GET", f"/api/audit/organizations/{a_org['id']}", b)
        assert status == 404
        status, listed, _ = await api.call("GET", "/api/sandbox", b)
        assert sandbox["id"] not in {s["id"] for s in listed["items"]}
        status, body, _ = await api.call("GET", f"/api/sandbox/{sandbox['id']}", a)
        assert status == 200 and body["state"] != "destroyed"


async def test_permissions_are_enforced_and_never_escalated() -> None:
    async with running_api() as api:
        _, owner = await api.organization()
        reader = await api.key(owner, "reader", [])
        writer = await api.key(owner, "writer", ["write:sandboxes"])
        status, body, _ = await api.call("POST", "/api/sandbox", reader, json={})
        assert status == 403 and "write:sandboxes" in body["message"]
        sandbox = await api.create(writer)
        assert (await api.call("GET", f"/api/sandbox/{sandbox['id']}", reader))[0] == 200
        status, body, _ = await api.call("DELETE", f"/api/sandbox/{sandbox['id']}", writer)
        assert status == 403 and "delete:sandboxes" in body["message"]
        assert (await api.call("GET", "/api/audit", writer))[0] == 403
        status, body, _ = await api.call("POST", "/api/api-keys", writer,
                                         json={"name": "escalate", "permissions": ["delete:sandboxes"]})
        assert status == 403 and "cannot grant" in body["message"]
        status, body, _ = await api.call("POST", "/api/api-keys", writer, json={"name": "x", "permissions": ["root"]})
        assert status == 400 and "permissions" in body["message"]
        assert (await api.call("POST", "/api/api-keys", writer, json={"name": "reader"}))[0] == 409
        assert (await api.call("POST", "/api/api-keys", writer, json={"name": "current"}))[0] == 409
        # a weaker key cannot revoke a stronger one; a key may revoke itself
        status, body, _ = await api.call("DELETE", "/api/api-keys/writer", reader)
        assert status == 403
        assert (await api.call("DELETE", "/api/api-keys/reader", reader))[0] == 204
        status, body, _ = await api.call("GET", "/api/sandbox", reader)
        assert status == 401 and body["code"] == "UNAUTHORIZED"
        # the name is free again once revoked
        await api.key(owner, "reader", [])


async def test_revoked_and_expired_keys_are_refused() -> None:
    async with running_api() as api:
        _, owner = await api.organization()
        soon = datetime.now(timezone.utc) + timedelta(minutes=5)
        temp = await api.key(owner, "temp", ["write:sandboxes"], expiresAt=soon.isoformat())
        status, body, _ = await api.call("GET", "/api/api-keys/temp", owner)
        assert status == 200 and body["expiresAt"] is not None
        # a key cannot outlive the key that creates it, nor create one that never expires
        later = (soon + timedelta(days=1)).isoformat()
        assert (await api.call("POST", "/api/api-keys", temp, json={"name": "t2", "expiresAt": later}))[0] == 403
        status, child, _ = await api.call("POST", "/api/api-keys", temp, json={"name": "t3"})
        assert status == 201 and child["expiresAt"] is not None
        past = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
        assert (await api.call("POST", "/api/api-keys", owner, json={"name": "t4", "expiresAt": past}))[0] == 400
        assert (await api.call("GET", "/api/sandbox", temp))[0] == 200
        api.api.access.now = lambda: soon + timedelta(seconds=1)
        status, body, _ = await api.call("GET", "/api/sandbox", temp)
        assert status == 401
        assert (await api.call("GET", "/api/sandbox", owner))[0] == 200


async def test_last_use_is_recorded_coarsely() -> None:
    async with running_api() as api:
        _, owner = await api.organization()
        for _ in range(20):
            assert (await api.call("GET", "/api/sandbox", owner))[0] == 200
        await api.api.identity.drain()
        used = [e for _, e in iter_all(api.api.event_log) if isinstance(e.payload, idev.ApiKeyUsed)]
        owner_uses = [e for e in used if e.payload.key_id == api.api.directory.identity.names[
            (next(o for o in api.api.directory.identity.organizations.values() if o.name != "default").id,
             "default")].key_id]
        assert len(owner_uses) == 1
        status, body, _ = await api.call("GET", "/api/api-keys/current", owner)
        assert body["lastUsedAt"] is not None


async def test_a_suspended_organization_may_only_read() -> None:
    async with running_api() as api:
        org, key = await api.organization()
        sandbox = await api.create(key)
        status, body, _ = await api.call("POST", f"/api/organizations/{org['id']}/suspend", json={"reason": "unpaid"})
        assert status == 200 and body["suspended"] and body["suspensionReason"] == "unpaid"
        status, body, _ = await api.call("POST", "/api/sandbox", key, json={})
        assert status == 403 and body["code"] == "ORGANIZATION_SUSPENDED"
        assert (await api.call("POST", f"/api/sandbox/{sandbox['id']}/stop", key))[0] == 403
        assert (await api.call("GET", f"/api/sandbox/{sandbox['id']}", key))[0] == 200
        assert (await api.call("POST", f"/api/organizations/{org['id']}/unsuspend"))[0] == 200
        assert (await api.call("POST", f"/api/sandbox/{sandbox['id']}/stop", key))[0] == 200


async def test_rate_limits_answer_429_with_their_headers() -> None:
    async with running_api(rate_limit_failed_auth=3) as api:
        org, key = await api.organization(rateLimitAuthenticated=3, rateLimitSandboxCreate=1)
        status, _, headers = await api.call("GET", "/api/sandbox", key)
        assert status == 200
        assert headers["X-RateLimit-Limit-authenticated"] == "3"
        assert headers["X-RateLimit-Remaining-authenticated"] == "2"
        assert 0 < int(headers["X-RateLimit-Reset-authenticated"]) <= 60
        status, _, headers = await api.call("POST", "/api/sandbox", key, json={})
        assert status == 200 and headers["X-RateLimit-Remaining-sandbox-create"] == "0"
        status, body, headers = await api.call("POST", "/api/sandbox", key, json={})
        assert status == 429 and body["code"] == "TOO_MANY_REQUESTS" and "sandbox-create" in body["message"]
        assert headers["X-RateLimit-Remaining-sandbox-create"] == "0" and int(headers["Retry-After"]) > 0
        status, body, headers = await api.call("GET", "/api/sandbox", key)
        assert status == 429 and headers["X-RateLimit-Remaining-authenticated"] == "0"
        assert (await api.call("GET", "/api/sandbox"))[0] == 200, "another organization has its own allowance"
        codes = [(await api.call("GET", "/api/sandbox", "crl_wrong"))[0] for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        status, _, headers = await api.call("GET", "/api/health", None)
        assert status == 200 and "X-RateLimit-Limit-anonymous" in headers


async def test_the_operator_key_is_the_configured_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from corral_contracts.codecs import RecordedEvent
    from corral_eventstore import EventLog

    url = f"sqlite:///{tmp_path / 'events.db'}"
    async with running_api(EventLog(RecordedEvent, url)) as api:
        status, body, _ = await api.call("DELETE", "/api/api-keys/current")
        assert status == 403 and "operator" in body["message"]
        assert (await api.call("GET", "/api/organizations"))[0] == 200
    replaced = "crl_" + "c" * 64
    async with running_api(EventLog(RecordedEvent, url), admin_api_key=replaced) as api:
        assert (await api.call("GET", "/api/organizations", replaced))[0] == 200
        assert (await api.call("GET", "/api/organizations", ADMIN))[0] == 401, "the previous admin key is revoked"
