"""Choosing a runner: among runners whose heartbeat is fresh, the one with the fewest sandboxes; between
equally loaded runners, one that already holds the snapshot (no image to fetch first)."""

from __future__ import annotations

from collections.abc import Iterable

from corral_contracts.runner import RunnerHeartbeat

from .errors import NoCapacity


def choose_runner(runners: Iterable[RunnerHeartbeat], placed: dict[str, int], snapshot_ref: str = "") -> str:
    """`placed` counts the sandboxes the api already assigned per runner (fresher than heartbeats)."""
    candidates = sorted(runners, key=lambda r: (placed.get(r.runner_id, r.sandboxes),
                                                bool(snapshot_ref) and snapshot_ref not in r.snapshots, r.runner_id))
    if not candidates:
        raise NoCapacity("No runner is available to host a sandbox; is a runner running?")
    return candidates[0].runner_id
