"""Which forwards (-L) are allowed: only the sandbox's own loopback."""

from __future__ import annotations

import pytest

from corral_ssh_gateway.domain.forwarding import forward_refusal


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "127.0.0.1", "127.1.2.3", "::1", "[::1]",
                                  "localhost.localdomain", "ip6-localhost"])
def test_the_sandbox_loopback_is_allowed(host: str) -> None:
    assert forward_refusal(host, 8080) is None


@pytest.mark.parametrize("host", ["10.0.0.1", "172.17.0.1", "169.254.169.254", "example.com", "0.0.0.0", "::",
                                  "127.0.0.1.example.com", ""])
def test_anything_else_is_refused_with_the_way_to_do_it(host: str) -> None:
    refusal = forward_refusal(host, 8080)
    assert refusal is not None and "localhost:8080" in refusal


def test_ports_are_checked() -> None:
    assert forward_refusal("localhost", 0) is not None
    assert forward_refusal("localhost", 65536) is not None
