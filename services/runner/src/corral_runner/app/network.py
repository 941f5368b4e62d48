"""Network policy of sandboxes on this host: attach or detach containers, install and remove rules.

`networkBlockAll`: the container is detached from every network (loopback only: no address, no
name resolution). Otherwise it is attached to the sandboxes' bridge, where the base rules (see
`domain.network_policy`) always hold, and a sandbox with an allow list gets its own chain keyed on
its current address. Addresses change when a container restarts, so rules follow every start and
go with every stop; a running container that must be attached live is paused meanwhile, so none of
its code runs before its rules are in place. The operations on one sandbox take its lock: the periodic
check must not remove rules a live change has just put in place (it read the address while the container
was still detached, then removed the rules after the change applied them).
"""

from __future__ import annotations

import asyncio
import logging

from ..domain import network_policy as np
from ..domain.isolation import container_name
from .ports import Attachment, Firewall

log = logging.getLogger(__name__)


class NetworkGuard:
    def __init__(self, *, runner_id: str, engine: Attachment, firewall: Firewall | None, denied: list[str]):
        self.runner_id = runner_id
        self._engine = engine
        self._firewall = firewall
        self._denied = denied
        self._bridge = ""
        self.policies: dict[str, np.NetworkPolicy] = {}
        """The policy of every sandbox this runner saw, for re-applying after a flush."""
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, sandbox_id: str) -> asyncio.Lock:
        return self._locks.setdefault(sandbox_id, asyncio.Lock())

    @property
    def enforced(self) -> bool:
        return self._firewall is not None and bool(self._bridge)

    async def install(self) -> None:
        """The base rules, scoped to the sandboxes' bridge (idempotent)."""
        if self._firewall is None:
            return
        self._bridge = await self._engine.bridge()
        await self._firewall.install(self._bridge, self._denied)

    async def check(self, running: set[str]) -> bool:
        """Put back what was removed behind our back (a firewall reload, a flush): the hooks and base rules,
        and the rules of every running sandbox with an allow list. True if anything had to be."""
        if self._firewall is None:
            return False
        restricted = {sid for sid in running if sid in self.policies and self.policies[sid].restricted}
        if not await self._firewall.installed():
            log.warning("the sandbox firewall was removed from the host's chains; installing it again")
            await self.install()
            missing = restricted
        else:
            missing = restricted - set(await self._firewall.sandboxes(self.runner_id))
        repaired = False
        for sandbox_id in missing:
            async with self._lock(sandbox_id):  # after a change in progress, with the policy then in force
                current = self.policies.get(sandbox_id)
                if current is None or not current.restricted:
                    continue
                if sandbox_id in await self._firewall.sandboxes(self.runner_id):
                    continue  # the change put them in place meanwhile
                log.warning("rules of sandbox %s were missing; applying them again", sandbox_id)
                await self._enforce(sandbox_id, current)
                repaired = True
        return repaired

    async def prepare(self, sandbox_id: str, policy: np.NetworkPolicy) -> None:
        """Before a (re)start: attached to the bridge or not, as the policy says."""
        async with self._lock(sandbox_id):
            await self._prepare(sandbox_id, policy)

    async def _prepare(self, sandbox_id: str, policy: np.NetworkPolicy) -> None:
        self.policies[sandbox_id] = policy
        name = container_name(sandbox_id)
        attached = await self._engine.attached(name)
        if policy.connected and not attached:
            await self._engine.attach(name)
        elif not policy.connected and attached:
            await self._engine.detach(name)

    async def enforce(self, sandbox_id: str, policy: np.NetworkPolicy) -> None:
        """After a start (or on a running container): the sandbox's own rules for its current address."""
        async with self._lock(sandbox_id):
            await self._enforce(sandbox_id, policy)

    async def _enforce(self, sandbox_id: str, policy: np.NetworkPolicy) -> None:
        self.policies[sandbox_id] = policy
        if self._firewall is None:
            return
        ip = await self._engine.address(container_name(sandbox_id)) if policy.restricted else None
        if ip:
            await self._firewall.apply(self._bridge, self.runner_id, sandbox_id, ip, policy.allow_list)
        else:
            await self._firewall.remove(sandbox_id)

    async def change(self, sandbox_id: str, policy: np.NetworkPolicy, running: bool) -> None:
        """A new policy for a live (or stopped) container, without restarting it."""
        async with self._lock(sandbox_id):
            await self._change(sandbox_id, policy, running)

    async def _change(self, sandbox_id: str, policy: np.NetworkPolicy, running: bool) -> None:
        name = container_name(sandbox_id)
        if not running:
            await self._prepare(sandbox_id, policy)
            await self._forget_rules(sandbox_id)
            return
        self.policies[sandbox_id] = policy
        attached = await self._engine.attached(name)
        if not policy.connected:
            if attached:
                await self._engine.detach(name)
            await self._forget_rules(sandbox_id)
        elif attached:
            await self._enforce(sandbox_id, policy)  # the chain is replaced in one transaction
        else:
            await self._engine.pause(name)  # nothing in it runs until its rules are in place
            try:
                await self._engine.attach(name)
                await self._enforce(sandbox_id, policy)
            finally:
                await self._engine.unpause(name)

    async def forget_rules(self, sandbox_id: str) -> None:
        """The container stopped or went: its address may soon be another's, so its rules go."""
        async with self._lock(sandbox_id):
            await self._forget_rules(sandbox_id)

    async def _forget_rules(self, sandbox_id: str) -> None:
        if self._firewall is not None:
            await self._firewall.remove(sandbox_id)

    async def forget(self, sandbox_id: str) -> None:
        async with self._lock(sandbox_id):
            self.policies.pop(sandbox_id, None)
            await self._forget_rules(sandbox_id)
        self._locks.pop(sandbox_id, None)

    async def sweep(self, running: set[str]) -> list[str]:
        """Remove this runner's rules of sandboxes that are not running here (after a restart)."""
        if self._firewall is None:
            return []
        stale = [sid for sid in await self._firewall.sandboxes(self.runner_id) if sid not in running]
        for sandbox_id in stale:
            await self._firewall.remove(sandbox_id)
        return stale
