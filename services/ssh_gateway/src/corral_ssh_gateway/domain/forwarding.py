"""Which port forwards an SSH client may open: only to the sandbox's own loopback (`-L p:localhost:N`).

Anything else (another host, the sandbox's network, the gateway's neighbours) is refused: a token is
access to one sandbox, not a way into the networks around it.
"""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_sandbox_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower().rstrip(".")
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def forward_refusal(host: str, port: int) -> str | None:
    """Why a forward to `host:port` is refused, or None when it is allowed."""
    if not 1 <= port <= 65535:
        return f"port {port} is not a TCP port"
    if not is_sandbox_loopback(host):
        return (f"forwarding to {host}:{port} is not allowed: only the sandbox's own ports are reachable "
                f"(use -L <local port>:localhost:{port})")
    return None
