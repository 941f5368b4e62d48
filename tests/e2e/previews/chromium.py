"""Headless Chromium (Debian's `chromium`), driven over the DevTools protocol with aiohttp.

The browser is installed from the machine's apt sources when missing (tests run as root on CI). It
resolves `*.localhost` to the loopback by itself, so preview URLs work without DNS set-up.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from corral_testing.waiting import wait_for

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-proxy-server", "--disable-dev-shm-usage", "--remote-debugging-port=0")


def ensure_chromium() -> str:
    """The browser's path; installed with apt-get when missing (as root, as on CI)."""
    if not os.path.exists(CHROMIUM):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise RuntimeError(f"{CHROMIUM} is missing; install Debian's `chromium` package (apt-get install chromium)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=1200)
    return CHROMIUM


class Chromium:
    """`async with Chromium() as browser: text = await browser.read(url, expression)`."""

    def __init__(self) -> None:
        self._profile = Path(tempfile.mkdtemp(prefix="corral-chromium-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Chromium:
        path = ensure_chromium()
        self._proc = subprocess.Popen([path, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port_file = self._profile / "DevToolsActivePort"
            await wait_for(lambda: port_file.exists() and len(port_file.read_text().splitlines()) >= 2
                           or self._proc.poll() is not None, timeout=60, interval=0.05,  # type: ignore[union-attr]
                           message="Chromium did not open its DevTools port")
            if self._proc.poll() is not None:
                raise RuntimeError(f"Chromium exited with {self._proc.returncode}")
            port, ws_path = port_file.read_text().splitlines()[:2]
            self._http = aiohttp.ClientSession()
            self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{port}{ws_path}", max_msg_size=0)
            self._reader = asyncio.create_task(self._read())
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(self._proc.wait, 10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                await asyncio.to_thread(self._proc.wait)
        shutil.rmtree(self._profile, ignore_errors=True)

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            data = json.loads(message.data)
            future = self._waiting.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        message_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self._ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 60)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})  # type: ignore[no-any-return]

    async def read(self, url: str, expression: str, timeout: float = 60.0) -> Any:
        """Open `url` in a new tab and evaluate `expression` there until it gives a value (not null)."""
        target = (await self.call("Target.createTarget", url="about:blank"))["targetId"]
        session = (await self.call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
        try:
            await self.call("Page.navigate", session, url=url)

            async def value() -> Any:
                result = await self.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
                return result.get("result", {}).get("value")

            return await wait_for(value, timeout=timeout, interval=0.05, message=f"nothing from {expression} at {url}")
        finally:
            await self.call("Target.closeTarget", targetId=target)
