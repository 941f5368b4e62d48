"""The durable consumer of `EVT`: platform events in stream order, one at a time, acked once recorded."""

from __future__ import annotations

from corral_contracts import codecs
from corral_messaging import Delivery, PoisonMessage

from ..app.fanout import Fanout
from ..domain.catalog import AGGREGATES


class EventFeed:
    def __init__(self, fanout: Fanout):
        self._fanout = fanout
        self.handled = 0

    async def handle(self, delivery: Delivery) -> None:
        aggregate = delivery.subject.split(".")[1] if delivery.subject.count(".") >= 2 else ""
        if aggregate not in AGGREGATES:
            return  # runner facts, name indexes, keys...: nothing a webhook reports
        try:
            envelope = codecs.recorded_events.decode(delivery.data)
        except Exception as error:
            raise PoisonMessage(f"undecodable platform event: {error}") from error
        await self._fanout.handle(envelope)
        self.handled += 1
