"""Request/reply answers to the api: decode, ask the desk, encode (a refusal travels in the reply)."""

from __future__ import annotations

from corral_contracts import codecs
from corral_contracts import webhooks as wh

from ..app.desk import Desk, Refusal


class DeskServer:
    def __init__(self, desk: Desk):
        self._desk = desk

    async def deliveries(self, data: bytes) -> bytes:
        request = codecs.webhook_deliveries_request.decode(data)
        try:
            return codecs.encode(self._desk.deliveries(request))
        except Refusal as refusal:
            return codecs.encode(wh.DeliveriesReply(error=refusal.error))

    async def replay(self, data: bytes) -> bytes:
        request = codecs.webhook_replay_request.decode(data)
        try:
            return codecs.encode(await self._desk.replay(request))
        except Refusal as refusal:
            return codecs.encode(wh.ReplayReply(error=refusal.error))

    async def send_test(self, data: bytes) -> bytes:
        request = codecs.webhook_send_test_request.decode(data)
        try:
            return codecs.encode(await self._desk.send_test(request))
        except Refusal as refusal:
            return codecs.encode(wh.SendTestReply(error=refusal.error))
