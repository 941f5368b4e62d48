"""The audit log: one event per mutating call (answered, failed or refused), secrets masked, served with
filters and pages to its own organization only, within retention, and rebuilt from the log."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from api_harness import ADMIN, running_api

from corral_api.app.replay import rebuild
from corral_api.domain.audit import AuditQuery, action, mask, parse_query, target_type
from corral_api.domain.errors import InvalidRequest


def test_masking_hides_secrets_and_env_values_but_keeps_the_shape() -> None:
    body = {"name": "x", "env": {"DB_PASSWORD": "hunter2", "MODE": "prod"}, "labels": {"team": "a"},
            "gitPassword": "pw", "auth": {"token": "t0k", "user": "u"}, "note": "crl_" + "b" * 64,
            "items": [{"apiKey": "k"}], "long": "y" * 5000, "big": 10**30}
    masked = mask(body)
    assert masked["env"] == {"DB_PASSWORD": "********", "MODE": "********"}
    assert masked["labels"] == {"team": "a"} and masked["name"] == "x"
    assert masked["gitPassword"] == masked["auth"]["token"] == masked["note"] == masked["items"][0]["apiKey"] == "********"
    assert masked["auth"]["user"] == "u" and len(masked["long"]) < 600 and masked["big"] == str(10**30)
    assert "hunter2" not in repr(masked) and "prod" not in repr(masked)


def test_actions_and_target_types_come_from_the_route() -> None:
    assert action("POST", "/api/sandbox") == "create"
    assert action("DELETE", "/api/sandbox/{id}") == "delete"
    assert action("POST", "/api/sandbox/{id}/start") == "start"
    assert action("POST", "/api/sandbox/{id}/ssh-access") == "ssh_access"
    assert action("PUT", "/api/sandbox/{id}/network-settings") == "update_network_settings"
    assert action("POST", "/api/volumes") == "create"
    assert target_type("/api/sandbox/{id}/start") == "sandbox"
    assert target_type("/api/snapshots/{id}") == "snapshot"
    assert target_type("/api/webhooks") == "webhook"
    assert target_type("/api/api-keys/{name}") == "api_key"


def test_bad_queries_are_refused() -> None:
    for pairs in ([("from", "yesterday")], [("page", "0")], [("limit", "5000")], [("status", "abc")],
                  [("nextToken", "!!!")], [("page", "x")]):
        with pytest.raises(InvalidRequest):
            q = parse_query(pairs)
            if q.next_token:
                from corral_api.domain.audit import decode_token
                decode_token(q.next_token, q)
    assert parse_query([("status", "4xx"), ("limit", "5")]) == AuditQuery(status="4xx", limit=5)


async def test_every_mutating_call_is_audited_with_masked_metadata() -> None:
    async with running_api() as api:
        org, key = await api.organization()
        headers = {"X-Daytona-Source": "sdk-python", "X-Daytona-SDK-Version": "0.226.1", "User-Agent": "sdk-python/0.226.1"}
        status, sandbox, _ = await api.call("POST", "/api/sandbox", key, headers=headers,
                                            json={"env": {"OPENAI_API_KEY": "sk-secret"}, "labels": {"a": "b"}})
        assert status == 200
        await api.call("PUT", f"/api/sandbox/{sandbox['id']}/labels", key, json={"labels": {"c": "d"}})
        await api.call("POST", f"/api/sandbox/{sandbox['id']}/autostop/7", key)
        await api.call("POST", f"/api/sandbox/{sandbox['id']}/resize", key, json={"cpu": 99})
        await api.call("POST", "/api/api-keys", key, json={"name": "ci", "permissions": ["write:sandboxes"]})
        await api.call("GET", f"/api/sandbox/{sandbox['id']}", key)  # a read: not audited
        await api.call("POST", "/api/sandbox", "crl_not-a-key", json={})  # refused: audited, no organization
        status, page, _ = await api.call("GET", "/api/audit", key)
        assert status == 200 and page["total"] == 5 and page["page"] == 1 and page["nextToken"] is None
        actions = [(e["action"], e["targetType"], e["statusCode"]) for e in page["items"]]
        assert actions == [("create", "api_key", 201), ("resize", "sandbox", 403),
                           ("set_auto_stop_interval", "sandbox", 200), ("replace_labels", "sandbox", 200),
                           ("create", "sandbox", 200)], actions
        create = page["items"][-1]
        assert create["targetId"] == sandbox["id"] and create["organizationId"] == org["id"]
        assert create["actorApiKeyPrefix"] == key[:8] and create["actorApiKeySuffix"] == key[-4:]
        assert create["actorName"] == "default" and create["source"] == "sdk-python"
        assert create["userAgent"] == "sdk-python/0.226.1" and create["sdkVersion"] == "0.226.1"
        assert create["ipAddress"] == "127.0.0.1" and create["path"] == "/api/sandbox"
        assert create["metadata"]["body"]["env"] == {"OPENAI_API_KEY": "********"}
        assert "sk-secret" not in str(page) and "sk-secret" not in repr(list(api.api.directory.audit.by_organization))
        resize = page["items"][1]
        assert resize["errorMessage"] and "exceeds the maximum" in resize["errorMessage"]
        assert page["items"][0]["targetId"] == "ci"
        assert "value" not in page["items"][0]["metadata"].get("body", {})
        # the refused call is in no organization's trail but the operator's view of all
        status, everything, _ = await api.call("GET", "/api/audit", params={"organizationId": "all", "status": "401"})
        assert status == 200 and everything["total"] == 1 and everything["items"][0]["organizationId"] == ""
        assert (await api.call("GET", "/api/audit", key, params={"organizationId": "all"}))[0] == 404


async def test_filters_pages_and_stable_next_tokens() -> None:
    async with running_api() as api:
        _, key = await api.organization()
        sandboxes = [await api.create(key, labels={"i": str(i)}) for i in range(3)]
        for s in sandboxes:
            await api.call("POST", f"/api/sandbox/{s['id']}/autostop/5", key)
        await api.call("DELETE", "/api/sandbox/no-such", key)

        async def audit(**params: str) -> dict:  # type: ignore[type-arg]
            status, body, _ = await api.call("GET", "/api/audit", key, params=params)
            assert status == 200, body
            return body  # type: ignore[no-any-return]

        assert (await audit(action="create"))["total"] == 3
        assert (await audit(status="404"))["total"] == 1 and (await audit(status="2xx"))["total"] == 6
        assert (await audit(targetId=sandboxes[1]["id"]))["total"] == 2
        assert (await audit(actor="default"))["total"] == 7 and (await audit(actor=key[:8]))["total"] == 7
        assert (await audit(actor="someone-else"))["total"] == 0
        future = (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat()
        assert (await audit(**{"from": future}))["total"] == 0 and (await audit(to=future))["total"] == 7
        page1 = await audit(limit="3")
        page3 = await audit(limit="3", page="3")
        assert page1["totalPages"] == 3 and len(page3["items"]) == 1 and page1["nextToken"]
        # a new entry between two pages shifts page numbers, never the next token's continuation
        await api.call("POST", f"/api/sandbox/{sandboxes[0]['id']}/autostop/9", key)
        page2 = await audit(limit="3", nextToken=page1["nextToken"])
        seen = [e["id"] for e in page1["items"] + page2["items"]]
        assert len(set(seen)) == 6
        rest = await audit(limit="3", nextToken=page2["nextToken"])
        assert len(rest["items"]) == 1 and rest["nextToken"] is None
        status, body, _ = await api.call("GET", "/api/audit", key, params={"nextToken": page1["nextToken"],
                                                                         "action": "create"})
        assert status == 400 and "other filters" in body["message"]


async def test_retention_and_rebuilding_from_the_log() -> None:
    async with running_api(audit_retention_days=1) as api:
        _, key = await api.organization()
        await api.create(key)
        trail = api.api.directory.audit
        assert (await api.call("GET", "/api/audit", key))[1]["total"] == 1
        rebuilt = await rebuild(api.api.event_log)
        assert len(rebuilt.directory.audit) == len(trail)  # rebuilt from zero: the same entries
        trail._clock = lambda: datetime.now(timezone.utc) + timedelta(days=2)
        assert (await api.call("GET", "/api/audit", key))[1]["total"] == 0
        assert len(trail) == 0 or all(not items for items in trail.by_organization.values())


async def test_concurrent_calls_share_audit_writes() -> None:
    async with running_api() as api:
        _, key = await api.organization()
        sandbox = await api.create(key)
        writes_before, batches_before = api.api.audit.written, api.api.audit.batches
        await asyncio.gather(*(api.call("PUT", f"/api/sandbox/{sandbox['id']}/labels", key,
                                        json={"labels": {"n": str(i)}}) for i in range(20)))
        assert api.api.audit.written - writes_before == 20
        assert api.api.audit.batches - batches_before < 20, "concurrent entries share transactions"
        status, page, _ = await api.call("GET", "/api/audit", key, params={"action": "replace_labels"})
        assert page["total"] == 20
        assert ADMIN not in str(page)
