"""Reaching preview URLs from a test: `*.localhost` names resolved to the loopback (browsers and curl
do that themselves; Python's resolver does not), the preview app started inside a sandbox, and the
URL forms of a stack."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from corral_stack.stack import Stack

APP_SOURCE = Path(__file__).resolve().parent.parent / "preview_app.py"
APP_PATH = "/tmp/preview_app.py"


class LocalhostResolver(AbstractResolver):
    """`localhost` and every `*.localhost` name is the loopback (RFC 6761), as in browsers and curl."""

    def __init__(self) -> None:
        self._default = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        if host == "localhost" or host.endswith(".localhost"):
            return [ResolveResult(hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0,
                                  flags=socket.AI_NUMERICHOST)]
        return await self._default.resolve(host, port, family)

    async def close(self) -> None:
        await self._default.close()


def client_session(**kwargs: Any) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(resolver=LocalhostResolver())
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120),
                                 cookie_jar=aiohttp.DummyCookieJar(), **kwargs)


def host_url(stack: Stack, port: int, label: str) -> str:
    return f"http://{port}-{label}.preview.localhost:{stack.config.proxy_port}"


def path_url(stack: Stack, port: int, label: str) -> str:
    return f"{stack.proxy_url}/preview/{label}/{port}"


def start_app(sandbox: Any, port: int, host: str = "127.0.0.1") -> None:
    """Run preview_app.py on `port` inside the sandbox (bound to `host`) and wait until it listens."""
    if sandbox.process.exec(f"test -e {APP_PATH}").exit_code != 0:
        sandbox.fs.upload_file(APP_SOURCE.read_bytes(), APP_PATH)
    marker = f"/tmp/preview-app-{port}.ready"
    sandbox.process.exec(f"rm -f {marker}; nohup python3 {APP_PATH} {port} {host} > /tmp/preview-app-{port}.log 2>&1"
                         " < /dev/null &")
    deadline = time.monotonic() + 30
    while sandbox.process.exec(f"test -e {marker}").exit_code != 0:
        if time.monotonic() > deadline:
            raise AssertionError(sandbox.process.exec(f"cat /tmp/preview-app-{port}.log").result)


async def start_app_async(sandbox: Any, port: int, host: str = "127.0.0.1") -> None:
    await asyncio.to_thread(start_app, sandbox, port, host)
