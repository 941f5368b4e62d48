"""The host firewall that keeps sandboxes in their lane, as data: chains and rules (no I/O here).

Every rule is scoped to the sandboxes' bridge interface, so the engine's own chains and other
containers are never touched. Two chains of ours hold the base policy, hooked first in `INPUT`
(traffic to the host itself) and in `DOCKER-USER` (traffic the host forwards):

- `CORRAL-HOST`: a sandbox never reaches the host, on any of its addresses (the bridge gateway, the
  host's other interfaces, 127.0.0.0/8 by any trick): everything from the bridge is refused, except
  replies to connections the host opened.
- `CORRAL-GUARD`: forwarded traffic from the bridge is refused toward other sandboxes (the bridge
  itself), other engine networks (`br-*`, `docker*`), anything the host would redirect (DNAT: ports
  the host publishes), link-local and cloud-metadata addresses (169.254.0.0/16), loopback, and the
  configured control-plane networks; then `CORRAL-SANDBOXES` sends each sandbox with an allow list to
  its own chain, which lets through its CIDRs and refuses the rest.

The base checks come first, so an allow list can never open a forbidden destination. `networkBlockAll`
needs no rule: such a sandbox's container is not connected to any network (loopback only).
"""

from __future__ import annotations

import ipaddress
import re

import msgspec

HOST_CHAIN = "CORRAL-HOST"
GUARD_CHAIN = "CORRAL-GUARD"
SANDBOXES_CHAIN = "CORRAL-SANDBOXES"
SANDBOX_CHAIN_PREFIX = "CRL-"
FORWARD_HOOK = "DOCKER-USER"
"""The engine's chain for user rules: evaluated first for forwarded traffic, never flushed by it."""

REFUSE = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]
"""Refused, not silently dropped: a sandbox's connect fails at once with "no route to host"."""
REFUSE6 = ["-j", "REJECT", "--reject-with", "icmp6-adm-prohibited"]

ALWAYS_DENIED = ("169.254.0.0/16", "127.0.0.0/8", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")
"""Link-local (cloud metadata lives at 169.254.169.254), loopback, "this network", multicast, reserved."""

OTHER_ENGINE_NETWORKS = ("br-+", "docker+")
"""Interface names of the engine's bridges: other container networks are never a sandbox's business."""


class NetworkPolicy(msgspec.Struct, frozen=True, kw_only=True):
    block_all: bool = False
    allow_list: tuple[str, ...] = ()
    """Normalized IPv4 CIDRs; empty = no allow list."""

    @property
    def connected(self) -> bool:
        """Whether the container is attached to the sandboxes' bridge at all."""
        return not self.block_all

    @property
    def restricted(self) -> bool:
        """Whether the sandbox needs a chain of its own (an allow list on a connected container)."""
        return not self.block_all and bool(self.allow_list)


def policy(block_all: bool, allow_list: list[str] | tuple[str, ...]) -> NetworkPolicy:
    return NetworkPolicy(block_all=block_all, allow_list=tuple(allow_list))


def sandbox_chain(sandbox_id: str) -> str:
    """`CRL-` + 24 hex digits of the sandbox id (chain names are limited to 28 characters)."""
    return SANDBOX_CHAIN_PREFIX + sandbox_id.replace("-", "")[:24]


def jump_comment(runner_id: str, sandbox_id: str) -> str:
    return f"corral {runner_id} {sandbox_id}"


_JUMP = re.compile(r'^-A ' + SANDBOXES_CHAIN + r' (?P<spec>.*-m comment --comment "?corral (?P<runner>\S+) '
                   r'(?P<sandbox>[^"\s]+)"? -j (?P<chain>' + SANDBOX_CHAIN_PREFIX + r'\w+))\s*$')


class Jump(msgspec.Struct, frozen=True, kw_only=True):
    runner_id: str
    sandbox_id: str
    chain: str
    spec: str
    """The rule as `iptables -S` prints it after `-A <chain> `: what `-D <chain> <spec>` deletes."""


def parse_jumps(listing: str) -> list[Jump]:
    """The per-sandbox jumps in `iptables -S CORRAL-SANDBOXES` output."""
    jumps = []
    for line in listing.splitlines():
        match = _JUMP.match(line.strip())
        if match:
            jumps.append(Jump(runner_id=match["runner"], sandbox_id=match["sandbox"], chain=match["chain"],
                              spec=match["spec"]))
    return jumps


def normalize_denied(cidrs: list[str] | tuple[str, ...]) -> list[str]:
    """Configured control-plane networks, normalized; bad entries raise ValueError naming them."""
    return [str(ipaddress.IPv4Network(c.strip(), strict=False)) for c in cidrs if c.strip()]


def base_rules(bridge: str, denied: list[str] | tuple[str, ...]) -> dict[str, list[list[str]]]:
    """Rules of our base chains (each rewritten whole), keyed by chain."""
    b = ["-i", bridge]
    host = [[*b, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"], [*b, *REFUSE]]
    guard = [[*b, "-o", out, *REFUSE] for out in (bridge, *OTHER_ENGINE_NETWORKS)]
    guard.append([*b, "-m", "conntrack", "--ctstate", "DNAT", *REFUSE])
    guard += [[*b, "-d", cidr, *REFUSE] for cidr in (*ALWAYS_DENIED, *denied)]
    guard.append([*b, "-j", SANDBOXES_CHAIN])
    return {HOST_CHAIN: host, GUARD_CHAIN: guard}


def base_rules6(bridge: str) -> dict[str, list[list[str]]]:
    """IPv6: the engine gives sandbox containers none, but should one appear, it reaches nothing."""
    return {HOST_CHAIN: [["-i", bridge, *REFUSE6]], GUARD_CHAIN: [["-i", bridge, *REFUSE6]]}


def sandbox_rules(allowed: tuple[str, ...]) -> list[list[str]]:
    return [*(["-d", cidr, "-j", "RETURN"] for cidr in allowed), REFUSE]


def jump_rule(bridge: str, ip: str, runner_id: str, sandbox_id: str) -> list[str]:
    return ["-i", bridge, "-s", f"{ip}/32", "-m", "comment", "--comment", jump_comment(runner_id, sandbox_id),
            "-j", sandbox_chain(sandbox_id)]


def restore_script(chains: dict[str, list[list[str]]], *, deletions: list[tuple[str, str]] = (),  # type: ignore[assignment]
                   additions: list[tuple[str, list[str]]] = ()) -> str:  # type: ignore[assignment]
    """An `iptables-restore --noflush` transaction: each chain in `chains` is declared (so created or
    flushed) and refilled; `deletions` are (chain, spec as listed) and `additions` (chain, rule) apply
    to chains left as they are. All or nothing."""
    lines = ["*filter", *(f":{chain} - [0:0]" for chain in chains)]
    for chain, rules in chains.items():
        lines += [f"-A {chain} {_quote(rule)}" for rule in rules]
    lines += [f"-D {chain} {spec}" for chain, spec in deletions]
    lines += [f"-A {chain} {_quote(rule)}" for chain, rule in additions]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _quote(rule: list[str]) -> str:
    return " ".join(f'"{part}"' if " " in part else part for part in rule)
