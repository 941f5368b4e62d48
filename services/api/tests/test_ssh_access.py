"""SSH access through `bootstrap.build()` with the in-memory bus and store: the REST calls (Daytona's
shapes), the gateway's requests over request/reply, and what each records in the event log."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp.test_utils import TestClient
from api_harness import running_api

from corral_api.bootstrap import Api
from corral_api.domain import ssh_access as domain
from corral_contracts import codecs
from corral_contracts import runner as rc
from corral_contracts import ssh
from corral_contracts.envelope import EventEnvelope
from corral_contracts.subjects import SSH_LOGIN, SSH_SESSION_CHECK, SSH_SESSION_ENDED, SSH_WAKE, event_subject
from corral_messaging import MemoryBus
from corral_testing.waiting import wait_for

KEY = "crl_ssh-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def api() -> AsyncIterator[tuple[TestClient, MemoryBus, Api]]:
    async with running_api(admin_api_key=KEY, create_wait=0.2, ssh_host="ssh.example.test", ssh_port=2299,
                           ssh_sweep_interval=3600) as harness:
        yield harness.client, harness.bus, harness.api


async def report(bus: MemoryBus, fact: rc.RunnerFact) -> None:
    msg_id = f"r1:{uuid.uuid4()}"
    envelope = EventEnvelope(event_id=msg_id, aggregate_id=fact.sandbox_id, occurred_at=datetime.now(timezone.utc),
                             payload=fact)
    await bus.publish(event_subject(fact), codecs.encode(envelope), msg_id=msg_id)


async def started_sandbox(client: TestClient, bus: MemoryBus) -> str:
    sandbox = await (await client.post("/api/sandbox", json={}, headers=AUTH)).json()
    await report(bus, rc.SandboxContainerStarted(runner_id="r1", sandbox_id=sandbox["id"], container_id="c"))

    async def started() -> bool:
        return (await (await client.get(f"/api/sandbox/{sandbox['id']}", headers=AUTH)).json())["state"] == "started"

    await wait_for(started, message="the sandbox never started")
    return str(sandbox["id"])


async def login(bus: MemoryBus, token: str, session_id: str | None = None) -> ssh.SshLoginReply:
    request = ssh.SshLoginRequest(token_hash=domain.token_hash(token), session_id=session_id or str(uuid.uuid4()),
                                  client_address="192.0.2.7", client_port=50000, client_version="SSH-2.0-test")
    return codecs.ssh_login_reply.decode(await bus.request(SSH_LOGIN, codecs.encode(request)))


async def timeline(client: TestClient, sandbox_id: str) -> list[dict]:  # type: ignore[type-arg]
    return (await (await client.get(f"/api/sandbox/{sandbox_id}/events", headers=AUTH)).json())["items"]  # type: ignore[no-any-return]


async def test_issue_has_daytonas_shape_and_logs_in(api) -> None:  # type: ignore[no-untyped-def]
    client, bus, _ = api
    sid = await started_sandbox(client, bus)
    response = await client.post(f"/api/sandbox/{sid}/ssh-access", params={"expiresInMinutes": "30"}, headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"id", "sandboxId", "token", "expiresAt", "createdAt", "updatedAt", "sshCommand"}
    assert body["sandboxId"] == sid and re.fullmatch(r"[A-Za-z0-9]{32}", body["token"])
    assert body["sshCommand"] == f"ssh -p 2299 {body['token']}@ssh.example.test"
    lifetime = datetime.fromisoformat(body["expiresAt"]) - datetime.fromisoformat(body["createdAt"])
    assert timedelta(minutes=29) < lifetime <= timedelta(minutes=30)

    valid = await (await client.get("/api/sandbox/ssh-access/validate", params={"token": body["token"]},
                                    headers=AUTH)).json()
    assert valid == {"valid": True, "sandboxId": sid}
    session_id = str(uuid.uuid4())
    granted = await login(bus, body["token"], session_id)
    assert granted.granted and granted.sandbox_id == sid and granted.state == "started" and granted.runner_id == "r1"
    assert granted.access_id == body["id"] and granted.user == "daytona"
    again = await login(bus, body["token"], session_id)  # a repeated request records nothing new
    assert again.granted

    ended = ssh.SshSessionEnded(session_id=session_id, sandbox_id=sid, access_id=body["id"],
                                client_address="192.0.2.7", seconds=1.5, reason="client",
                                channels=[ssh.SshChannel(kind="exec", command="true", exit_status=0)])
    for _ in range(2):  # idempotent
        ack = await bus.request(SSH_SESSION_ENDED, codecs.encode(ssh.SshSessionReport(ended=ended)))
        assert codecs.ack.decode(ack).ok
    items = await timeline(client, sid)
    kinds = [e["type"] for e in items]
    assert kinds[:2] == ["SandboxCreated", "SandboxStarted"]
    assert [k for k in kinds if k.startswith("Ssh")] == ["SshAccessCreated", "SshAccessUsed", "SshSessionStarted",
                                                         "SshSessionEnded"]
    started = next(e for e in items if e["type"] == "SshSessionStarted")
    assert started["data"]["client_address"] == "192.0.2.7" and started["meta"]["Corral-Actor"] == "ssh-gateway"
    finished = next(e for e in items if e["type"] == "SshSessionEnded")
    assert finished["data"]["channels"] == [{"kind": "exec", "command": "true", "exit_status": 0}]
    assert body["token"] not in str(items)  # only its hash is ever recorded


async def test_refusals_and_revocation(api) -> None:  # type: ignore[no-untyped-def]
    client, bus, _ = api
    sid = await started_sandbox(client, bus)
    other = await started_sandbox(client, bus)
    first = await (await client.post(f"/api/sandbox/{sid}/ssh-access", headers=AUTH)).json()
    second = await (await client.post(f"/api/sandbox/{sid}/ssh-access", headers=AUTH)).json()
    theirs = await (await client.post(f"/api/sandbox/{other}/ssh-access", headers=AUTH)).json()
    assert (await login(bus, first["token"])).granted, "an earlier token stays valid when another is issued"

    unknown = await login(bus, "x" * 32)
    assert not unknown.granted and unknown.refusal == "unknown" and "not valid" in unknown.message

    # a token of one sandbox cannot be revoked (or used) through another
    response = await client.delete(f"/api/sandbox/{sid}/ssh-access", params={"token": theirs["token"]}, headers=AUTH)
    assert response.status == 404 and (await response.json())["code"] == "NOT_FOUND"
    assert (await login(bus, theirs["token"])).sandbox_id == other

    response = await client.delete(f"/api/sandbox/{sid}/ssh-access", params={"token": first["token"]}, headers=AUTH)
    assert response.status == 200 and (await response.json())["id"] == sid
    revoked = await login(bus, first["token"])
    assert not revoked.granted and revoked.refusal == "revoked"
    assert (await login(bus, second["token"])).granted

    response = await client.delete(f"/api/sandbox/{sid}/ssh-access", headers=AUTH)  # all of them
    assert response.status == 200
    assert (await login(bus, second["token"])).refusal == "revoked"
    assert (await login(bus, theirs["token"])).granted
    check = codecs.ssh_session_check_reply.decode(await bus.request(
        SSH_SESSION_CHECK, codecs.encode(ssh.SshSessionCheck(access_ids=[first["id"], theirs["id"]]))))
    assert check.invalid == {first["id"]: "revoked"}
    valid = await (await client.get("/api/sandbox/ssh-access/validate", params={"token": second["token"]},
                                    headers=AUTH)).json()
    assert valid == {"valid": False, "sandboxId": sid}

    assert (await client.delete(f"/api/sandbox/{other}", headers=AUTH)).status == 200
    gone = await login(bus, theirs["token"])
    assert not gone.granted and gone.refusal == "sandbox-gone" and other in gone.message


async def test_bad_requests_are_json_4xx(api) -> None:  # type: ignore[no-untyped-def]
    client, bus, _ = api
    sid = await started_sandbox(client, bus)
    for value in ("0", "-5", "abc", str(domain.MAX_MINUTES + 1)):
        response = await client.post(f"/api/sandbox/{sid}/ssh-access", params={"expiresInMinutes": value},
                                     headers=AUTH)
        body = await response.json()
        assert response.status == 400 and body["code"] == "BAD_REQUEST", (value, body)
    assert (await client.post(f"/api/sandbox/{uuid.uuid4()}/ssh-access", headers=AUTH)).status == 404
    assert (await client.get("/api/sandbox/ssh-access/validate", headers=AUTH)).status == 400
    assert (await client.post(f"/api/sandbox/{sid}/ssh-access")).status == 401


async def test_expiry_is_refused_and_recorded(api) -> None:  # type: ignore[no-untyped-def]
    client, bus, app = api
    sid = await started_sandbox(client, bus)
    body = await (await client.post(f"/api/sandbox/{sid}/ssh-access", params={"expiresInMinutes": "1"},
                                    headers=AUTH)).json()
    later = datetime.now(timezone.utc) + timedelta(minutes=2)
    app.ssh_access._now = lambda: later
    expired = await login(bus, body["token"])
    assert not expired.granted and expired.refusal == "expired" and "expired" in expired.message
    other = await (await client.post(f"/api/sandbox/{sid}/ssh-access", params={"expiresInMinutes": "1"},
                                     headers=AUTH)).json()
    app.ssh_access._now = lambda: later + timedelta(minutes=2)
    assert await app.ssh_access.sweep() == 1  # the keeper records an expiry nobody tried
    assert await app.ssh_access.sweep() == 0
    kinds = [(e["type"], e["data"].get("access_id")) for e in await timeline(client, sid) if e["type"] == "SshAccessExpired"]
    assert kinds == [("SshAccessExpired", body["id"]), ("SshAccessExpired", other["id"])]


async def test_wake_starts_a_stopped_sandbox_as_the_gateway(api) -> None:  # type: ignore[no-untyped-def]
    client, bus, _ = api
    sid = await started_sandbox(client, bus)
    body = await (await client.post(f"/api/sandbox/{sid}/ssh-access", headers=AUTH)).json()
    await client.post(f"/api/sandbox/{sid}/stop", headers=AUTH)
    await report(bus, rc.SandboxContainerStopped(runner_id="r1", sandbox_id=sid, exit_code=0))
    granted = await login(bus, body["token"])

    async def stopped_seen() -> bool:
        return (await login(bus, body["token"])).state == "stopped"

    await wait_for(stopped_seen, message="the sandbox never stopped")
    assert granted.granted
    request = ssh.SshWakeRequest(sandbox_id=sid, access_id=body["id"], session_id=str(uuid.uuid4()), wait=5.0)
    waking = asyncio.create_task(bus.request(SSH_WAKE, codecs.encode(request), timeout=10))

    async def start_asked() -> bool:
        return any(e["type"] == "SandboxStartRequested" for e in await timeline(client, sid))

    await wait_for(start_asked, message="the wake request recorded no start")
    await report(bus, rc.SandboxContainerStarted(runner_id="r1", sandbox_id=sid, container_id="c"))
    reply = codecs.ssh_wake_reply.decode(await waking)
    assert reply.state == "started" and reply.runner_id == "r1"
    start = next(e for e in await timeline(client, sid) if e["type"] == "SandboxStartRequested")
    assert start["meta"]["Corral-Actor"] == "ssh-gateway"

    bad = ssh.SshWakeRequest(sandbox_id=str(uuid.uuid4()), access_id=body["id"], session_id=str(uuid.uuid4()))
    assert codecs.ssh_wake_reply.decode(await bus.request(SSH_WAKE, codecs.encode(bad))).state == "unknown"


def test_superseded_keeps_the_newest() -> None:
    now = datetime.now(timezone.utc)

    def access(n: int) -> domain.SshAccess:
        at = now - timedelta(minutes=100 - n)
        return domain.SshAccess(id=f"a{n}", version=1, sandbox_id="s", organization_id="o", token_hash="h",
                                expires_at=now + timedelta(hours=1), created_at=at, updated_at=at)

    accesses = [access(n) for n in range(domain.MAX_LIVE_TOKENS + 2)]
    gone = domain.superseded(accesses, now)
    assert [a.id for a in gone] == ["a0", "a1", "a2"]
    assert domain.superseded(accesses[:5], now) == []


async def test_the_sdks_revoke_names_its_token_in_the_organization_header(api) -> None:  # type: ignore[no-untyped-def]
    client, bus, _ = api
    sid = await started_sandbox(client, bus)
    kept = await (await client.post(f"/api/sandbox/{sid}/ssh-access", headers=AUTH)).json()
    named = await (await client.post(f"/api/sandbox/{sid}/ssh-access", headers=AUTH)).json()
    response = await client.delete(f"/api/sandbox/{sid}/ssh-access",
                                   headers={**AUTH, "X-Daytona-Organization-ID": named["token"]})
    assert response.status == 200
    assert (await login(bus, named["token"])).refusal == "revoked"
    assert (await login(bus, kept["token"])).granted


async def test_a_sandbox_in_error_is_refused_with_the_way_out(api) -> None:  # type: ignore[no-untyped-def]
    client, bus, _ = api
    sid = await started_sandbox(client, bus)
    body = await (await client.post(f"/api/sandbox/{sid}/ssh-access", headers=AUTH)).json()
    await report(bus, rc.SandboxContainerFailed(runner_id="r1", sandbox_id=sid, operation="start", reason="disk full"))

    async def failed() -> bool:
        return (await (await client.get(f"/api/sandbox/{sid}", headers=AUTH)).json())["state"] == "error"

    await wait_for(failed, message="the failure was not recorded")
    refused = await login(bus, body["token"])
    assert not refused.granted and refused.refusal == "sandbox-error"
    assert "disk full" in refused.message and "recover" in refused.message
