"""Live network-policy changes against the real engine and the host's iptables: the periodic check that puts
back missing rules never undoes a change that runs at the same time."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import docker
import pytest

from corral_runner.adapters.docker_engine import DockerEngine
from corral_runner.adapters.host_firewall import IptablesFirewall
from corral_runner.app.network import NetworkGuard
from corral_runner.domain import network_policy as np
from corral_runner.domain.isolation import NETWORK_NAME, container_name
from corral_stack.stack import Stack
from corral_testing.waiting import wait_for

pytestmark = pytest.mark.docker


class HeldAddress(DockerEngine):
    """The real adapter; while `holding`, the next address lookup returns only once `release` is set."""

    def __init__(self, base_url: str):
        super().__init__(base_url)
        self.holding = False
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def address(self, name: str) -> str | None:
        found = await super().address(name)
        if self.holding:
            self.holding = False
            self.held.set()
            await self.release.wait()
        return found


@pytest.fixture
def detached_sandbox(stack: Stack, docker_url: str) -> Iterator[str]:
    """A running container of the sandboxes' network, detached from it (as `networkBlockAll` leaves it)."""
    sandbox_id = str(uuid.uuid4())
    client = docker.DockerClient(base_url=docker_url)
    container = client.containers.run(stack.sandbox_image, ["sleep", "600"], entrypoint=[], detach=True,
                                      name=container_name(sandbox_id), network=NETWORK_NAME,
                                      labels=dict(stack.config.container_labels))
    client.networks.get(NETWORK_NAME).disconnect(container, force=True)
    try:
        yield sandbox_id
    finally:
        container.remove(force=True)
        client.close()


async def test_a_check_that_read_the_address_before_a_live_attach_leaves_the_new_rules(
        detached_sandbox: str, docker_url: str) -> None:
    """The check read the address while the container was detached (none); the change then attached it and
    applied its allow list. Before the per-sandbox lock, the check went on to remove those rules, and the
    sandbox reached everything until the next check (a CI run of the attack suite caught it)."""
    sandbox_id = detached_sandbox
    runner_id = f"test-{os.urandom(3).hex()}"
    engine = HeldAddress(docker_url)
    firewall = IptablesFirewall()
    guard = NetworkGuard(runner_id=runner_id, engine=engine, firewall=firewall, denied=[])
    await guard.install()
    allow_list = np.policy(False, ["192.0.2.1/32"])
    guard.policies[sandbox_id] = allow_list  # asked for; the live change is about to run
    try:
        engine.holding = True
        checking = asyncio.create_task(guard.check({sandbox_id}))
        await asyncio.wait_for(engine.held.wait(), 30)
        changing = asyncio.create_task(guard.change(sandbox_id, allow_list, running=True))

        def change_done_or_waiting() -> bool:
            lock = getattr(guard, "_locks", {}).get(sandbox_id)  # whether the change queued behind the check
            return changing.done() or bool(lock is not None and getattr(lock, "_waiters", None))

        await wait_for(change_done_or_waiting, timeout=30, message="the change neither ran nor waited")
        engine.release.set()
        await asyncio.wait_for(asyncio.gather(checking, changing), 60)
        assert await engine.attached(container_name(sandbox_id))
        assert sandbox_id in await firewall.sandboxes(runner_id), "the allow list's rules were removed"
    finally:
        engine.release.set()
        await firewall.remove(sandbox_id)
