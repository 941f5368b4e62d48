"""Fixed per-minute windows, counted per (bucket, key), with the figures of Daytona's headers."""

from __future__ import annotations

from corral_api.domain.ratelimits import RateLimiter


def test_a_window_allows_its_limit_then_refuses_until_it_resets() -> None:
    limiter = RateLimiter(window=60)
    verdicts = [limiter.hit("authenticated", "org-a", 3, now=100.0 + i) for i in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert verdicts[0].reset == 60 and verdicts[3].reset == 57
    assert verdicts[3].headers() == {"X-RateLimit-Limit-authenticated": "3",
                                     "X-RateLimit-Remaining-authenticated": "0",
                                     "X-RateLimit-Reset-authenticated": "57"}
    assert limiter.hit("authenticated", "org-b", 3, now=103.0).allowed, "each key has its own window"
    assert limiter.hit("sandbox-create", "org-a", 3, now=103.0).allowed, "each bucket has its own window"
    again = limiter.hit("authenticated", "org-a", 3, now=160.0)
    assert again.allowed and again.remaining == 2 and again.reset == 60


def test_refused_requests_do_not_extend_the_wait_and_old_windows_are_dropped() -> None:
    limiter = RateLimiter(window=60, sweep_every=5)
    limiter.hit("failed-auth", "10.0.0.1", 1, now=0.0)
    for t in range(1, 59):
        assert not limiter.hit("failed-auth", "10.0.0.1", 1, now=float(t)).allowed
    assert limiter.hit("failed-auth", "10.0.0.1", 1, now=60.0).allowed
    for i in range(9):
        limiter.hit("anonymous", f"ip-{i}", 10, now=61.0)
    limiter.hit("anonymous", "late", 10, now=200.0)
    assert len(limiter) <= 2
