"""Rate limits: per-minute allowances in fixed windows, one counter per (bucket, key). Pure: the caller
passes the time, so tests need no clock.

A window opens at a key's first hit and lasts `window` seconds; it allows `limit` hits. The answer
carries what Daytona's `X-RateLimit-*-<bucket>` headers say: the limit, what remains and the seconds
until the window resets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BUCKETS = ("authenticated", "sandbox-create", "sandbox-lifecycle", "anonymous", "failed-auth")


@dataclass(frozen=True)
class Verdict:
    bucket: str
    allowed: bool
    limit: int
    remaining: int
    reset: int
    """Whole seconds until the window resets."""

    def headers(self) -> dict[str, str]:
        return {f"X-RateLimit-Limit-{self.bucket}": str(self.limit),
                f"X-RateLimit-Remaining-{self.bucket}": str(self.remaining),
                f"X-RateLimit-Reset-{self.bucket}": str(self.reset)}


class RateLimiter:
    """Counters for every (bucket, key). Old windows are dropped as time passes (bounded memory)."""

    def __init__(self, window: float = 60.0, *, sweep_every: int = 10_000):
        self.window = window
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._sweep_every = sweep_every
        self._hits = 0

    def hit(self, bucket: str, key: str, limit: int, now: float) -> Verdict:
        """Count one request; `allowed` is False once the window's allowance is spent (the refused
        request is not counted, so a client that backs off gets its allowance back at the reset)."""
        self._hits += 1
        if self._hits % self._sweep_every == 0:
            self.sweep(now)
        opened, used = self._windows.get((bucket, key), (now, 0))
        if now - opened >= self.window:
            opened, used = now, 0
        reset = max(0, math.ceil(opened + self.window - now))
        if used >= limit:
            self._windows[(bucket, key)] = (opened, used)
            return Verdict(bucket, False, limit, 0, reset)
        used += 1
        self._windows[(bucket, key)] = (opened, used)
        return Verdict(bucket, True, limit, limit - used, reset)

    def sweep(self, now: float) -> int:
        stale = [k for k, (opened, _) in self._windows.items() if now - opened >= self.window]
        for k in stale:
            del self._windows[k]
        return len(stale)

    def __len__(self) -> int:
        return len(self._windows)
