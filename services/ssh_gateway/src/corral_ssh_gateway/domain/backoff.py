"""Slowing down repeated failed logins from one address: pure, time is given.

The first `free` failures cost nothing; every later attempt from that address waits `base * 2**k`
seconds, where k counts the failures beyond `free` (0 for the first slowed attempt), at most `cap`. The address is forgotten `window`
seconds after its last failure, or at its first success. At most `max_addresses` are remembered (the
longest quiet go first), so a flood of addresses cannot grow memory without bound.
"""

from __future__ import annotations


class Backoff:
    def __init__(self, *, free: int = 3, base: float = 1.0, cap: float = 16.0, window: float = 600.0,
                 max_addresses: int = 10_000):
        if free < 0 or base <= 0 or cap < base or window <= 0 or max_addresses < 1:
            raise ValueError("free >= 0, 0 < base <= cap, window > 0 and max_addresses >= 1")
        self.free = free
        self.base = base
        self.cap = cap
        self.window = window
        self.max_addresses = max_addresses
        self._failures: dict[str, tuple[int, float]] = {}
        """address -> (failures, time of the last one); insertion order = least recently failed first."""

    def failures(self, address: str, now: float) -> int:
        entry = self._failures.get(address)
        if entry is None:
            return 0
        count, last = entry
        if now - last >= self.window:
            del self._failures[address]
            return 0
        return count

    def delay(self, address: str, now: float) -> float:
        """Seconds the next login attempt from `address` waits before it is answered."""
        beyond = self.failures(address, now) - self.free
        if beyond < 0:
            return 0.0
        return min(self.cap, self.base * 2 ** min(beyond, 32))

    def failed(self, address: str, now: float) -> None:
        count = self.failures(address, now) + 1
        self._failures.pop(address, None)
        self._failures[address] = (count, now)
        while len(self._failures) > self.max_addresses:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def __len__(self) -> int:
        return len(self._failures)
