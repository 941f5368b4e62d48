"""Choosing a runner: among runners whose heartbeat is fresh, the one with the fewest sandboxes."""

from __future__ import annotations

from collections.abc import Iterable

from corral_contracts.runner import RunnerHeartbeat

from .errors import NoCapacity


def choose_runner(runners: Iterable[RunnerHeartbeat], placed: dict[str, int]) -> str:
    """`placed` counts the sandboxes the api already assigned per runner (fresher than heartbeats)."""
    candidates = sorted(runners, key=lambda r: (placed.get(r.runner_id, r.sandboxes), r.runner_id))
    if not candidates:
        raise NoCapacity("No runner is available to host a sandbox; is a runner running?")
    return candidates[0].runner_id
