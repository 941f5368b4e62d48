"""Previews and the sandbox lifecycle: a visit wakes a stopped or archived sandbox and is then served;
preview traffic (requests, open WebSockets) keeps a sandbox with a short auto-stop alive unless it says
not to; the routing table comes from events, so a restarted proxy routes at once and a second replica
agrees with the first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from daytona import CreateSandboxFromSnapshotParams

from corral_stack.ports import free_port, is_listening
from corral_stack.stack import Stack
from corral_testing.waiting import wait_for

from .conftest import APP_PORT, AppSandbox
from .preview_client import host_url, path_url, start_app_async

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture
async def fresh(daytona: Any) -> AsyncIterator[Any]:
    """A sandbox of the test's own, with the preview app on 127.0.0.1:8080 and auto-stop off."""
    sandbox = await asyncio.to_thread(daytona.create, CreateSandboxFromSnapshotParams(auto_stop_interval=0),
                                      timeout=120)
    try:
        await start_app_async(sandbox, APP_PORT)
        yield sandbox
    finally:
        await asyncio.to_thread(daytona.delete, sandbox, 60)


async def events(rest: Any, sandbox_id: str) -> list[dict[str, Any]]:
    status, body = await rest.call("GET", f"{rest.api}/sandbox/{sandbox_id}/events")
    assert status == 200, body
    return body["items"]  # type: ignore[no-any-return]


async def visit_while_starting_the_app(client: aiohttp.ClientSession, rest: Any, sandbox: Any, url: str,
                                       token: str) -> tuple[int, str]:
    """A request to the preview of a sandbox that is down; once the sandbox runs again the test starts its
    app (nothing else would), and the request, held by the proxy meanwhile, is answered."""
    async def visit() -> tuple[int, str]:
        async with client.get(url, headers={"X-Daytona-Preview-Token": token}) as response:
            return response.status, await response.text()

    visiting = asyncio.create_task(visit())
    try:
        await rest.wait_state(sandbox.id, "started", timeout=90)
        await start_app_async(sandbox, APP_PORT)
        return await asyncio.wait_for(visiting, 60)
    finally:
        visiting.cancel()


async def test_a_visit_wakes_a_stopped_then_an_archived_sandbox_and_is_served(
        stack: Stack, fresh: Any, client: aiohttp.ClientSession, rest: Any) -> None:
    token = fresh.get_preview_link(APP_PORT).token
    url = host_url(stack, APP_PORT, fresh.id) + "/hello"
    await asyncio.to_thread(fresh.stop, 60)
    await rest.wait_state(fresh.id, "stopped")

    # A browser is not left hanging: it gets a page that reloads itself, and the sandbox is on its way.
    async with client.get(url, headers={"X-Daytona-Preview-Token": token, "Accept": "text/html"}) as response:
        page = await response.text()
    assert response.status == 503 and response.headers["Retry-After"] == "2"
    assert 'http-equiv="refresh"' in page and "starting" in page

    assert await visit_while_starting_the_app(client, rest, fresh, url, token) == (200, "hello from the sandbox\n")
    starts = [e for e in await events(rest, fresh.id) if e["type"] == "SandboxStartRequested"]
    assert [(e["data"]["reason"], e["meta"]["Corral-Actor"]) for e in starts] == [("preview-visit", "proxy")]

    await asyncio.to_thread(fresh.stop, 60)
    await rest.wait_state(fresh.id, "stopped")
    status, body = await rest.call("POST", f"{rest.api}/sandbox/{fresh.id}/archive")
    assert status == 200, body
    await rest.wait_state(fresh.id, "archived", timeout=120)
    assert await visit_while_starting_the_app(client, rest, fresh, url, token) == (200, "hello from the sandbox\n")
    [restore] = [e for e in await events(rest, fresh.id) if e["type"] == "SandboxRestoreRequested"]
    assert (restore["data"]["reason"], restore["meta"]["Corral-Actor"]) == ("preview-visit", "proxy")


async def sweeps(rest: Any) -> int:
    status, health = await rest.call("GET", f"{rest.api}/health")
    return int(health["sweeps"])


async def state_of(rest: Any, sandbox_id: str) -> str:
    status, body = await rest.get(sandbox_id)
    assert status == 200, body
    return str(body["state"])


async def test_preview_traffic_keeps_a_sandbox_alive_unless_told_not_to(
        stack: Stack, fresh: Any, client: aiohttp.ClientSession, rest: Any) -> None:
    """Auto-stop after one timer minute (2 s here). Requests, then an idle open WebSocket, keep it up
    over many sweeps; requests marked X-Daytona-Skip-Last-Activity-Update do not."""
    token = {"X-Daytona-Preview-Token": fresh.get_preview_link(APP_PORT).token}
    url = host_url(stack, APP_PORT, fresh.id)
    status, body = await rest.call("POST", f"{rest.api}/sandbox/{fresh.id}/autostop/1")
    assert status == 200 and body["autoStopInterval"] == 1

    start = await sweeps(rest)
    while await sweeps(rest) < start + 12:  # 12 sweeps of 0.5 s: three timer minutes
        async with client.get(url + "/hello", headers=token) as response:
            assert response.status == 200
        assert await state_of(rest, fresh.id) == "started", "auto-stopped while its preview was in use"

    async with client.ws_connect(url + "/ws", headers=token) as ws:
        start = await sweeps(rest)
        await wait_for(lambda: _at_least(rest, start + 12), timeout=60, message="the supervisor stopped sweeping")
        assert await state_of(rest, fresh.id) == "started", "auto-stopped while a preview WebSocket was open"
        await ws.send_str("still here")
        assert await ws.receive_str() == "still here"

    quiet = {**token, "X-Daytona-Skip-Last-Activity-Update": "true"}

    async def stopped_meanwhile() -> bool:
        async with client.get(url + "/hello", headers=quiet) as response:
            await response.read()  # (once the stop has begun, a request may wake it again: any answer)
        return await state_of(rest, fresh.id) != "started"

    await wait_for(stopped_meanwhile, timeout=60, interval=0.05,
                   message="requests that skip the activity update kept the sandbox awake")
    stop = [e for e in await events(rest, fresh.id) if e["type"] == "SandboxStopRequested"][-1]
    assert stop["data"]["reason"] == "auto-stop"


async def _at_least(rest: Any, count: int) -> bool:
    return await sweeps(rest) >= count


async def test_a_restarted_proxy_routes_at_once_and_a_second_replica_agrees(
        stack: Stack, app: AppSandbox, client: aiohttp.ClientSession) -> None:
    token = {"X-Daytona-Preview-Token": app.token}
    signed = app.sandbox.create_signed_preview_url(APP_PORT, 300)
    await asyncio.to_thread(stack.restart, "proxy")
    async with client.get(host_url(stack, APP_PORT, app.id) + "/hello", headers=token) as response:
        assert response.status == 200 and await response.text() == "hello from the sandbox\n"
    async with client.get(signed.url + "/hello") as response:
        assert response.status == 200

    port = free_port(stack.config.host)
    stack.add_service("proxy-2", "corral_proxy", CORRAL_PROXY_HOST=stack.config.host, CORRAL_PROXY_PORT=str(port))
    try:
        await wait_for(lambda: is_listening(stack.config.host, port), timeout=30, message="the second proxy never listened")
        second = f"http://{stack.config.host}:{port}"
        replicas = {
            "first": (host_url(stack, APP_PORT, app.id), path_url(stack, APP_PORT, signed.token)),
            "second": (f"http://{APP_PORT}-{app.id}.preview.localhost:{port}", f"{second}/preview/{signed.token}/{APP_PORT}"),
        }
        for name, (by_id, by_signed) in replicas.items():
            async with client.get(by_id + "/hello", headers=token) as response:
                assert response.status == 200, name
            async with client.get(by_signed + "/hello") as response:
                assert response.status == 200, name
            async with client.get(by_id + "/hello") as response:
                assert response.status == 401, name

        app.sandbox.expire_signed_preview_url(APP_PORT, signed.token)
        app.sandbox.set_public(True)
        try:
            for name, (by_id, by_signed) in replicas.items():
                async def agrees() -> bool:
                    async with client.get(by_signed + "/hello") as revoked, client.get(by_id + "/hello") as public:
                        return revoked.status == 403 and public.status == 200

                await wait_for(agrees, timeout=10, message=f"the {name} proxy disagrees")
        finally:
            app.sandbox.set_public(False)
    finally:
        stack.services.pop("proxy-2").stop()
