"""Listing with Daytona's filters and cursor pages, through REST and the official SDK (sync and async);
then `corral replay`: the read models rebuilt from the stack's event store give the api's answers."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import pytest_asyncio
from daytona import AsyncDaytona, Daytona, DaytonaConfig, ListSandboxesQuery
from daytona_api_client import SandboxListSortDirection, SandboxListSortField, SandboxState

from corral_api.app import replay
from corral_api.domain.identity import hash_key
from corral_api.entrypoints import dto
from corral_contracts.codecs import RecordedEvent
from corral_eventstore import EventLog
from corral_stack.stack import Stack
from corral_testing.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

SPECS = [  # (cpu, memory, disk, team, public)
    (1, 1, 3, "ml", False),
    (2, 2, 3, "ml", False),
    (1, 2, 3, "web", False),
    (2, 1, 5, "web", False),
    (1, 1, 3, "ml", True),
]


class Boxes(msgspec.Struct):
    run: str
    items: list[dict[str, Any]]
    stopped: str
    """Id of the one sandbox stopped after all were started."""


async def _call(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kw) as response:
        return response.status, await response.json()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def boxes(stack: Stack) -> AsyncIterator[Boxes]:
    """Five started sandboxes with a unique `run` label and varied resources; the fourth is then stopped."""
    run = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {stack.admin_api_key}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=120)) as http:
        items: list[dict[str, Any]] = []
        try:
            for i, (cpu, memory, disk, team, public) in enumerate(SPECS):
                status, body = await _call(http, "POST", f"{stack.api_url}/sandbox", json={
                    "name": f"ls-{run}-{i}", "cpu": cpu, "memory": memory, "disk": disk, "public": public,
                    "labels": {"run": run, "team": team}})
                assert status == 200 and body["state"] in ("creating", "started"), body
                items.append(body)

            async def reached(sandbox_id: str, state: str) -> dict[str, Any] | None:
                status, body = await _call(http, "GET", f"{stack.api_url}/sandbox/{sandbox_id}")
                assert status == 200 and body["state"] != "error", body
                return body if body["state"] == state else None

            # The answer of a create under load may still be `creating`; the figures need settled sandboxes.
            for i, item in enumerate(items):
                items[i] = await wait_for(lambda: reached(item["id"], "started"), timeout=90,
                                          message=f"{item['id']} never started")
            stopped = items[3]["id"]
            status, body = await _call(http, "POST", f"{stack.api_url}/sandbox/{stopped}/stop")
            assert status == 200, body
            await wait_for(lambda: reached(stopped, "stopped"), timeout=90, message="the sandbox never stopped")
            yield Boxes(run=run, items=items, stopped=stopped)
        finally:
            for item in items:
                await _call(http, "DELETE", f"{stack.api_url}/sandbox/{item['id']}")


async def test_rest_filters_and_pages(rest, boxes: Boxes) -> None:  # type: ignore[no-untyped-def]
    run, made = boxes.run, boxes.items
    ids = [b["id"] for b in made]

    async def listed(**params: Any) -> list[str]:
        status, body = await rest.call("GET", f"{rest.api}/sandbox", params={"limit": "200", **params})
        assert status == 200 and set(body) == {"items", "nextCursor"} and body["nextCursor"] is None, body
        return [item["id"] for item in body["items"]]

    mine = f'{{"run": "{run}"}}'
    assert await listed(labels=mine) == ids[::-1]  # newest first
    assert await listed(labels=f'{{"run": "{run}", "team": "ml"}}') == [ids[4], ids[1], ids[0]]
    assert await listed(labels=mine, states="stopped") == [boxes.stopped]
    assert set(await listed(labels=mine, states="started,stopped")) == set(ids)
    assert set(await listed(labels=mine, minCpu="2")) == {ids[1], ids[3]}
    assert set(await listed(labels=mine, maxCpu="1", minMemoryGiB="2")) == {ids[2]}
    assert await listed(labels=mine, minDiskGiB="4", maxDiskGiB="5") == [ids[3]]
    assert await listed(labels=mine, isPublic="true") == [ids[4]]
    assert await listed(labels=mine, isRecoverable="true") == []
    assert set(await listed(name=f"LS-{run.upper()}-")) == set(ids)
    assert await listed(id=ids[2][:13].upper(), labels=mine) == [ids[2]]
    assert await listed(labels=mine, createdAtAfter=made[2]["createdAt"]) == [ids[4], ids[3]]
    assert await listed(labels=mine, createdAtBefore=made[1]["createdAt"]) == [ids[0]]
    assert await listed(labels=mine, lastEventAfter=made[4]["updatedAt"]) == [boxes.stopped]
    assert await listed(labels=mine, snapshots=made[0]["snapshot"], regionIds=made[0]["target"]) == ids[::-1]
    assert await listed(labels=mine, snapshots="no-such-snapshot") == []

    names, cursor, pages = [], None, 0
    while True:
        params = {"labels": mine, "limit": "2", "sort": "name", "order": "asc", **({"cursor": cursor} if cursor else {})}
        status, body = await rest.call("GET", f"{rest.api}/sandbox", params=params)
        assert status == 200 and len(body["items"]) <= 2, body
        names += [item["name"] for item in body["items"]]
        pages += 1
        cursor = body["nextCursor"]
        if pages == 1:
            first_cursor = cursor
        if not cursor:
            break
    assert names == [f"ls-{run}-{i}" for i in range(5)] and pages == 3

    for params in ({"limit": "500"}, {"limit": "x"}, {"states": "bogus"}, {"isPublic": "yes"}, {"minCpu": "-1"},
                   {"createdAtAfter": "not-a-date"}, {"labels": "[1]"}, {"cursor": "garbage"},
                   {"sort": "size"}, {"order": "sideways"},
                   {"labels": mine, "limit": "2", "sort": "cpu", "cursor": first_cursor}):
        status, body = await rest.call("GET", f"{rest.api}/sandbox", params=params)
        assert status == 400 and body["statusCode"] == 400 and body["message"], (params, body)


def test_sync_sdk_lists_with_filters_across_pages(stack: Stack, boxes: Boxes) -> None:
    daytona = Daytona(DaytonaConfig(api_key=stack.admin_api_key, api_url=stack.api_url))
    ids = [b["id"] for b in boxes.items]

    def found(**query: Any) -> list[str]:
        return [s.id for s in daytona.list(ListSandboxesQuery(**query))]

    mine = {"run": boxes.run}
    assert found(labels=mine, limit=1) == ids[::-1]  # five pages of one
    assert found(labels={**mine, "team": "ml"}, limit=2) == [ids[4], ids[1], ids[0]]
    assert found(labels=mine, states=[SandboxState.STOPPED]) == [boxes.stopped]
    assert set(found(labels=mine, min_cpu=2, limit=1)) == {ids[1], ids[3]}
    assert found(labels=mine, min_memory_gib=2, max_cpu=1) == [ids[2]]
    assert found(labels=mine, min_disk_gib=5) == [ids[3]]
    assert found(labels=mine, is_public=True) == [ids[4]]
    assert found(labels=mine, name=f"ls-{boxes.run}-", sort=SandboxListSortField.NAME,
                 order=SandboxListSortDirection.ASC, limit=2) == ids
    assert found(labels=mine, sort=SandboxListSortField.CPU, order=SandboxListSortDirection.DESC, limit=3) == \
        sorted(ids, key=lambda i: (next(b["cpu"] for b in boxes.items if b["id"] == i), i), reverse=True)
    after = datetime.fromisoformat(boxes.items[2]["createdAt"])
    assert found(labels=mine, created_at_after=after) == [ids[4], ids[3]]
    assert found(labels=mine, last_activity_after=datetime.fromisoformat(boxes.items[4]["updatedAt"])) == \
        [boxes.stopped]


async def test_async_sdk_lists_with_filters_across_pages(stack: Stack, boxes: Boxes) -> None:
    ids = [b["id"] for b in boxes.items]
    mine = {"run": boxes.run}
    async with AsyncDaytona(DaytonaConfig(api_key=stack.admin_api_key, api_url=stack.api_url)) as daytona:
        async def found(**query: Any) -> list[str]:
            return [s.id async for s in daytona.list(ListSandboxesQuery(**query))]

        assert await found(labels=mine, limit=2) == ids[::-1]
        assert await found(labels=mine, states=[SandboxState.STARTED], min_cpu=2) == [ids[1]]
        assert await found(labels={**mine, "team": "web"}, max_memory_gib=1, limit=1) == [ids[3]]
        assert await found(labels=mine, sort=SandboxListSortField.NAME, order=SandboxListSortDirection.DESC,
                           limit=2) == ids[::-1]


# --- replay --------------------------------------------------------------------------------------


def render(sandbox: Any) -> dict[str, Any]:
    return msgspec.to_builtins(dto.sandbox_dto(sandbox, ""))  # type: ignore[no-any-return]


def snapshot_store(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite store (WAL included), as a stopped api would leave it."""
    target.parent.mkdir(parents=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


async def test_replay_of_the_event_store_gives_the_api_s_answers(stack: Stack, rest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:8]
    a = await rest.create(name=f"rp-{run}-a", labels={"run": run})
    b = await rest.create(name=f"rp-{run}-b", labels={"run": run}, cpu=2)
    c = await rest.create(name=f"rp-{run}-c", labels={"run": run})
    try:
        status, body = await rest.call("PUT", f"{rest.api}/sandbox/{a['id']}/labels",
                                       json={"labels": {"run": run, "relabelled": "yes"}})
        assert status == 200, body
        await rest.wait_state(b["id"], "started")
        status, body = await rest.call("POST", f"{rest.api}/sandbox/{b['id']}/stop")
        assert status == 200, body
        await rest.wait_state(b["id"], "stopped")
        await rest.delete(c["id"])
        await rest.wait_state(c["id"], "gone")

        store = Path(stack.home) / "api" / "events.db"
        event_log = await asyncio.to_thread(EventLog, RecordedEvent, f"sqlite:///{store}")
        try:
            rebuilt = await replay.rebuild(event_log)
            directory = rebuilt.directory
            organization_id = replay.organization_of(directory, hash_key(stack.admin_api_key))
            assert organization_id is not None
            assert directory.sandboxes[a["id"]].labels == {"run": run, "relabelled": "yes"}
            assert directory.sandboxes[b["id"]].state == "stopped"
            assert directory.sandboxes[c["id"]].state == "destroyed"
            assert (organization_id, f"rp-{run}-c") not in directory.names
            last: dict[str, Any] = {}

            async def same_answers() -> bool:
                """Every sandbox of the organization as GET and the list show it. Sandboxes of other tests may
                still be settling: catch up and compare again until the answers agree."""
                await directory.catch_up()
                mismatches = []
                for sid, sandbox in list(directory.sandboxes.items()):
                    if sandbox.organization_id != organization_id:
                        continue
                    status, got = await rest.get(sid)
                    if sandbox.state == "destroyed":
                        if status != 404:
                            mismatches.append((sid, "destroyed but", status))
                        continue
                    want = render(sandbox)
                    for key in want.keys() - {"toolboxProxyUrl"}:
                        if status != 200 or got.get(key) != want[key]:
                            mismatches.append((sid, key, want[key], got.get(key) if status == 200 else status))
                listed, cursor = [], None
                while True:
                    status, page = await rest.call("GET", f"{rest.api}/sandbox",
                                                   params={"limit": "3", **({"cursor": cursor} if cursor else {})})
                    assert status == 200, page
                    listed += page["items"]
                    cursor = page["nextCursor"]
                    if not cursor:
                        break
                expected = [render(s) for s in replay.expected_list(directory, organization_id)]
                strip = lambda items: [{k: v for k, v in i.items() if k != "toolboxProxyUrl"} for i in items]  # noqa: E731
                if strip(listed) != strip(expected):
                    mismatches.append(("list", [i["id"] for i in expected], [i["id"] for i in listed]))
                last["mismatches"] = mismatches
                return not mismatches

            await wait_for(same_answers, timeout=30, interval=0.2, message=f"rebuilt != api: {last}")
            assert await replay.check(event_log, rebuilt) == []
        finally:
            await asyncio.to_thread(event_log.close)

        env = {**os.environ, "CORRAL_HOME": str(stack.home)}
        env.pop("CORRAL_DATABASE_URL", None)
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "corral_stack.cli", "replay", "--check", "--api-url", stack.api_url,
                             "--api-key", stack.admin_api_key], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "same answers" in done.stdout, done.stdout + done.stderr

        copy = tmp_path / "stopped" / "api" / "events.db"
        await asyncio.to_thread(snapshot_store, store, copy)
        env["CORRAL_HOME"] = str(copy.parent.parent)
        done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "corral_stack.cli", "replay", "--check"],
                                       env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "same answers" in done.stdout, done.stdout + done.stderr
    finally:
        for sandbox in (a, b, c):
            await rest.delete(sandbox["id"])
