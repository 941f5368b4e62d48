"""One platform for every preview test (its lifecycle clock fast: a timer minute lasts 2 s), one
sandbox running the preview app on 127.0.0.1:8080, and a second organization's API key."""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from daytona import CreateSandboxFromSnapshotParams, Daytona

from corral_stack.stack import Stack
from corral_testing.stack import running_stack
from corral_testing.waiting import wait_for

from ..conftest import config
from .preview_client import client_session, host_url, start_app

APP_PORT = 8080
OTHER_ORGANIZATION = "00000000-0000-4000-8000-0000000000b2"
PREVIEW_ENV = {
    "CORRAL_MINUTE_SECONDS": "2", "CORRAL_SUPERVISE_INTERVAL": "0.5", "CORRAL_HEARTBEAT_INTERVAL": "0.5",
    "CORRAL_ACTIVITY_REPORT_SECONDS": "0.5",
    "CORRAL_PREVIEW_BROWSER_WAIT": "0",  # browsers get the "starting" page at once (tested)
}


@dataclass
class AppSandbox:
    id: str
    token: str
    sandbox: Any


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    with running_stack(env=PREVIEW_ENV) as started:
        yield started


@pytest.fixture(scope="package")
def daytona(stack: Stack) -> Daytona:
    return Daytona(config(stack))


@pytest.fixture(scope="package")
def app(stack: Stack, daytona: Daytona) -> Iterator[AppSandbox]:
    sandbox = daytona.create(CreateSandboxFromSnapshotParams(auto_stop_interval=0), timeout=120)
    try:
        start_app(sandbox, APP_PORT)
        yield AppSandbox(id=sandbox.id, token=sandbox.get_preview_link(APP_PORT).token, sandbox=sandbox)
    finally:
        daytona.delete(sandbox, timeout=60)


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with client_session() as session:
        yield session


@pytest.fixture(scope="package")
def other_key(stack: Stack, app: AppSandbox) -> Iterator[str]:
    """An API key of another organization, made by the operator over REST."""
    body = json.dumps({"name": f"previews-other-{secrets.token_hex(4)}"}).encode()
    request = urllib.request.Request(f"{stack.api_url}/organizations", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {stack.admin_api_key}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        yield str(json.loads(answer.read())["apiKey"]["value"])


async def known_to_the_proxy(stack: Stack, key: str, sandbox_id: str) -> None:
    """Wait until the proxy knows the key (an unknown key is 401, a known one of another org is 404)."""
    async with client_session() as session:
        async def known() -> bool:
            async with session.get(host_url(stack, APP_PORT, sandbox_id) + "/hello",
                                   headers={"Authorization": f"Bearer {key}"}) as response:
                return response.status == 404

        await wait_for(known, timeout=30, interval=0.1, message="the proxy never learnt the other organization's key")
