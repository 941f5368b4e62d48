"""The Socket.IO event stream the SDK listens to: state changes arrive as they are recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from corral_stack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


async def connect(stack: Stack, token: str) -> tuple[socketio.AsyncClient, asyncio.Queue[tuple[str, Any]]]:
    received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False)
    for name in ("sandbox.created", "sandbox.state.updated"):
        client.on(name, (lambda n: lambda data: received.put_nowait((n, data)))(name))
    origin = stack.api_url.removesuffix("/api")
    await client.connect(origin, socketio_path="/api/socket.io/", auth={"token": token}, transports=["websocket"],
                         wait_timeout=10)
    return client, received


async def next_state(received: asyncio.Queue[tuple[str, Any]], sandbox_id: str, state: str) -> dict[str, Any]:
    while True:
        name, data = await asyncio.wait_for(received.get(), 60)
        if name == "sandbox.state.updated" and data["sandbox"]["id"] == sandbox_id and data["newState"] == state:
            return data  # type: ignore[no-any-return]


async def test_state_changes_are_pushed(stack: Stack, rest) -> None:  # type: ignore[no-untyped-def]
    client, received = await connect(stack, stack.admin_api_key)
    try:
        sandbox = await rest.create(labels={"suite": "realtime"})
        sid = sandbox["id"]
        first = await next_state(received, sid, "creating")
        assert first["oldState"] is None and first["sandbox"]["labels"]["suite"] == "realtime"
        started = await next_state(received, sid, "started")
        assert started["oldState"] == "creating" and started["sandbox"]["toolboxProxyUrl"] == rest.toolbox
        await rest.call("POST", f"{rest.api}/sandbox/{sid}/stop")
        assert (await next_state(received, sid, "stopping"))["oldState"] == "started"
        await next_state(received, sid, "stopped")
        await rest.delete(sid)
        await next_state(received, sid, "destroyed")
    finally:
        await client.disconnect()


async def test_a_wrong_token_is_refused(stack: Stack) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(stack, "not-a-key")


async def test_the_sdk_listens_to_the_stream(stack: Stack) -> None:
    from daytona import AsyncDaytona, DaytonaConfig

    from corral_testing.waiting import wait_for

    async with AsyncDaytona(DaytonaConfig(api_key=stack.admin_api_key, api_url=stack.api_url)) as daytona:
        sandbox = await daytona.create(timeout=120)
        try:
            dispatcher = daytona._event_dispatcher
            assert dispatcher is not None
            await wait_for(lambda: dispatcher.is_connected, timeout=20,
                           message=f"the SDK did not connect to the event stream: {dispatcher.is_failed}")
            await sandbox.stop(timeout=60)
            assert sandbox.state == "stopped"
        finally:
            await daytona.delete(sandbox, timeout=60, wait=True)
