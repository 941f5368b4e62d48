"""The first sandbox lifecycle end to end through REST: api -> event store -> outbox -> JetStream ->
runner -> Docker -> agent, and back; toolbox calls through proxy -> runner -> agent."""

from __future__ import annotations

import pytest

from corral_testing.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

REQUIRED = {"id": str, "organizationId": str, "name": str, "user": str, "env": dict, "labels": dict, "public": bool,
            "networkBlockAll": bool, "kvm": bool, "target": str, "cpu": int, "gpu": int, "memory": int, "disk": int,
            "toolboxProxyUrl": str}


async def test_create_run_stop_start_delete(rest) -> None:  # type: ignore[no-untyped-def]
    sandbox = await rest.create(labels={"code-toolbox-language": "python", "suite": "lifecycle"}, env={"GREETING": "hi"},
                                someFieldWeDoNotKnow={"nested": True})
    sid = sandbox["id"]
    try:
        assert sandbox["state"] == "started"
        for key, kind in REQUIRED.items():
            assert type(sandbox[key]) is kind, (key, sandbox[key])
        assert sandbox["toolboxProxyUrl"] == rest.toolbox and not sandbox["toolboxProxyUrl"].endswith("/")
        assert sandbox["labels"]["suite"] == "lifecycle"

        status, result = await rest.execute(sid, 'echo "$GREETING from $(whoami)"; pwd; exit 3')
        assert status == 200 and result == {"exitCode": 3, "result": "hi from daytona\n/home/daytona\n"}

        status, result = await rest.code_run(sid, "import sys; print(6 * 7); print('oops', file=sys.stderr)")
        assert status == 200 and result["exitCode"] == 0 and "42\n" in result["result"]
        status, result = await rest.code_run(sid, "console.log([1, 2, 3].map(x => x * 2).join(','))", "javascript")
        assert status == 200 and result["exitCode"] == 0 and result["result"] == "2,4,6\n"

        status, result = await rest.execute(sid, "mkdir -p work && echo kept > work/file.txt")
        assert (status, result["exitCode"]) == (200, 0)

        status, stopped = await rest.call("POST", f"{rest.api}/sandbox/{sid}/stop")
        assert status == 200 and stopped["state"] in ("stopping", "stopped")
        await rest.wait_state(sid, "stopped")

        async def refused_by_proxy() -> bool:  # the proxy learns of the stop from EVT, a moment later
            status, body = await rest.execute(sid, "true")
            return status == 409 and body["code"] == "SANDBOX_NOT_STARTED"

        await wait_for(refused_by_proxy, timeout=10, message="the proxy kept routing to a stopped sandbox")

        status, starting = await rest.call("POST", f"{rest.api}/sandbox/{sid}/start")
        assert status == 200 and starting["id"] == sid
        await rest.wait_state(sid, "started")
        status, result = await rest.execute(sid, "cat work/file.txt")
        assert status == 200 and result == {"exitCode": 0, "result": "kept\n"}
    finally:
        await rest.delete(sid)
    await rest.wait_state(sid, "gone")

    async def unknown_to_proxy() -> bool:  # the proxy learns of the deletion from EVT, a moment later
        status, body = await rest.execute(sid, "true")
        assert status in (404, 409), (status, body)
        return status == 404 and body["statusCode"] == 404

    await wait_for(unknown_to_proxy, timeout=10, message="the proxy kept a deleted sandbox")


async def test_execute_options_and_timeout(rest) -> None:  # type: ignore[no-untyped-def]
    sid = (await rest.create())["id"]
    try:
        status, result = await rest.execute(sid, "echo $A-$B; pwd", envs={"A": "x", "B": "y"}, cwd="/tmp")
        assert status == 200 and result["result"] == "x-y\n/tmp\n"
        status, result = await rest.execute(sid, "pwd", cwd="sub/../")
        assert status in (200, 400)
        status, body = await rest.execute(sid, "sleep 30 & sleep 30; wait", timeout=1)
        assert status == 408 and body["code"] == "PROCESS_EXECUTION_TIMEOUT"
        status, result = await rest.execute(sid, "ps -eo comm | grep -c '^sleep$' || true")
        assert status == 200 and result["result"].strip() == "0", "the timed-out process group was killed"
        status, body = await rest.code_run(sid, "x", language="cobol")
        assert status == 400
    finally:
        await rest.delete(sid)


async def test_errors_are_json_and_never_500(rest) -> None:  # type: ignore[no-untyped-def]
    api = rest.api
    status, body = await rest.call("GET", f"{api}/sandbox", headers={"Authorization": "Bearer nope"})
    assert status == 401 and body["statusCode"] == 401 and body["code"]
    status, body = await rest.call("GET", f"{api}/sandbox", headers={"Authorization": ""})
    assert status == 401
    status, body = await rest.call("POST", f"{api}/sandbox", json={"cpu": "two"})
    assert status == 400 and "cpu" in body["message"]
    status, body = await rest.call("POST", f"{api}/sandbox", json={"labels": {"a": 1}})
    assert status == 400
    status, body = await rest.call("POST", f"{api}/sandbox", data=b"{not json",
                                   headers={"Content-Type": "application/json"})
    assert status == 400
    status, body = await rest.call("POST", f"{api}/sandbox", json={"cpu": 1000})
    assert status == 403 and body["code"] == "QUOTA_EXCEEDED"  # over the per-sandbox maximum, as Daytona
    status, body = await rest.get("00000000-0000-4000-8000-00000000dead")
    assert status == 404 and body["code"] == "NOT_FOUND"
    status, body = await rest.call("POST", f"{api}/sandbox/no-such-box/start")
    assert status == 404
    status, body = await rest.call("GET", f"{api}/sandbox", params={"labels": "[1"})
    assert status == 400
    status, body = await rest.call("POST", f"{rest.toolbox}/00000000-0000-4000-8000-00000000dead/process/execute",
                                   json={"command": "true"})
    assert status == 404


async def test_names_labels_list_and_conflicts(rest) -> None:  # type: ignore[no-untyped-def]
    first = await rest.create(name="named-box", labels={"team": "a", "k": "1"})
    second = await rest.create(labels={"team": "b", "k": "1"})
    try:
        status, body = await rest.call("POST", f"{rest.api}/sandbox", json={"name": "named-box"})
        assert status == 409 and body["statusCode"] == 409
        status, by_name = await rest.get("named-box")
        assert status == 200 and by_name["id"] == first["id"]

        status, page = await rest.call("GET", f"{rest.api}/sandbox", params={"labels": '{"team": "a"}'})
        assert status == 200 and [s["id"] for s in page["items"]] == [first["id"]]
        status, page = await rest.call("GET", f"{rest.api}/sandbox", params={"labels": '{"k": "1"}', "limit": "1"})
        assert status == 200 and len(page["items"]) == 1 and page["nextCursor"]
        status, rest_page = await rest.call("GET", f"{rest.api}/sandbox",
                                            params={"labels": '{"k": "1"}', "limit": "1", "cursor": page["nextCursor"]})
        assert {page["items"][0]["id"], rest_page["items"][0]["id"]} == {first["id"], second["id"]}
        assert not rest_page.get("nextCursor")

        status, labels = await rest.call("PUT", f"{rest.api}/sandbox/{second['id']}/labels",
                                         json={"labels": {"team": "c", "code-toolbox-language": "python"}})
        assert status == 200 and labels == {"labels": {"team": "c", "code-toolbox-language": "python"}}
        status, got = await rest.get(second["id"])
        assert got["labels"] == {"team": "c", "code-toolbox-language": "python"}
        status, body = await rest.call("PUT", f"{rest.api}/sandbox/{second['id']}/labels", json={"labels": "x"})
        assert status == 400

        status, events = await rest.call("GET", f"{rest.api}/sandbox/{first['id']}/events")
        assert status == 200 and [e["type"] for e in events["items"]][:2] == ["SandboxCreated", "SandboxStarted"]
    finally:
        await rest.delete(first["id"])
        await rest.delete(second["id"])
    await rest.wait_state(first["id"], "gone")
    again = await rest.create(name="named-box")
    await rest.delete(again["id"])


async def test_openapi_is_served(rest) -> None:  # type: ignore[no-untyped-def]
    status, doc = await rest.call("GET", f"{rest.api}/openapi.json", headers={"Authorization": ""})
    assert status == 200 and doc["openapi"].startswith("3.") and "/api/sandbox" in doc["paths"]
