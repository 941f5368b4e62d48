"""The retry schedule and the disable policy: pure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from corral_webhooks.domain.schedule import RETRY_DELAYS, RetryPolicy

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_the_schedule_is_immediately_then_5s_5min_30min_2h_5h_10h_10h() -> None:
    policy = RetryPolicy(jitter=0.0)
    assert policy.attempts == 8
    assert policy.delay_after(0, 0.5) == 0.0
    assert [policy.delay_after(n, 0.5) for n in range(1, 8)] == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert policy.delay_after(8, 0.5) is None, "after the eighth failed attempt there is no more"
    assert policy.next_attempt(2, NOW, 0.5) == NOW + timedelta(minutes=5)
    assert policy.next_attempt(8, NOW, 0.5) is None


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.5, 0.999])
def test_jitter_spreads_each_delay_within_its_bounds(rand: float) -> None:
    policy = RetryPolicy(jitter=0.1)
    for failures, base in enumerate(RETRY_DELAYS, start=1):
        delay = policy.delay_after(failures, rand)
        assert delay is not None and base * 0.9 <= delay <= base * 1.1
    assert policy.delay_after(3, 0.0) != policy.delay_after(3, 0.999), "jitter moves the retry"


def test_scale_shrinks_the_whole_schedule_for_tests() -> None:
    policy = RetryPolicy(scale=0.001, jitter=0.0)
    assert policy.delay_after(1, 0.5) == pytest.approx(0.005)
    assert policy.delay_after(7, 0.5) == pytest.approx(36.0)


def test_an_endpoint_is_disabled_after_failing_for_the_whole_period() -> None:
    policy = RetryPolicy(disable_after=5 * 24 * 3600)
    assert not policy.should_disable(None, NOW)
    assert not policy.should_disable(NOW - timedelta(days=4, hours=23), NOW)
    assert policy.should_disable(NOW - timedelta(days=5), NOW)


def test_nonsense_policies_are_refused() -> None:
    for bad in ({"scale": 0}, {"jitter": 1.0}, {"disable_after": 0}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]
