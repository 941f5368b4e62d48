"""The attack suite: every test is an attack run against a real sandbox (or the real API) that must fail.

A passing test is an attack stopped; a failing test is an attack that succeeded. Positive controls
(`@pytest.mark.control`: the target really answers when not attacked, general egress works) are not
counted. At the end the suite prints `security: N attacks tried, M stopped` (and the attacks not
tried, with why). More attack families (cross-tenant API calls) join by adding tests here.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from corral_stack.stack import Stack

from .outside import Outside, outside_network

_outcomes: dict[str, str] = {}
_not_tried: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here) and not item.get_closest_marker("control"):
            item.add_marker(pytest.mark.attack)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "attack" not in report.keywords:
        return
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _not_tried[report.nodeid] = str(reason).removeprefix("Skipped: ")
    elif report.when == "call" or report.failed:
        if report.failed or _outcomes.get(report.nodeid) != "succeeded":
            _outcomes[report.nodeid] = "succeeded" if report.failed else "stopped"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _outcomes and not _not_tried:
        return
    stopped = sum(1 for outcome in _outcomes.values() if outcome == "stopped")
    write = terminalreporter.write_line
    write(f"security: {len(_outcomes)} attacks tried, {stopped} stopped")
    for nodeid, outcome in _outcomes.items():
        if outcome != "stopped":
            write(f"  attack SUCCEEDED: {nodeid}")
    for nodeid, reason in _not_tried.items():
        write(f"  not tried: {nodeid} ({reason})")


class Api:
    """REST and toolbox calls as the admin key's organization: every call returns the response."""

    def __init__(self, client: httpx.AsyncClient, stack: Stack):
        self.client = client
        self.stack = stack
        self.auth = {"Authorization": f"Bearer {stack.admin_api_key}"}

    async def create(self, **body: Any) -> dict[str, Any]:
        response = await self.client.post(f"{self.stack.api_url}/sandbox", json=body, headers=self.auth)
        assert response.status_code == 200, response.text
        sandbox = response.json()
        assert sandbox["state"] == "started", sandbox
        return sandbox  # type: ignore[no-any-return]

    async def get(self, sandbox_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{self.stack.api_url}/sandbox/{sandbox_id}", headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def delete(self, sandbox_id: str) -> None:
        await self.client.delete(f"{self.stack.api_url}/sandbox/{sandbox_id}", headers=self.auth)

    async def network(self, sandbox_id: str, **body: Any) -> httpx.Response:
        return await self.client.post(f"{self.stack.api_url}/sandbox/{sandbox_id}/network-settings", json=body,
                                      headers=self.auth)

    async def events(self, sandbox_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"{self.stack.api_url}/sandbox/{sandbox_id}/events", headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]

    async def toolbox(self, method: str, sandbox_id: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, f"{self.stack.toolbox_url}/{sandbox_id}/{path}",
                                         headers=self.auth, **kwargs)

    async def sh(self, sandbox_id: str, command: str, timeout: int | None = None) -> tuple[int, str]:
        body: dict[str, Any] = {"command": command}
        if timeout:
            body["timeout"] = timeout
        response = await self.toolbox("POST", sandbox_id, "process/execute", json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        return int(result["exitCode"]), str(result["result"])

    async def python(self, sandbox_id: str, code: str) -> tuple[int, str]:
        response = await self.toolbox("POST", sandbox_id, "process/code-run", json={"code": code, "language": "python"})
        assert response.status_code == 200, response.text
        result = response.json()
        return int(result["exitCode"]), str(result["result"])


@pytest.fixture(scope="session")
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0)) as client:
        yield Api(client, stack)


@pytest.fixture(scope="session")
async def sandboxes(api: Api) -> AsyncIterator[dict[str, str]]:
    """Two attackers shared by the suite: the default (unprivileged) user, and root (`user: root`)."""
    made: dict[str, str] = {}
    try:
        for user in ("daytona", "root"):
            made[user] = (await api.create(user=user, labels={"corral.security": "attacker"}))["id"]
        yield made
    finally:
        for sandbox_id in made.values():
            await api.delete(sandbox_id)


@pytest.fixture(scope="session")
def outside(stack: Stack) -> Iterator[Outside]:
    """A stand-in for the internet and for the metadata service, in a network namespace of our own."""
    with outside_network() as network:
        yield network
