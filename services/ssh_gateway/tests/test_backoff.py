"""The per-address slow-down of failed logins (pure)."""

from __future__ import annotations

import pytest

from corral_ssh_gateway.domain.backoff import Backoff


def test_free_failures_then_doubling_delays_up_to_the_cap() -> None:
    backoff = Backoff(free=3, base=1.0, cap=5.0, window=600)
    delays = []
    for n in range(7):
        delays.append(backoff.delay("10.0.0.1", now=float(n)))
        backoff.failed("10.0.0.1", now=float(n))
    assert delays == [0, 0, 0, 1.0, 2.0, 4.0, 5.0]
    assert backoff.delay("10.0.0.2", now=7.0) == 0  # per address


def test_success_and_quiet_time_forget_an_address() -> None:
    backoff = Backoff(free=1, base=1.0, cap=8.0, window=100)
    for n in range(4):
        backoff.failed("a", now=float(n))
        backoff.failed("b", now=float(n))
    assert backoff.delay("a", now=4) == 8.0
    backoff.succeeded("a")
    assert backoff.delay("a", now=4) == 0
    assert backoff.delay("b", now=102.9) == 8.0
    assert backoff.delay("b", now=103.0) == 0  # the window after its last failure has passed
    assert len(backoff) == 0


def test_memory_is_bounded() -> None:
    backoff = Backoff(free=0, max_addresses=3)
    for n in range(10):
        backoff.failed(f"10.0.0.{n}", now=float(n))
    assert len(backoff) == 3
    assert backoff.failures("10.0.0.9", now=10) == 1 and backoff.failures("10.0.0.0", now=10) == 0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        Backoff(base=2.0, cap=1.0)
