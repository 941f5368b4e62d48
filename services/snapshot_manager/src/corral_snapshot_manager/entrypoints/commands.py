"""The snapshot manager's command consumer (`cmd.snapshot_manager.<builds|volumes>.>`)."""

from __future__ import annotations

from corral_contracts import codecs
from corral_messaging import Delivery, PoisonMessage, TransientError

from ..app.builds import Builder
from ..app.ports import StorageInUse


class CommandDesk:
    def __init__(self, builder: Builder):
        self._builder = builder

    async def handle(self, delivery: Delivery) -> None:
        try:
            envelope = codecs.snapshot_manager_commands.decode(delivery.data)
        except Exception as error:
            raise PoisonMessage(f"undecodable snapshot manager command: {error}") from error
        try:
            await self._builder.handle(envelope.payload, envelope.command_id)
        except StorageInUse as error:
            raise TransientError(f"volume storage still in use: {error}") from error
