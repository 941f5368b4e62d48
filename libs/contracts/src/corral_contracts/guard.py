"""Messages of the sandbox guard: network policy applied live, and out-of-memory kills observed.

The api records `SandboxNetworkSettingsChanged` (desired), its process manager sends
`UpdateSandboxNetwork` to the sandbox's runner, which applies it on the host and reports
`SandboxContainerNetworkApplied`; the api records `SandboxNetworkApplied`. A runner that sees the
kernel kill a process of a sandbox for exceeding its memory reports `SandboxContainerOomKilled`,
recorded as `SandboxOomKilled`. The unions of `sandbox` and `runner` include these messages.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

MAX_ALLOW_LIST = 10
"""At most this many CIDRs in a `networkAllowList` (Daytona's limit)."""


class _GuardEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "sandbox"
    sandbox_id: str


class SandboxNetworkSettingsChanged(_GuardEvent):
    """The sandbox's network policy as asked (the whole policy, not a delta).

    `network_allow_list` holds normalized IPv4 CIDRs; empty means no allow list (all egress but the
    forbidden destinations). `network_block_all` wins over the list. `revision` counts the changes."""

    revision: int
    network_block_all: bool
    network_allow_list: list[str] = []


class SandboxNetworkApplied(_GuardEvent):
    """The runner enforces the policy of `revision` (or a later one)."""

    runner_id: str
    revision: int


class SandboxOomKilled(_GuardEvent):
    """The kernel killed `kills` more processes of the sandbox for exceeding its memory limit.

    `run` names the container run (its start time) and `count` is that run's total so far, which makes
    recording idempotent: a fact repeating a count already recorded adds nothing."""

    runner_id: str
    run: str
    count: int
    kills: int


class UpdateSandboxNetwork(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Apply this policy to the sandbox's container now (running or stopped), without a restart."""

    sandbox_id: str
    revision: int
    network_block_all: bool
    network_allow_list: list[str] = []


class _GuardFact(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "runner"
    runner_id: str
    sandbox_id: str


class SandboxContainerNetworkApplied(_GuardFact):
    revision: int


class SandboxContainerOomKilled(_GuardFact):
    run: str
    """The container run: its start time as the engine reports it."""
    oom_kills: int
    """The kernel's count of out-of-memory kills in the container's memory cgroup during this run."""
