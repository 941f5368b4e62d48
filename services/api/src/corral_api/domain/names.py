"""The name index: one tiny aggregate per (organization, name), so a name is claimed atomically with
the sandbox that takes it, and a clash is a version conflict rather than a race."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from corral_contracts import sandbox as ev


def name_key(organization_id: str, name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"corral:sandbox-name:{organization_id}:{name}")


class NameSlot:
    """Folded state of one name: who holds it (None = free) and the slot's version."""

    __slots__ = ("holder", "version")

    def __init__(self) -> None:
        self.holder: str | None = None
        self.version = 0

    def apply(self, event: Any, version: int) -> "NameSlot":
        if isinstance(event, ev.SandboxNameClaimed):
            self.holder = event.sandbox_id
        elif isinstance(event, ev.SandboxNameReleased):
            self.holder = None
        self.version = version
        return self
