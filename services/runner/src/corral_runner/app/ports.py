"""The ports the runner's use cases need; adapters implement them, tests may fake them."""

from __future__ import annotations

from typing import Any, Protocol

from ..domain.isolation import ContainerSpec
from ..domain.reconcile import Observed


class EngineError(Exception):
    """The engine refused (bad image, bad spec): retrying will not help."""


class EngineUnavailable(Exception):
    """The engine could not be reached or failed transiently: retry later."""


class ContainerEngine(Protocol):
    async def ensure_network(self) -> None: ...
    async def create(self, spec: ContainerSpec) -> str: ...
    """Create the container if absent (idempotent); returns its id."""
    async def start(self, name: str) -> None: ...
    async def stop(self, name: str, *, force: bool, grace: float = 10.0) -> int | None: ...
    """Returns the exit code, None if the container does not exist."""
    async def remove(self, name: str) -> None: ...
    async def state(self, name: str) -> dict[str, Any] | None: ...
    """Docker's `State` object, or None if the container does not exist."""
    async def logs_tail(self, name: str, lines: int = 20) -> str: ...
    async def list_managed(self, runner_id: str) -> list[Observed]: ...


class FactSink(Protocol):
    async def __call__(self, fact: Any, *, msg_id: str) -> None: ...
