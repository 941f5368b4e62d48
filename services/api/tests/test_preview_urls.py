"""Preview URLs in the api: the pure rules, then the endpoints and the proxy's wake desk through
`bootstrap.build()` with the in-memory bus and store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral_api.bootstrap import build
from corral_api.domain import previews, sandbox as domain
from corral_api.domain.errors import InvalidRequest, InvalidState, NotFound
from corral_api.settings import Settings
from corral_contracts import codecs
from corral_contracts import preview as pv
from corral_contracts import runner as rc
from corral_contracts import sandbox as ev
from corral_contracts.codecs import RecordedEvent
from corral_contracts.envelope import EventEnvelope
from corral_contracts.preview import PreviewWakeRequest
from corral_contracts.subjects import PREVIEW_WAKE, RUNNERS_BUCKET, event_subject
from corral_eventstore import EventLog
from corral_messaging import MemoryBus
from corral_testing.waiting import wait_for

KEY = "crl_preview-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def a_sandbox(**change: object) -> domain.Sandbox:
    created = ev.SandboxCreated(sandbox_id="0b7e4a52-59d2-4a0e-9a55-3f6a2b1c9d10", organization_id="org", name="n",
                                runner_id="r1", image="i", snapshot="s", user="u", preview_token="t" * 32)
    sandbox = domain.created(created, 1, NOW)
    return domain.Sandbox(**{**{f: getattr(sandbox, f) for f in sandbox.__struct_fields__}, **change})


@pytest.mark.parametrize("text", ["0", "65536", "-1", "80a", "", "٣"])
def test_ports_are_whole_numbers_from_1_to_65535(text: str) -> None:
    with pytest.raises(InvalidRequest):
        previews.port_of(text)
    assert previews.port_of("1") == 1 and previews.port_of("65535") == 65535


def test_signed_lifetimes_are_1_second_to_a_day_default_a_minute() -> None:
    assert previews.lifetime_of(None) == previews.lifetime_of("") == 60
    assert previews.lifetime_of("1") == 1 and previews.lifetime_of("86400") == 86400
    for text in ("0", "86401", "1.5", "-3", "soon"):
        with pytest.raises(InvalidRequest):
            previews.lifetime_of(text)


def test_a_signed_url_is_issued_then_revoked_once() -> None:
    sandbox = a_sandbox()
    [issued] = previews.issue(sandbox, 3000, "abcdefghij012345", 90, NOW)
    assert issued == pv.SignedPreviewUrlIssued(sandbox_id=sandbox.id, organization_id="org", port=3000,
                                               token_hash=previews.token_hash("abcdefghij012345"),
                                               expires_at=NOW + timedelta(seconds=90))
    grant = previews.evolve(None, issued, 1)
    with pytest.raises(NotFound):
        previews.expire(grant, sandbox, 3001)
    with pytest.raises(NotFound):
        previews.expire(None, sandbox, 3000)
    with pytest.raises(NotFound):
        previews.expire(grant, a_sandbox(id="ffffffff-59d2-4a0e-9a55-3f6a2b1c9d10"), 3000)
    [expired] = previews.expire(grant, sandbox, 3000)
    assert previews.expire(previews.evolve(grant, expired, 2), sandbox, 3000) == []
    with pytest.raises(InvalidState):
        previews.issue(a_sandbox(state="destroyed"), 3000, "abcdefghij012345", 90, NOW)


def test_public_switch_and_the_reason_of_a_start() -> None:
    sandbox = a_sandbox(state="stopped")
    assert domain.set_public(sandbox, False) == []
    [changed] = domain.set_public(sandbox, True)
    assert domain.evolve(sandbox, changed, 2, NOW).public is True  # type: ignore[union-attr]
    assert domain.request_start(sandbox, reason="preview-visit") == [
        ev.SandboxStartRequested(sandbox_id=sandbox.id, reason="preview-visit")]
    archived = a_sandbox(state="archived", archive_image="img")
    assert domain.request_start(archived, reason="preview-visit") == [
        ev.SandboxRestoreRequested(sandbox_id=sandbox.id, image="img", reason="preview-visit")]


def test_urls_in_host_and_path_form() -> None:
    assert previews.host_url("http://preview.localhost:4000", 3000, "abc") == "http://3000-abc.preview.localhost:4000"
    assert previews.host_url("https://p.example.com", 80, "abc") == "https://80-abc.p.example.com"
    assert previews.path_url("http://127.0.0.1:4000/", 3000, "abc") == "http://127.0.0.1:4000/preview/abc/3000/"


@pytest.fixture(params=["host", "path"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[tuple[TestClient, MemoryBus, str]]:
    bus = MemoryBus()
    settings = Settings(home="/nonexistent", database_url="memory://", nats_url="memory://", admin_api_key=KEY,
                        create_wait=0.2, toolbox_proxy_url="http://127.0.0.1:4100/toolbox",
                        preview_url="http://preview.localhost:4100", preview_url_form=request.param)
    app = build(settings, bus=bus, event_log=EventLog(RecordedEvent, "memory://"))
    await bus.connect()
    await bus.ensure_streams()
    beat = rc.RunnerHeartbeat(runner_id="r1", toolbox_url="http://runner", started_at="now")
    await bus.kv_put(RUNNERS_BUCKET, "r1", codecs.encode(beat))
    client = TestClient(TestServer(app.app))
    await client.start_server()
    yield client, bus, request.param
    await client.close()


async def report(bus: MemoryBus, fact: rc.RunnerFact, msg_id: str) -> None:
    envelope = EventEnvelope(event_id=msg_id, aggregate_id=fact.sandbox_id, occurred_at=datetime.now(timezone.utc),
                             payload=fact)
    await bus.publish(event_subject(fact), codecs.encode(envelope), msg_id=msg_id)


async def state_of(client: TestClient, sandbox_id: str) -> str:
    return str((await (await client.get(f"/api/sandbox/{sandbox_id}", headers=AUTH)).json())["state"])


async def test_preview_endpoints_and_the_wake_desk(api) -> None:  # type: ignore[no-untyped-def]
    client, bus, form = api
    sandbox = await (await client.post("/api/sandbox", json={}, headers=AUTH)).json()
    sid = sandbox["id"]
    link = await (await client.get(f"/api/sandbox/{sid}/ports/3000/preview-url", headers=AUTH)).json()
    expected = (f"http://3000-{sid}.preview.localhost:4100" if form == "host"
                else f"http://127.0.0.1:4100/preview/{sid}/3000/")
    assert link["sandboxId"] == sid and link["url"] == expected and len(link["token"]) == 32

    response = await client.get(f"/api/sandbox/{sid}/ports/3000/signed-preview-url?expiresInSeconds=5", headers=AUTH)
    signed = await response.json()
    assert response.status == 200 and signed["port"] == 3000 and previews.is_token(signed["token"])
    assert signed["url"] == expected.replace(sid, signed["token"])
    expire = f"/api/sandbox/{sid}/ports/3000/signed-preview-url/{signed['token']}/expire"
    assert (await client.post(expire, headers=AUTH)).status == 200
    assert (await client.post(expire, headers=AUTH)).status == 200
    assert (await client.post(expire.replace("/3000/", "/3001/"), headers=AUTH)).status == 404

    public = await (await client.post(f"/api/sandbox/{sid}/public/true", headers=AUTH)).json()
    assert public["public"] is True and public["id"] == sid
    assert (await (await client.get(f"/api/sandbox/{sid}", headers=AUTH)).json())["public"] is True

    async def wake() -> pv.PreviewWakeReply:
        request = codecs.encode(PreviewWakeRequest(sandbox_id=sid, port=3000))
        return codecs.preview_wake_reply.decode(await bus.request(PREVIEW_WAKE, request))

    await report(bus, rc.SandboxContainerStarted(runner_id="r1", sandbox_id=sid, container_id="c"), "r1:started")
    await wait_for(lambda: _is(client, sid, "started"), message="never started")
    assert await wake() == pv.PreviewWakeReply(accepted=True, state="started")
    assert (await client.post(f"/api/sandbox/{sid}/stop", headers=AUTH)).status == 200
    await report(bus, rc.SandboxContainerStopped(runner_id="r1", sandbox_id=sid, exit_code=0), "r1:stopped")
    await wait_for(lambda: _is(client, sid, "stopped"), message="never stopped")
    assert await wake() == pv.PreviewWakeReply(accepted=True, state="starting")
    items = (await (await client.get(f"/api/sandbox/{sid}/events", headers=AUTH)).json())["items"]
    start = [e for e in items if e["type"] == "SandboxStartRequested"]
    assert [(e["data"]["reason"], e["meta"]["Corral-Actor"]) for e in start] == [("preview-visit", "proxy")]

    assert (await client.delete(f"/api/sandbox/{sid}", headers=AUTH)).status == 200
    refused = await wake()
    assert refused.accepted is False and refused.message


async def _is(client: TestClient, sandbox_id: str, state: str) -> bool:
    return await state_of(client, sandbox_id) == state
