from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from daytona import Daytona, DaytonaConfig

from corral_stack.stack import Stack
from corral_testing.waiting import wait_for


class Rest:
    """A thin REST client for tests: every call returns (status, json)."""

    def __init__(self, session: aiohttp.ClientSession, stack: Stack):
        self.session = session
        self.api = stack.api_url
        self.toolbox = stack.toolbox_url
        self.auth = {"Authorization": f"Bearer {stack.admin_api_key}"}

    async def call(self, method: str, url: str, *, json: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None, params: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, url, json=json, data=data, params=params,
                                        headers={**self.auth, **(headers or {})}) as response:
            body = await response.read()
            ctype = response.headers.get("Content-Type", "")
            return response.status, (await response.json() if "json" in ctype and body else body)

    async def create(self, **body: Any) -> dict[str, Any]:
        status, sandbox = await self.call("POST", f"{self.api}/sandbox", json=body)
        assert status == 200, sandbox
        return sandbox  # type: ignore[no-any-return]

    async def get(self, sandbox_id: str) -> tuple[int, Any]:
        return await self.call("GET", f"{self.api}/sandbox/{sandbox_id}")

    async def wait_state(self, sandbox_id: str, state: str, timeout: float = 60.0) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def reached() -> bool:
            status, body = await self.get(sandbox_id)
            seen["last"] = body
            if state == "gone":
                return status == 404
            assert status == 200, body
            assert body["state"] != "error", body
            return bool(body["state"] == state)

        await wait_for(reached, timeout=timeout, interval=0.05, message=f"{sandbox_id} never reached {state}: {seen}")
        return seen["last"]  # type: ignore[no-any-return]

    async def wait_state_any(self, sandbox_id: str, state: str, timeout: float = 60.0) -> dict[str, Any]:
        """Like `wait_state`, for any state (error states included)."""
        seen: dict[str, Any] = {}

        async def reached() -> bool:
            status, body = await self.get(sandbox_id)
            seen["last"] = body
            return status == 200 and body["state"] == state

        await wait_for(reached, timeout=timeout, interval=0.1, message=f"{sandbox_id} never reached {state}: {seen}")
        return seen["last"]  # type: ignore[no-any-return]

    async def execute(self, sandbox_id: str, command: str, **extra: Any) -> tuple[int, Any]:
        return await self.call("POST", f"{self.toolbox}/{sandbox_id}/process/execute", json={"command": command, **extra})

    async def code_run(self, sandbox_id: str, code: str, language: str = "python", **extra: Any) -> tuple[int, Any]:
        return await self.call("POST", f"{self.toolbox}/{sandbox_id}/process/code-run",
                               json={"code": code, "language": language, **extra})

    async def delete(self, sandbox_id: str) -> None:
        status, body = await self.call("DELETE", f"{self.api}/sandbox/{sandbox_id}")
        assert status in (200, 404), body


def config(stack: Stack) -> DaytonaConfig:
    """The official SDK's configuration for a stack: its API URL and admin key, nothing else."""
    return DaytonaConfig(api_key=stack.admin_api_key, api_url=stack.api_url)


@pytest.fixture(scope="module")
def sandbox_id(stack: Stack) -> Iterator[str]:
    """One sandbox shared by a module's tests, created and deleted through the SDK."""
    daytona = Daytona(config(stack))
    sandbox = daytona.create(timeout=120)
    try:
        yield sandbox.id
    finally:
        daytona.delete(sandbox, timeout=60)


@pytest.fixture
async def rest(stack: Stack) -> AsyncIterator[Rest]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield Rest(session, stack)
