"""The runner's command consumer: only `cmd.runner.<this runner>.>`, one command at a time."""

from __future__ import annotations

from corral_contracts import codecs
from corral_messaging import Delivery, PoisonMessage, TransientError

from ..app.ports import EngineUnavailable
from ..app.sandboxes import SandboxRunner


class CommandDesk:
    def __init__(self, runner: SandboxRunner):
        self._runner = runner

    async def handle(self, delivery: Delivery) -> None:
        try:
            envelope = codecs.runner_commands.decode(delivery.data)
        except Exception as error:
            raise PoisonMessage(f"undecodable runner command: {error}") from error
        try:
            await self._runner.handle(envelope.payload, envelope.command_id)
        except EngineUnavailable as error:
            raise TransientError(str(error)) from error
