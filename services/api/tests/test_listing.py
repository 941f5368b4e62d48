"""Listing sandboxes: parsing the query string, filtering, sorting and keyset cursors, as pure functions;
then the same through the REST route in-process (400s, paging, the OpenAPI document)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral_api.app import listing
from corral_api.app.listing import Filters, ListQuery, parse_query, select
from corral_api.bootstrap import build
from corral_api.domain import sandbox as domain
from corral_api.domain.errors import InvalidRequest
from corral_api.settings import Settings
from corral_contracts import codecs
from corral_contracts import runner as rc
from corral_contracts import sandbox as ev
from corral_contracts.codecs import RecordedEvent
from corral_contracts.subjects import RUNNERS_BUCKET
from corral_eventstore import EventLog
from corral_messaging import MemoryBus

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
ORG = "org-a"


def box(n: int, **change: Any) -> domain.Sandbox:
    """Sandbox number n: created n minutes after T0, updated 30 s later; any field overridable."""
    sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"box-{n}"))
    created = ev.SandboxCreated(sandbox_id=sid, organization_id=ORG, name=f"Box-{n:03d}", runner_id="r1",
                                image="img", snapshot="corral-default", user="daytona")
    sandbox = domain.created(created, 1, T0 + timedelta(minutes=n))
    defaults = {"state": "started", "updated_at": sandbox.created_at + timedelta(seconds=30)}
    return msgspec.structs.replace(sandbox, **{**defaults, **change})


def q(**params: Any) -> ListQuery:
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        for one in value if isinstance(value, list) else [value]:
            pairs.append((name, str(one)))
    return parse_query(pairs)


def ids(page: listing.Page) -> list[str]:
    return [s.id for s in page.items]


def every_page(sandboxes: list[domain.Sandbox], **params: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = select(sandboxes, ORG, q(**params, **({"cursor": cursor} if cursor else {})))
        pages.append(ids(page))
        cursor = page.next_cursor
        if cursor is None:
            return pages


def bad(message: str, **params: Any) -> None:
    with pytest.raises(InvalidRequest) as raised:
        q(**params)
    assert message in raised.value.message, raised.value.message


# --- parsing ---------------------------------------------------------------------------------------


def test_no_parameters_means_newest_first_a_hundred_per_page() -> None:
    query = parse_query([])
    assert (query.sort, query.order, query.limit, query.after, query.filters) == ("createdAt", "desc", 100, None,
                                                                                  Filters())


def test_lists_come_repeated_comma_separated_or_with_brackets() -> None:
    assert q(states=["started", "stopped"]).filters.states == ("started", "stopped")
    assert q(states="stopped,started").filters.states == ("started", "stopped")
    assert parse_query([("states[]", "error"), ("states", "started")]).filters.states == ("error", "started")
    assert q(snapshots="a, b,,", regionIds=["eu", "us"]).filters == Filters(snapshots=("a", "b"), targets=("eu", "us"))


def test_empty_values_are_absent() -> None:
    assert q(name="", states="", labels="", limit="", isPublic="").filters == Filters()


@pytest.mark.parametrize(("params", "message"), [
    ({"states": "running"}, "unknown state 'running'"),
    ({"states": "started,nope"}, "unknown state 'nope'"),
    ({"sandboxClasses": "vm"}, "unknown sandbox class 'vm'"),
    ({"limit": "0"}, "limit must be between 1 and 200"),
    ({"limit": "201"}, "limit must be between 1 and 200"),
    ({"limit": "ten"}, "limit must be an integer"),
    ({"limit": "1.5"}, "limit must be an integer"),
    ({"minCpu": "-1"}, "minCpu must be at least 0"),
    ({"maxMemoryGiB": "1e3"}, "maxMemoryGiB must be an integer"),
    ({"minDiskGiB": "4", "maxDiskGiB": "2"}, "minDiskGiB (4) must not be greater than maxDiskGiB (2)"),
    ({"minCpu": "99999999999999999999"}, "minCpu must be an integer"),
    ({"isPublic": "yes"}, "isPublic must be true or false"),
    ({"isRecoverable": "1"}, "isRecoverable must be true or false"),
    ({"includeErroredDeleted": "maybe"}, "includeErroredDeleted must be true or false"),
    ({"createdAtAfter": "yesterday"}, "createdAtAfter must be an ISO 8601"),
    ({"lastEventBefore": "2026-13-01"}, "lastEventBefore must be an ISO 8601"),
    ({"createdAtAfter": "2026-02-01", "createdAtBefore": "2026-01-01"}, "createdAtAfter must be earlier"),
    ({"labels": "{"}, "labels must be a JSON object of strings"),
    ({"labels": "[1]"}, "labels must be a JSON object of strings"),
    ({"labels": '{"a": 1}'}, "labels must be a JSON object of strings"),
    ({"sort": "size"}, "sort must be one of createdAt, updatedAt"),
    ({"order": "up"}, "order must be asc or desc"),
    ({"name": ["a", "b"]}, "name may be given only once"),
    ({"cursor": "!!!"}, "cursor is not valid"),
    ({"cursor": "bm90IGpzb24"}, "cursor is not valid"),
    ({"cursor": "WzEsMl0"}, "cursor is not valid"),
])
def test_bad_values_are_refused_with_a_message_naming_the_parameter(params: dict[str, Any], message: str) -> None:
    bad(message, **params)


def test_scalars_booleans_and_case() -> None:
    query = q(id="ABC", name="Box-0", isPublic="TRUE", isRecoverable="false", includeErroredDeleted="true",
              sort="MEMORY", order="ASC", limit="7", minGpu="0", maxGpu="1")
    f = query.filters
    assert (f.id, f.name, f.is_public, f.is_recoverable, f.include_errored_deleted) == ("abc", "box-0", True, False,
                                                                                        True)
    assert (query.sort, query.order, query.limit, f.min_gpu, f.max_gpu) == ("memoryGib", "asc", 7, 0, 1)
    assert q(sort="disk").sort == "diskGib" and q(sort="lastActivityAt").sort == "lastActivityAt"


@pytest.mark.parametrize("text", [
    "2026-03-01T00:10:00Z", "2026-03-01T00:10:00.000000+0000", "2026-03-01T00:10:00+00:00",
    "2026-03-01T00:10:00 00:00", "2026-03-01T01:10:00+01:00", "2026-03-01T00:10:00", "2026-03-01 00:10",
])
def test_times_are_iso_8601_in_any_offset_and_utc_without_one(text: str) -> None:
    assert q(createdAtAfter=text).filters.created_after == T0 + timedelta(minutes=10)


def test_a_date_alone_is_midnight_utc() -> None:
    assert q(lastEventBefore="2026-03-02").filters.last_event_before == T0 + timedelta(days=1)


# --- filtering -------------------------------------------------------------------------------------


def test_each_filter_selects_what_it_says() -> None:
    boxes = [
        box(1, labels={"team": "ml", "tier": "gpu"}, cpu=4, memory=8, disk=10, public=True),
        box(2, labels={"team": "ml"}, state="stopped", snapshot="py312", target="eu"),
        box(3, labels={"team": "web"}, state="error", recoverable=True, error_reason="oom"),
        box(4, name="other", cpu=2, memory=2, disk=5),
    ]
    one, two, three, four = (b.id for b in boxes)

    def found(**params: Any) -> set[str]:
        return set(ids(select(boxes, ORG, q(**params))))

    assert found() == {one, two, three, four}
    assert found(labels='{"team": "ml"}') == {one, two}
    assert found(labels='{"team": "ml", "tier": "gpu"}') == {one}
    assert found(labels='{"team": "ML"}') == set()
    assert found(states="started") == {one, four}
    assert found(states=["stopped", "error"]) == {two, three}
    assert found(snapshots="py312") == {two} and found(regionIds="eu,us") == {two}
    assert found(minCpu=2) == {one, four} and found(maxCpu=1) == {two, three}
    assert found(minMemoryGiB=2, maxMemoryGiB=4) == {four}
    assert found(minDiskGiB=10) == {one} and found(maxDiskGiB=3) == {two, three}
    assert found(minGpu=1) == set() and found(maxGpu=0) == {one, two, three, four}
    assert found(isPublic="true") == {one} and found(isPublic="false") == {two, three, four}
    assert found(isRecoverable="true") == {three}
    assert found(sandboxClasses="container") == {one, two, three, four} and found(sandboxClasses="linux-vm") == set()
    assert found(name="box-00") == {one, two, three} and found(name="OTH") == {four}
    assert found(id=one[:6].upper()) == {one}
    assert found(createdAtAfter=(T0 + timedelta(minutes=2)).isoformat()) == {three, four}
    assert found(createdAtBefore=(T0 + timedelta(minutes=2)).isoformat()) == {one}
    assert found(lastEventAfter=(T0 + timedelta(minutes=3, seconds=29)).isoformat(),
                 lastEventBefore=(T0 + timedelta(minutes=4, seconds=31)).isoformat()) == {three, four}
    assert found(autoDestroyAtBefore="2099-01-01") == set()
    assert found(states="started", minCpu=4, labels='{"team":"ml"}') == {one}


def test_destroyed_and_other_organizations_are_never_listed() -> None:
    boxes = [box(1), box(2, state="destroyed"), box(3, organization_id="org-b")]
    assert ids(select(boxes, ORG, q())) == [boxes[0].id]
    assert ids(select(boxes, ORG, q(states="destroyed"))) == []
    assert ids(select(boxes, "org-b", q())) == [boxes[2].id]


def test_a_sandbox_that_failed_while_being_destroyed_is_listed_only_on_request() -> None:
    failed = box(1, state="error", desired_state="destroyed")
    plain = box(2, state="error")
    assert ids(select([failed, plain], ORG, q())) == [plain.id]
    assert set(ids(select([failed, plain], ORG, q(includeErroredDeleted="true")))) == {failed.id, plain.id}


# --- sorting and paging ----------------------------------------------------------------------------


def test_newest_first_by_default_and_every_sort_field_both_ways() -> None:
    rng = random.Random(3)
    boxes = [box(n, cpu=rng.choice([1, 2, 4]), memory=rng.choice([1, 2]), disk=rng.choice([3, 5]),
                 state=rng.choice(["started", "stopped", "error"]), name=rng.choice(["b", "A", "c", "a"]) + str(n),
                 updated_at=T0 + timedelta(hours=rng.randrange(5), minutes=n)) for n in range(40)]
    assert ids(select(boxes, ORG, q(limit=200))) == [b.id for b in reversed(boxes)]
    keys = {
        "createdAt": lambda b: b.created_at, "updatedAt": lambda b: b.updated_at,
        "lastActivityAt": lambda b: b.updated_at, "name": lambda b: b.name.lower(), "state": lambda b: b.state,
        "cpu": lambda b: b.cpu, "memoryGib": lambda b: b.memory, "diskGib": lambda b: b.disk,
    }
    assert set(keys) == set(listing.SORTS)
    for sort, key in keys.items():
        for order in ("asc", "desc"):
            expected = sorted(boxes, key=lambda b: (key(b), b.id), reverse=order == "desc")
            assert [x for page in every_page(boxes, sort=sort, order=order, limit=7) for x in page] \
                == [b.id for b in expected], (sort, order)


def test_pages_against_a_brute_force_answer() -> None:
    """Random sandboxes, random queries: the pages, concatenated, are exactly the filtered, sorted set."""
    rng = random.Random(11)
    boxes = [box(n, cpu=rng.choice([1, 2, 4]), memory=rng.choice([1, 2, 8]), state=rng.choice(["started", "stopped"]),
                 labels={"team": rng.choice(["ml", "web"])}, public=rng.random() < 0.3,
                 organization_id=rng.choice([ORG, ORG, "org-b"])) for n in range(120)]
    for _ in range(60):
        params: dict[str, Any] = {"limit": rng.choice([1, 2, 5, 13, 200]), "sort": rng.choice(list(listing.SORTS)),
                                  "order": rng.choice(["asc", "desc"])}
        if rng.random() < 0.5:
            params["minCpu"] = rng.choice([1, 2, 4])
        if rng.random() < 0.5:
            params["labels"] = '{"team": "%s"}' % rng.choice(["ml", "web"])
        if rng.random() < 0.3:
            params["states"] = rng.choice(["started", "stopped"])
        if rng.random() < 0.3:
            params["isPublic"] = rng.choice(["true", "false"])
        query = q(**params)
        key = listing.SORTS[query.sort]
        expected = sorted((b for b in boxes if b.organization_id == ORG and listing.matches(b, query.filters)),
                          key=lambda b: (key(b), b.id), reverse=query.order == "desc")
        pages = every_page(boxes, **params)
        assert [x for page in pages for x in page] == [b.id for b in expected], params
        assert all(len(page) == query.limit for page in pages[:-1]) and len(pages[-1]) <= query.limit


def test_cursors_are_stable_under_inserts_and_removals_between_pages() -> None:
    boxes = [box(n) for n in range(10, 20)]
    first = select(boxes, ORG, q(limit=4))
    assert ids(first) == [b.id for b in boxes[::-1][:4]]
    # Meanwhile: a newer and an older sandbox appear, one already served and one not yet served go away.
    served, unserved = first.items[1], boxes[3]
    changed = [b for b in boxes if b not in (served, unserved)] + [box(30), box(1)]
    rest = []
    cursor = first.next_cursor
    while cursor:
        page = select(changed, ORG, q(limit=4, cursor=cursor))
        rest += ids(page)
        cursor = page.next_cursor
    expected_rest = [b.id for b in boxes[::-1][4:] if b is not unserved] + [box(1).id]
    assert rest == expected_rest
    assert not set(rest) & set(ids(first))


def test_the_last_page_has_no_cursor_and_an_exact_fit_has_no_empty_page() -> None:
    boxes = [box(n) for n in range(6)]
    assert [len(p) for p in every_page(boxes, limit=3)] == [3, 3]
    assert [len(p) for p in every_page(boxes, limit=5)] == [5, 1]
    assert select([], ORG, q()).next_cursor is None


def test_a_cursor_only_fits_the_query_it_came_from() -> None:
    boxes = [box(n, labels={"team": "ml"}) for n in range(5)]
    cursor = select(boxes, ORG, q(limit=2, labels='{"team":"ml"}', sort="name", order="asc")).next_cursor
    assert cursor is not None
    same = q(limit=3, labels='{"team": "ml"}', sort="name", order="asc", cursor=cursor)
    assert select(boxes, ORG, same).items  # another limit, same filter written differently: fine
    for other in ({"sort": "cpu", "order": "asc"}, {"sort": "name", "order": "desc"},
                  {"sort": "name", "order": "asc", "labels": '{"team":"web"}'},
                  {"sort": "name", "order": "asc"}):
        bad("cursor belongs to another sort, order or filter", cursor=cursor, **other)
    tampered = listing.encode_cursor(q(sort="name", order="asc", labels='{"team":"ml"}'), 12, boxes[0].id)
    bad("cursor is not valid", cursor=tampered, sort="name", order="asc", labels='{"team":"ml"}')
    bad("cursor is not valid", cursor=cursor[:-3], sort="name", order="asc", labels='{"team":"ml"}')


# --- through the REST route, in-process -----------------------------------------------------------

KEY = "crl_listing-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    bus = MemoryBus()
    settings = Settings(home="/nonexistent", database_url="memory://", nats_url="memory://", admin_api_key=KEY,
                        create_wait=0.01)
    api = build(settings, bus=bus, event_log=EventLog(RecordedEvent, "memory://"))
    await bus.connect()
    await bus.ensure_streams()
    beat = rc.RunnerHeartbeat(runner_id="r1", toolbox_url="http://runner", started_at="now")
    await bus.kv_put(RUNNERS_BUCKET, "r1", codecs.encode(beat))
    test_client = TestClient(TestServer(api.app))
    await test_client.start_server()
    yield test_client
    await test_client.close()


async def test_the_route_filters_pages_and_refuses_bad_values_with_json_400s(client: TestClient) -> None:
    made = []
    for n in range(5):
        response = await client.post("/api/sandbox", headers=AUTH, json={
            "name": f"route-{n}", "cpu": 1 + n % 2, "labels": {"suite": "route", "odd": str(n % 2)}})
        assert response.status == 200, await response.text()
        made.append((await response.json())["id"])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"labels": '{"suite": "route"}', "limit": "2", "sort": "name", "order": "asc",
                  **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/sandbox", headers=AUTH, params=params)
        body = await response.json()
        assert response.status == 200 and set(body) == {"items", "nextCursor"}, body
        seen += [item["name"] for item in body["items"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"route-{n}" for n in range(5)] and pages == 3
    response = await client.get("/api/sandbox", headers=AUTH, params=[("minCpu", "2"), ("states", "creating"),
                                                                      ("labels", '{"suite":"route"}')])
    assert sorted(i["name"] for i in (await response.json())["items"]) == ["route-1", "route-3"]
    for params in ({"limit": "0"}, {"states": "bogus"}, {"isPublic": "1"}, {"createdAtAfter": "soon"},
                   {"cursor": "garbage!"}, {"sort": "size"}, {"labels": "{"}):
        response = await client.get("/api/sandbox", headers=AUTH, params=params)
        body = await response.json()
        assert response.status == 400 and body["statusCode"] == 400 and body["message"], (params, body)


async def test_the_openapi_document_describes_every_list_parameter(client: TestClient) -> None:
    document = await (await client.get("/api/openapi.json")).json()
    parameters = {p["name"]: p for p in document["paths"]["/api/sandbox"]["get"]["parameters"]}
    assert set(parameters) == {name for name, _, _ in listing.PARAMETERS}
    assert {"labels", "states", "snapshots", "regionIds", "minCpu", "maxMemoryGiB", "isPublic", "isRecoverable",
            "createdAtAfter", "lastEventBefore", "sort", "order", "limit", "cursor"} <= set(parameters)
    assert all(p["in"] == "query" and p["description"] for p in parameters.values())
    assert parameters["limit"]["schema"]["maximum"] == 200
