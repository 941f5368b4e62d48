"""Network policy and out-of-memory kills of a sandbox: pure validation and decisions.

`networkAllowList` is Daytona's: comma-separated IPv4 CIDRs, at most 10; an empty string clears it.
The forbidden destinations (the host, the control plane, other sandboxes, link-local and metadata
addresses) stay forbidden whatever the list says: the runner checks them first.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from corral_contracts import guard as gd
from corral_contracts.guard import MAX_ALLOW_LIST

from .errors import InvalidRequest, InvalidState

if TYPE_CHECKING:
    from .sandbox import Sandbox


def parse_allow_list(text: str) -> list[str]:
    """`"10.0.0.0/8, 1.2.3.4"` -> `["10.0.0.0/8", "1.2.3.4/32"]`; `""` -> `[]`. Bad input raises
    `InvalidRequest` naming the entry."""
    entries = [entry.strip() for entry in text.split(",")]
    if entries == [""]:
        return []
    if len(entries) > MAX_ALLOW_LIST:
        raise InvalidRequest(f"networkAllowList accepts at most {MAX_ALLOW_LIST} CIDRs, got {len(entries)}")
    networks: list[str] = []
    for entry in entries:
        try:
            network = ipaddress.IPv4Network(entry, strict=False)
        except ValueError:
            raise InvalidRequest(f"networkAllowList: {entry!r} is not an IPv4 CIDR (like 10.0.0.0/8)") from None
        if str(network) not in networks:
            networks.append(str(network))
    return networks


def show_allow_list(networks: list[str]) -> str | None:
    """The DTO's `networkAllowList`: the comma-separated list, or null when there is none."""
    return ",".join(networks) if networks else None


def request_network_settings(sandbox: Sandbox, block_all: bool | None, allow_list: list[str] | None) -> list[Any]:
    """A change of policy, applied to the container whatever its state (a stopped or archived sandbox
    gets it when it next starts). Asking for the policy in force records nothing."""
    if sandbox.state in ("destroying", "destroyed"):
        raise InvalidState(f"Sandbox {sandbox.id} is {sandbox.state}")
    block = sandbox.network_block_all if block_all is None else block_all
    allowed = sandbox.network_allow_list if allow_list is None else allow_list
    if block == sandbox.network_block_all and allowed == sandbox.network_allow_list:
        return []
    return [gd.SandboxNetworkSettingsChanged(sandbox_id=sandbox.id, network_block_all=block,
                                             network_allow_list=allowed, revision=sandbox.network_revision + 1)]


def network_pending(sandbox: Sandbox) -> bool:
    """A policy change the runner has not confirmed yet."""
    return sandbox.network_applied_revision < sandbox.network_revision


def observe_network_applied(sandbox: Sandbox, fact: gd.SandboxContainerNetworkApplied) -> list[Any]:
    if fact.revision <= sandbox.network_applied_revision:
        return []
    return [gd.SandboxNetworkApplied(sandbox_id=sandbox.id, runner_id=fact.runner_id, revision=fact.revision)]


def observe_oom(sandbox: Sandbox, fact: gd.SandboxContainerOomKilled) -> list[Any]:
    """New kills only: the fact carries the run's running total, which may be repeated or late."""
    if fact.run < sandbox.oom_run:  # runs are start times: an earlier run's fact arrived late
        return []
    seen = sandbox.oom_run_kills if fact.run == sandbox.oom_run else 0
    if fact.oom_kills <= seen:
        return []
    return [gd.SandboxOomKilled(sandbox_id=sandbox.id, runner_id=fact.runner_id, run=fact.run,
                                count=fact.oom_kills, kills=fact.oom_kills - seen)]
