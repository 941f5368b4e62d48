"""Cross-tenant attacks: organization B, holding a key with every permission, goes after organization A's
resources through every REST operation that takes an id, and through the toolbox proxy. Each attempt
must be answered as if A's resource did not exist (404; 403 for operator-only routes, which reveal
nothing either), and A's resources must be untouched afterwards.

The operations come from the OpenAPI document (the committed one, which a test pins to the served
one), so routes merged later (snapshots, volumes, webhooks, ...) are attacked without editing this
file: their resources are created in A from the document's own request schema (`make_resource`); a
family whose create needs more than that needs a maker there. Each attempt is its own test, so the
security suite counts it as one attack; this module also prints its own line,
`security (cross-tenant): N attacks tried, N stopped`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from corral_stack.stack import Stack
from corral_testing.waiting import wait_for

pytestmark = pytest.mark.e2e

PARAM = re.compile(r"{(\w+)}")
LITERALS = {"minutes": "5", "port": "3000", "token": "abcdefghijklmnop", "isPublic": "true", "is_public": "true"}
"""Path parameters that name no resource."""
TOOLBOX_CALLS = (
    ("POST", "process/execute", {"command": "id"}, None),
    ("POST", "process/code-run", {"code": "print(1)", "language": "python"}, None),
    ("GET", "files", None, {"path": "/"}),
    ("GET", "files/info", None, {"path": "/etc/hostname"}),
    ("POST", "files/bulk-download", {"paths": ["/etc/hostname"]}, None),
    ("POST", "files/folder", None, {"path": "/tmp/cross-tenant", "mode": "755"}),
    ("DELETE", "files", None, {"path": "/tmp/cross-tenant"}),
    ("GET", "process/session", None, None),
    ("POST", "process/session", {"sessionId": "cross-tenant"}, None),
    ("GET", "work-dir", None, None),
    ("GET", "user-home-dir", None, None),
    ("GET", "git/status", None, {"path": "/tmp"}),
    ("GET", "system/metrics", None, None),
)


class Client:
    def __init__(self, session: aiohttp.ClientSession, stack: Stack, key: str):
        self.session = session
        self.api = stack.api_url
        self.toolbox = stack.toolbox_url
        self.key = key

    async def call(self, method: str, url: str, *, json: Any = None, params: Any = None) -> tuple[int, Any]:
        if not url.startswith("http"):
            url = self.api + url.removeprefix("/api")
        async with self.session.request(method, url, json=json, params=params,
                                        headers={"Authorization": f"Bearer {self.key}"}) as response:
            raw = await response.read()
            try:
                return response.status, await response.json() if raw else None
            except (aiohttp.ContentTypeError, ValueError):
                return response.status, raw


@dataclass
class Tenants:
    operator: Client
    a: Client
    b: Client
    a_org: dict[str, Any]
    b_org: dict[str, Any]
    a_sandbox: dict[str, Any]
    b_sandbox: dict[str, Any]
    a_key_name: str
    document: dict[str, Any]
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    """A's resource of each path family (`sandbox`, `api-keys`, `organizations`, ...)."""


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def sample(document: dict[str, Any], schema: dict[str, Any], name: str = "", run: str = "") -> Any:
    """The smallest valid value of a schema: required fields only, plausible scalars."""
    schema = _resolve(document, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(document, s).get("type") != "null"]
            return sample(document, options[0], name, run)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {prop: sample(document, schema["properties"][prop], prop, run) for prop in schema.get("required", [])}
    if kind == "array":
        return []
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if "enum" in schema:
        return schema["enum"][0]
    return f"ct-{name.lower()}-{run}" if "name" in name.lower() else "x"


def family(path: str) -> str:
    return path.removeprefix("/api/").split("/", 1)[0]


async def make_webhook_endpoint(tenants: Tenants, run: str) -> dict[str, Any]:
    # a public address (no DNS needed), subscribed to an event A never causes here: nothing is delivered
    status, created = await tenants.a.call("POST", "/api/webhooks/endpoints", json={
        "url": f"http://1.1.1.1/{run}", "eventTypes": ["snapshot.removed"]})
    assert status == 200 and isinstance(created, dict), created
    return created


async def make_snapshot(tenants: Tenants, run: str) -> dict[str, Any]:
    status, created = await tenants.a.call("POST", "/api/snapshots", json={
        "name": f"ct-snapshot-{run}", "imageName": "corral/sandbox:default"})
    assert status == 200 and isinstance(created, dict), created
    return created


MAKERS = {"webhooks": make_webhook_endpoint, "snapshots": make_snapshot}
"""Families whose resource the schema alone cannot make (a URL that passes the address rule, an image)."""


async def make_resource(tenants: Tenants, fam: str, run: str) -> dict[str, Any]:
    """A's resource of a family added after this test was written: `POST /api/<family>` with the
    smallest body its schema accepts."""
    if fam in MAKERS:
        return await MAKERS[fam](tenants, run)
    operation = tenants.document["paths"].get(f"/api/{fam}", {}).get("post")
    assert operation is not None, f"no POST /api/{fam} to create A's resource with: add a maker to MAKERS"
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    body = sample(tenants.document, schema, run=run) if schema else None
    status, created = await tenants.a.call("POST", f"/api/{fam}", json=body)
    assert status in (200, 201) and isinstance(created, dict), \
        f"could not create A's {fam} resource from its schema ({status} {created}): add a maker to MAKERS"
    return created


def param_value(tenants: Tenants, fam: str, name: str) -> str:
    if name in LITERALS:
        return LITERALS[name]
    if name == "organizationId":
        return str(tenants.a_org["id"])
    resource = tenants.resources[fam]
    if name == "id" or name.endswith("Id") or name == "idOrName":
        return str(resource["id"])
    return str(resource.get("name") or resource["id"])


@pytest.fixture(scope="module")
async def tenants(stack: Stack) -> AsyncIterator[Tenants]:
    run = os.urandom(3).hex()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        operator = Client(session, stack, stack.admin_api_key)
        orgs = []
        for label in ("a", "b"):
            status, org = await operator.call("POST", "/api/organizations", json={"name": f"tenant-{label}-{run}"})
            assert status == 201, org
            orgs.append(org)
        a, b = (Client(session, stack, org["apiKey"]["value"]) for org in orgs)
        status, document = await a.call("GET", "/api/openapi.json")
        assert status == 200
        shared = f"shared-{run}"
        sandboxes = []
        for client in (a, b):  # the same name in two organizations: names are per organization
            status, sandbox = await client.call("POST", "/api/sandbox", json={"name": shared, "labels": {"run": run}})
            assert status == 200, sandbox
            sandboxes.append(sandbox)
        key_name = f"a-extra-{run}"
        status, extra = await a.call("POST", "/api/api-keys", json={"name": key_name, "permissions": ["write:sandboxes"]})
        assert status == 201, extra
        found = Tenants(operator=operator, a=a, b=b, a_org=orgs[0], b_org=orgs[1], a_sandbox=sandboxes[0],
                        b_sandbox=sandboxes[1], a_key_name=key_name, document=document)
        found.resources = {"sandbox": sandboxes[0], "api-keys": extra, "organizations": orgs[0], "audit": orgs[0]}
        try:
            for fam in sorted({family(p) for p in document["paths"] if "{" in p} - found.resources.keys()):
                found.resources[fam] = await make_resource(found, fam, run)
            for sandbox in sandboxes:
                await wait_for(lambda s=sandbox: _started(a if s is sandboxes[0] else b, s["id"]), timeout=90,
                               interval=0.2, message=f"sandbox {sandbox['id']} never started")
            yield found
        finally:
            for client, sandbox in ((a, sandboxes[0]), (b, sandboxes[1])):
                await client.call("DELETE", f"/api/sandbox/{sandbox['id']}")


async def _started(client: Client, sandbox_id: str) -> bool:
    status, body = await client.call("GET", f"/api/sandbox/{sandbox_id}")
    assert status == 200 and body["state"] != "error", body
    return bool(body["state"] == "started")


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, methods in document["paths"].items() if "{" in path
            for method, op in methods.items() if not op.get("security") == []]


DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "proto-schemas" / "openapi.json").read_text())
"""The committed OpenAPI document (the served one: see the test below), read at collection time so that
every operation is its own attack."""
ATTACKED = operations(DOCUMENT)
LISTINGS = [p for p, methods in DOCUMENT["paths"].items() if "{" not in p and "get" in methods
            and methods["get"].get("security") != []]
WEBSOCKETS = ("process/pty/create-connect?id=ct&cols=80&rows=24", "process/interpreter/execute")


@pytest.mark.control
def test_the_attacked_document_is_the_served_one(tenants: Tenants) -> None:
    assert tenants.document == DOCUMENT
    assert len(ATTACKED) >= 20, "the OpenAPI document lost its operations"


@pytest.mark.parametrize(("method", "template"), [(m, t) for m, t, _ in ATTACKED], ids=[f"{m} {t}" for m, t, _ in ATTACKED])
async def test_another_organizations_resource_is_404(method: str, template: str, tenants: Tenants) -> None:
    op = DOCUMENT["paths"][template][method.lower()]
    path = PARAM.sub(lambda m: param_value(tenants, family(template), m.group(1)), template)
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    body = sample(DOCUMENT, schema) if schema else None
    status, answer = await tenants.b.call(method, path, json=body)
    expected = 403 if op.get("x-permission") == "operator" else 404
    stopped = status == expected and isinstance(answer, dict) and answer.get("statusCode") == status
    assert stopped, f"B {method} {path}: {status} {answer!r:.300} (expected {expected})"


async def test_names_resolve_within_the_callers_organization(tenants: Tenants) -> None:
    name = tenants.a_sandbox["name"]
    status, own = await tenants.b.call("GET", f"/api/sandbox/{name}")
    stopped = status == 200 and own["id"] == tenants.b_sandbox["id"]
    assert stopped, f"{status} {own!r:.300}"
    status, own = await tenants.a.call("GET", f"/api/sandbox/{name}")
    assert status == 200 and own["id"] == tenants.a_sandbox["id"]


@pytest.mark.parametrize("path", LISTINGS)
async def test_a_listing_never_shows_another_organizations_items(path: str, tenants: Tenants) -> None:
    a_ids = {str(r["id"]) for r in tenants.resources.values() if r.get("id")} | {tenants.a_key_name,
                                                                                str(tenants.a_org["id"])}
    status, answer = await tenants.b.call("GET", path)
    if status == 403:  # B lacks no permission, so this is an operator-only listing
        return
    owners = set(_organizations(answer)) - {tenants.b_org["id"], ""}  # "": general (shared) snapshots
    # B's own audit trail names the ids B itself attacked (its own requests); nothing else may
    leaked = sorted(i for i in a_ids if i in str(answer)) if family(path) != "audit" else []
    stopped = status < 500 and not leaked and not owners  # a 4xx (a required query missing) shows nothing
    assert stopped, f"{path}: {status}, shows {leaked}, items of organizations {owners}"


def _organizations(answer: Any) -> Iterator[str]:
    """Every `organizationId` anywhere in an answer."""
    if isinstance(answer, dict):
        for key, value in answer.items():
            if key == "organizationId" and isinstance(value, str):
                yield value
            else:
                yield from _organizations(value)
    elif isinstance(answer, list):
        for item in answer:
            yield from _organizations(item)


@pytest.mark.parametrize(("method", "tail", "body", "params"), TOOLBOX_CALLS,
                         ids=[f"{m} {t}" for m, t, _, _ in TOOLBOX_CALLS])
async def test_the_toolbox_refuses_another_organizations_key(method: str, tail: str, body: Any, params: Any,
                                                            tenants: Tenants) -> None:
    url = f"{tenants.a.toolbox}/{tenants.a_sandbox['id']}/{tail}"
    status, answer = await tenants.b.call(method, url, json=body, params=params)
    # refused by the proxy itself (a 404 from inside the sandbox, e.g. a missing file, would mean it got in)
    stopped = status == 404 and isinstance(answer, dict) and answer.get("source") == "DAYTONA_PROXY"
    assert stopped, f"{status} {answer!r:.300}"


@pytest.mark.parametrize("tail", WEBSOCKETS)
async def test_toolbox_websockets_refuse_another_organizations_key(tail: str, tenants: Tenants) -> None:
    try:
        async with tenants.b.session.ws_connect(f"{tenants.b.toolbox}/{tenants.a_sandbox['id']}/{tail}",
                                                headers={"Authorization": f"Bearer {tenants.b.key}"}):
            status = 101
    except aiohttp.WSServerHandshakeError as refused:
        status = refused.status
    assert status == 404


@pytest.mark.control
async def test_as_own_key_still_works_and_its_resources_are_untouched(tenants: Tenants) -> None:
    """Runs last in this module: none of B's attempts changed anything of A's."""
    status, answer = await tenants.a.call("POST", f"{tenants.a.toolbox}/{tenants.a_sandbox['id']}/process/execute",
                                          json={"command": "echo mine"})
    assert status == 200 and answer["result"].strip() == "mine", "A's own toolbox calls must work"
    status, sandbox = await tenants.a.call("GET", f"/api/sandbox/{tenants.a_sandbox['id']}")
    assert status == 200 and sandbox["state"] == "started" and sandbox["labels"] == tenants.a_sandbox["labels"]
    status, key = await tenants.a.call("GET", f"/api/api-keys/{tenants.a_key_name}")
    assert status == 200
    status, org = await tenants.operator.call("GET", f"/api/organizations/{tenants.a_org['id']}")
    assert status == 200 and not org["suspended"] and org["quota"] == tenants.a_org["quota"]
