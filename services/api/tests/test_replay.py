"""Rebuilding the read models from zero (`app/replay.py`), against the in-memory store and SQLite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral_api.app import replay
from corral_api.bootstrap import build
from corral_api.domain.identity import admin_key_created, hash_key, key_id_for
from corral_api.domain.names import name_key
from corral_api.entrypoints import dto
from corral_api.settings import Settings
from corral_contracts import codecs
from corral_contracts import identity as idev
from corral_contracts import runner as rc
from corral_contracts import sandbox as ev
from corral_contracts.codecs import RecordedEvent
from corral_contracts.subjects import RUNNERS_BUCKET
from corral_eventstore import EventLog
from corral_messaging import MemoryBus

ORG = "org-a"
KEY = "crl_replay-key"


@pytest.fixture(params=["memory", "sqlite"])
def event_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventLog]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'events.db'}"
    log = EventLog(RecordedEvent, url)
    yield log
    log.close()


class Recorder:
    """Records what the api would, transaction by transaction, keeping each aggregate's version."""

    def __init__(self, log: EventLog):
        self.log = log
        self.versions: dict[uuid.UUID, int] = {}

    def record(self, *changes: tuple[uuid.UUID, list[Any]]) -> None:
        (first, events), *more = changes
        self.log.append(first, self.versions.get(first, 0), events, {"Corral-Actor": "test"},
                        *((key, self.versions.get(key, 0), items) for key, items in more))
        for key, items in changes:
            self.versions[key] = self.versions.get(key, 0) + len(items)

    def create(self, name: str, runner: str = "r1", org: str = ORG, **fields: Any) -> str:
        sid = str(uuid.uuid4())
        self.record((uuid.UUID(sid), [ev.SandboxCreated(sandbox_id=sid, organization_id=org, name=name, runner_id=runner,
                                                        image="img", snapshot="corral-default", user="daytona",
                                                        **fields)]),
                    (name_key(org, name), [ev.SandboxNameClaimed(organization_id=org, name=name, sandbox_id=sid)]))
        return sid

    def sandbox(self, sid: str, *events: Any) -> None:
        self.record((uuid.UUID(sid), list(events)))

    def destroy(self, sid: str, name: str, runner: str = "r1", org: str = ORG) -> None:
        self.record((uuid.UUID(sid), [ev.SandboxDestroyRequested(sandbox_id=sid)]),
                    (name_key(org, name), [ev.SandboxNameReleased(organization_id=org, name=name, sandbox_id=sid)]))
        self.sandbox(sid, ev.SandboxDestroyed(sandbox_id=sid, runner_id=runner))


def a_history(log: EventLog) -> dict[str, str]:
    r = Recorder(log)
    admin = admin_key_created(KEY, organization_id=ORG)
    r.record((key_id_for(admin.key_hash), [admin]))
    other = admin_key_created("crl_revoked", organization_id="org-b")
    r.record((key_id_for(other.key_hash), [other, idev.ApiKeyRevoked(key_id=other.key_id, organization_id="org-b")]))
    running = r.create("running", labels={"team": "ml"}, cpu=2)
    r.sandbox(running, ev.SandboxStarted(sandbox_id=running, runner_id="r1"))
    stopped = r.create("stopped", runner="r2")
    r.sandbox(stopped, ev.SandboxStarted(sandbox_id=stopped, runner_id="r2"))
    r.sandbox(stopped, ev.SandboxLabelsReplaced(sandbox_id=stopped, labels={"team": "web"}),
              ev.SandboxStopRequested(sandbox_id=stopped))
    r.sandbox(stopped, ev.SandboxStopped(sandbox_id=stopped, runner_id="r2", exit_code=0))
    gone = r.create("gone")
    r.sandbox(gone, ev.SandboxStarted(sandbox_id=gone, runner_id="r1"))
    r.destroy(gone, "gone")
    again = r.create("gone")  # the released name, taken again
    failed = r.create("failed", org="org-b")
    r.sandbox(failed, ev.SandboxFailed(sandbox_id=failed, reason="no image", recoverable=True))
    return {"running": running, "stopped": stopped, "gone": gone, "again": again, "failed": failed}


async def test_rebuild_folds_every_read_model_from_zero(event_log: EventLog) -> None:
    ids = a_history(event_log)
    rebuilt = await replay.rebuild(event_log)
    d = rebuilt.directory
    assert rebuilt.events == event_log.last_notification_id() == d.position == 23
    assert {name: d.sandboxes[sid].state for name, sid in ids.items()} == {
        "running": "started", "stopped": "stopped", "gone": "destroyed", "again": "creating", "failed": "error"}
    assert d.sandboxes[ids["stopped"]].labels == {"team": "web"} and d.sandboxes[ids["running"]].cpu == 2
    assert d.sandboxes[ids["failed"]].recoverable and d.sandboxes[ids["failed"]].error_reason == "no image"
    assert d.names == {(ORG, "running"): ids["running"], (ORG, "stopped"): ids["stopped"], (ORG, "gone"): ids["again"],
                       ("org-b", "failed"): ids["failed"]}
    assert replay.organization_of(d, hash_key(KEY)) == ORG
    assert replay.organization_of(d, hash_key("crl_revoked")) is None
    assert {r: n for r, n in d.placed.items() if n} == {"r1": 3, "r2": 1}
    summary = rebuilt.summary()
    assert (summary["events"], summary["sandboxes"], summary["live"], summary["names"], summary["api_keys"]) == \
        (23, 5, 4, 4, 2)


async def test_the_checks_find_no_difference_in_a_consistent_log(event_log: EventLog) -> None:
    a_history(event_log)
    rebuilt = await replay.rebuild(event_log)
    assert await replay.check(event_log, rebuilt) == []
    assert replay.directory_differences(replay.fold_stepwise(event_log, steps=[1]), rebuilt.directory) == []


async def test_a_log_that_grew_after_the_rebuild_is_not_a_difference(event_log: EventLog) -> None:
    ids = a_history(event_log)
    rebuilt = await replay.rebuild(event_log)
    r = Recorder(event_log)
    r.versions[uuid.UUID(ids["running"])] = rebuilt.directory.sandboxes[ids["running"]].version
    r.sandbox(ids["running"], ev.SandboxStopRequested(sandbox_id=ids["running"]))
    r.create("later")
    assert await replay.check(event_log, rebuilt) == []


async def test_directory_differences_name_what_differs(event_log: EventLog) -> None:
    ids = a_history(event_log)
    good = (await replay.rebuild(event_log)).directory
    bad = (await replay.rebuild(event_log)).directory
    bad.sandboxes[ids["stopped"]] = msgspec.structs.replace(bad.sandboxes[ids["stopped"]], state="started")
    del bad.names[(ORG, "running")]
    next(iter(bad.api_keys.values())).revoked = True
    bad.placed["r9"] += 1
    found = replay.directory_differences(good, bad)
    assert any(f"sandbox {ids['stopped']}.state: 'stopped' != 'started'" in d for d in found)
    assert any("names[('org-a', 'running')]: missing" in d for d in found)
    assert any(d.startswith("api_keys[") for d in found) and any("placed['r9']: unexpected 1" in d for d in found)


async def test_a_directory_that_disagrees_with_the_aggregates_is_caught(event_log: EventLog) -> None:
    """A crafted log where a stale release follows a new claim: the directory keeps the new holder, the
    name slot (the write side) frees the name. The check must say so."""
    r = Recorder(event_log)
    first = r.create("shared")
    second = str(uuid.uuid4())
    r.record((name_key(ORG, "shared"), [ev.SandboxNameClaimed(organization_id=ORG, name="shared", sandbox_id=second),
                                        ev.SandboxNameReleased(organization_id=ORG, name="shared", sandbox_id=first)]))
    rebuilt = await replay.rebuild(event_log)
    found = await replay.check(event_log, rebuilt)
    assert any("name org-a/shared" in d for d in found), found
    rebuilt.directory.sandboxes[first] = msgspec.structs.replace(rebuilt.directory.sandboxes[first], cpu=9)
    found = await replay.check(event_log, rebuilt)
    assert any(f"sandbox {first} (its stream).cpu: 1 != 9" in d for d in found), found
    assert any(f"reference fold: sandbox {first}.cpu: 1 != 9" in d for d in found), found


def render(sandbox: Any) -> dict[str, Any]:
    return msgspec.to_builtins(dto.sandbox_dto(sandbox, "http://proxy/toolbox"))  # type: ignore[no-any-return]


async def test_answer_differences_compare_with_what_an_api_says(event_log: EventLog) -> None:
    ids = a_history(event_log)
    d = (await replay.rebuild(event_log)).directory
    listed = [render(s) for s in replay.expected_list(d, ORG)]
    assert [item["name"] for item in listed] == ["gone", "stopped", "running"]  # newest first
    got = {sid: (render(s) if s.state != "destroyed" else None) for sid, s in d.sandboxes.items()
           if s.organization_id == ORG}
    assert replay.answer_differences(d, ORG, render, listed, got) == []
    wrong = [dict(listed[0], state="stopped"), listed[2]]
    found = replay.answer_differences(d, ORG, render, wrong, {**got, ids["stopped"]: None, ids["gone"]: {"state": "x"}})
    assert any("list: 3 sandboxes rebuilt, 2 listed; not listed" in f for f in found), found
    assert any(f"list item {ids['again']}.state: 'creating' (rebuilt) != 'stopped' (api)" in f for f in found)
    assert any(f"get {ids['stopped']}: stopped when rebuilt, but the api answers 404" in f for f in found)
    assert any(f"get {ids['gone']}: destroyed when rebuilt" in f for f in found)
    found = replay.answer_differences(d, ORG, render, listed[::-1], got)
    assert found == ["list: 3 sandboxes rebuilt, 3 listed; same sandboxes in another order"]


AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def api() -> AsyncIterator[tuple[Any, TestClient]]:
    bus = MemoryBus()
    settings = Settings(home="/nonexistent", database_url="memory://", nats_url="memory://", admin_api_key=KEY,
                        create_wait=0.01)
    app = build(settings, bus=bus, event_log=EventLog(RecordedEvent, "memory://"))
    await bus.connect()
    await bus.ensure_streams()
    for runner in ("r1", "r2"):
        beat = rc.RunnerHeartbeat(runner_id=runner, toolbox_url="http://runner", started_at="now")
        await bus.kv_put(RUNNERS_BUCKET, runner, codecs.encode(beat))
    client = TestClient(TestServer(app.app))
    await client.start_server()
    yield app, client
    await client.close()


async def test_a_rebuild_equals_the_directory_the_running_api_folded_as_it_went(api: tuple[Any, TestClient]) -> None:
    app, client = api
    made = []
    for n in range(6):
        response = await client.post("/api/sandbox", headers=AUTH, json={"name": f"inc-{n}", "labels": {"n": str(n)}})
        assert response.status == 200, await response.text()
        made.append((await response.json())["id"])
    assert (await client.put(f"/api/sandbox/{made[1]}/labels", headers=AUTH, json={"labels": {"x": "y"}})).status == 200
    assert (await client.delete(f"/api/sandbox/{made[2]}", headers=AUTH)).status == 200
    await app.directory.catch_up()
    rebuilt = await replay.rebuild(app.event_log)
    assert rebuilt.directory.position == app.directory.position
    assert replay.directory_differences(rebuilt.directory, app.directory) == []
    assert await replay.check(app.event_log, rebuilt) == []
    listed = (await (await client.get("/api/sandbox", headers=AUTH, params={"limit": "200"})).json())["items"]
    got = {}
    for sid in made:
        response = await client.get(f"/api/sandbox/{sid}", headers=AUTH)
        got[sid] = await response.json() if response.status == 200 else None
    assert got[made[2]] is None or got[made[2]]["state"] == "destroying"
    assert replay.answer_differences(rebuilt.directory, app.directory.api_keys[hash_key(KEY)].organization_id,
                                     render, listed, got) == []
