"""When to try a delivery again, and when an endpoint has failed long enough to be disabled. Pure.

Standard Webhooks / Svix schedule: the first attempt at once, then retries 5 s, 5 min, 30 min, 2 h, 5 h,
10 h and 10 h after each failure (eight attempts over about 27.5 hours), each delay with some jitter so
retries of many deliveries do not arrive together. `scale` shrinks the schedule for tests
(`CORRAL_WEBHOOKS_RETRY_SCALE`), as `CORRAL_MINUTE_SECONDS` does for lifecycle timers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

RETRY_DELAYS: tuple[float, ...] = (5.0, 5 * 60.0, 30 * 60.0, 2 * 3600.0, 5 * 3600.0, 10 * 3600.0, 10 * 3600.0)
"""Seconds before the retry after the 1st, 2nd, ... failed attempt of a round."""

DISABLE_AFTER = 5 * 24 * 3600.0
"""An endpoint whose every attempt failed for this long (seconds) is disabled."""


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    delays: tuple[float, ...] = RETRY_DELAYS
    scale: float = 1.0
    jitter: float = 0.1
    """Each delay is spread uniformly over ±this fraction."""
    disable_after: float = DISABLE_AFTER

    def __post_init__(self) -> None:
        if self.scale <= 0 or not 0 <= self.jitter < 1 or self.disable_after <= 0:
            raise ValueError("scale and disable_after must be positive, jitter in [0, 1)")

    @property
    def attempts(self) -> int:
        """Attempts in one round: the first plus one per delay."""
        return len(self.delays) + 1

    def delay_after(self, failures: int, rand: float) -> float | None:
        """Seconds before the next attempt once `failures` attempts of this round have failed; None when
        that was the last one. `rand` in [0, 1) draws the jitter."""
        if failures < 1:
            return 0.0
        if failures > len(self.delays):
            return None
        return self.delays[failures - 1] * self.scale * (1 + self.jitter * (2 * rand - 1))

    def next_attempt(self, failures: int, now: datetime, rand: float) -> datetime | None:
        delay = self.delay_after(failures, rand)
        return None if delay is None else now + timedelta(seconds=delay)

    def should_disable(self, failing_since: datetime | None, now: datetime) -> bool:
        """Every attempt to the endpoint failed since `failing_since`, for at least `disable_after`."""
        return failing_since is not None and (now - failing_since).total_seconds() >= self.disable_after
