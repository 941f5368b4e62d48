"""Organizations, keys, quotas and the audit log on the real platform (REST, the proxy, the official SDK)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from daytona import AsyncDaytona, DaytonaConfig, DaytonaForbiddenError

from corral_stack.stack import Stack
from corral_testing.waiting import wait_for

from .conftest import Rest

pytestmark = pytest.mark.e2e


@pytest.fixture
async def tenant(rest: Rest) -> AsyncIterator[dict[str, Any]]:
    """A fresh organization with a small quota; its sandboxes are deleted afterwards."""
    run = os.urandom(3).hex()
    status, org = await rest.call("POST", f"{rest.api}/organizations", json={"name": f"e2e-{run}"})
    assert status == 201, org
    status, body = await rest.call("PATCH", f"{rest.api}/organizations/{org['id']}/quota",
                                   json={"totalCpuQuota": 3, "totalMemoryQuota": 3})
    assert status == 200 and body["quota"]["totalCpuQuota"] == 3, body
    org["key"] = org["apiKey"]["value"]
    yield org
    status, listed = await rest.call("GET", f"{rest.api}/sandbox", headers={"Authorization": f"Bearer {org['key']}"})
    for sandbox in listed["items"] if status == 200 else []:
        await rest.call("DELETE", f"{rest.api}/sandbox/{sandbox['id']}", headers={"Authorization": f"Bearer {org['key']}"})


async def test_concurrent_creates_at_a_small_quota_admit_exactly_that_many(stack: Stack, rest: Rest,
                                                                          tenant: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {tenant['key']}"}
    answers = await asyncio.gather(*(rest.call("POST", f"{rest.api}/sandbox", headers=auth,
                                               json={"cpu": 1, "memory": 1, "disk": 1, "labels": {"q": "1"}})
                                     for _ in range(10)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 3 + [403] * 7, answers
    assert all(body["code"] == "QUOTA_EXCEEDED" for status, body in answers if status == 403)
    status, org = await rest.call("GET", f"{rest.api}/organizations/{tenant['id']}", headers=auth)
    assert org["usage"]["cpu"] == 3
    # the official SDK sees the refusal as Daytona's forbidden error
    async with AsyncDaytona(DaytonaConfig(api_key=tenant["key"], api_url=stack.api_url)) as daytona:
        with pytest.raises(DaytonaForbiddenError, match="quota"):
            await daytona.create(timeout=60)
    # the refusals are in the organization's audit log, as the SDK's calls
    status, page = await rest.call("GET", f"{rest.api}/audit", headers=auth,
                                   params={"action": "create", "targetType": "sandbox", "status": "403"})
    assert status == 200 and page["total"] == 8, page
    assert any(item["source"].startswith("sdk-python") for item in page["items"]), page


async def test_revoked_keys_and_suspended_organizations_stop_at_the_proxy_too(rest: Rest,
                                                                             tenant: dict[str, Any]) -> None:
    owner = {"Authorization": f"Bearer {tenant['key']}"}
    status, created = await rest.call("POST", f"{rest.api}/api-keys", headers=owner,
                                      json={"name": "temp", "permissions": ["write:sandboxes"]})
    assert status == 201
    temp = {"Authorization": f"Bearer {created['value']}"}
    status, sandbox = await rest.call("POST", f"{rest.api}/sandbox", headers=temp, json={})
    assert status == 200
    await wait_for(lambda: _state_is(rest, sandbox["id"], owner, "started"), timeout=90, interval=0.2,
                   message="the tenant's sandbox never started")
    execute = f"{rest.toolbox}/{sandbox['id']}/process/execute"
    status, answer = await rest.call("POST", execute, headers=temp, json={"command": "echo ok"})
    assert status == 200 and answer["result"].strip() == "ok"
    assert (await rest.call("DELETE", f"{rest.api}/api-keys/temp", headers=owner))[0] == 204
    assert (await rest.call("GET", f"{rest.api}/sandbox", headers=temp))[0] == 401

    async def refused(headers: dict[str, str], status: int) -> bool:
        return (await rest.call("POST", execute, headers=headers, json={"command": "true"}))[0] == status
    await wait_for(lambda: refused(temp, 401), message="the proxy still accepts a revoked key")
    assert (await rest.call("POST", f"{rest.api}/organizations/{tenant['id']}/suspend", json={}))[0] == 200
    await wait_for(lambda: refused(owner, 403), message="the proxy still serves a suspended organization")
    assert (await rest.call("POST", f"{rest.api}/organizations/{tenant['id']}/unsuspend"))[0] == 200
    await wait_for(lambda: refused(owner, 200), message="the proxy still refuses an unsuspended organization")


async def _state_is(rest: Rest, sandbox_id: str, headers: dict[str, str], state: str) -> bool:
    status, body = await rest.call("GET", f"{rest.api}/sandbox/{sandbox_id}", headers=headers)
    assert status == 200 and body["state"] != "error", body
    return bool(body["state"] == state)
