"""The Socket.IO event stream at `/api/socket.io/` (Engine.IO v4, WebSocket transport).

The SDK connects with `{"token": <api key>}` in the CONNECT packet; each connection joins its
organization's room and receives `sandbox.created` and `sandbox.state.updated`
(`{"sandbox": {...}, "oldState", "newState"}`), so its waits for `started`/`stopped`/`destroyed`
wake on the event instead of their next one-second poll. Events come from the sandbox directory,
i.e. from the event log, after they are recorded.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

import msgspec
import socketio
from aiohttp import web

from ..app.directory import SandboxDirectory
from ..domain.sandbox import Sandbox
from .dto import sandbox_dto

log = logging.getLogger(__name__)

PATH = "/api/socket.io/"


def room(organization_id: str) -> str:
    return f"organization:{organization_id}"


class EventStream:
    def __init__(self, directory: SandboxDirectory, toolbox_proxy_url: str):
        self._directory = directory
        self._toolbox_url = toolbox_proxy_url
        self.server = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"], logger=False,
                                           engineio_logger=False, cors_allowed_origins=[])
        self.server.on("connect", self._connect)
        self._queue: asyncio.Queue[tuple[Sandbox | None, Sandbox]] = asyncio.Queue(maxsize=10_000)
        self._task: asyncio.Task[None] | None = None

    def attach(self, app: web.Application) -> None:
        self.server.attach(app, socketio_path=PATH)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        token = auth.get("token") if isinstance(auth, dict) else None
        entry = self._directory.identity.authenticate(token, datetime.now(timezone.utc)) \
            if isinstance(token, str) else None
        if entry is None:
            raise socketio.exceptions.ConnectionRefusedError("invalid API key")
        await self.server.enter_room(sid, room(entry.organization_id))
        return True

    def changed(self, before: Sandbox | None, after: Sandbox) -> None:
        """Directory listener: called for every folded change, in log order."""
        if before is None or before.state != after.state:
            try:
                self._queue.put_nowait((before, after))
            except asyncio.QueueFull:
                log.warning("realtime queue full; dropping a notification (clients still poll)")

    async def _emit_forever(self) -> None:
        while True:
            before, after = await self._queue.get()
            data = msgspec.to_builtins(sandbox_dto(after, self._toolbox_url))
            target = room(after.organization_id)
            try:
                if before is None:
                    await self.server.emit("sandbox.created", data, room=target)
                await self.server.emit("sandbox.state.updated",
                                       {"sandbox": data, "oldState": before.state if before else None,
                                        "newState": after.state}, room=target)
            except Exception:
                log.exception("could not emit a sandbox event")

    async def start(self) -> None:
        self._directory.listeners.append(self.changed)
        self._task = asyncio.create_task(self._emit_forever(), name="realtime")

    async def stop(self) -> None:
        if self.changed in self._directory.listeners:
            self._directory.listeners.remove(self.changed)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
