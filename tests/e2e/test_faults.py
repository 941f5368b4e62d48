"""Fault tests with real processes killed by signals (no mocks): the runner in the middle of a create
and of a stop, the api in the middle of requests, nats-server restarted while sandboxes are created.

Every time the system must converge: each sandbox ends in the state that was asked for (or in `error`
with a reason), no container is orphaned, no sandbox is duplicated, no event is lost.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import aiohttp
import docker
import pytest

from corral_contracts import codecs
from corral_contracts.subjects import EVT_STREAM
from corral_messaging import JetStreamBus
from corral_stack.stack import Stack
from corral_testing.stack import TEST_RUN_LABEL, log_tail, running_stack
from corral_testing.waiting import wait_for

from .conftest import Rest

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

FAST_RECOVERY = {"CORRAL_SUPERVISE_INTERVAL": "0.5", "CORRAL_REISSUE_AFTER": "3", "CORRAL_HEARTBEAT_INTERVAL": "1"}
INJECTED: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[Stack]:
    with running_stack(env=FAST_RECOVERY) as stack:
        yield stack
        if os.environ.get("CORRAL_SHOW_LOGS"):
            for name in stack.services:
                print(f"--- {name} ---\n{log_tail(stack, name, 80)}")
    print(f"\nfaults injected and survived: {sum(INJECTED.values())} ({dict(INJECTED)})")


@pytest.fixture
async def rest(fault_stack: Stack) -> AsyncIterator[Rest]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield Rest(session, fault_stack)


async def suite_sandboxes(rest: Rest, suite: str) -> list[dict]:  # type: ignore[type-arg]
    status, page = await rest.call("GET", f"{rest.api}/sandbox", params={"labels": f'{{"suite": "{suite}"}}',
                                                                       "limit": "200"})
    assert status == 200, page
    return page["items"]  # type: ignore[no-any-return]


async def converged(rest: Rest, stack: Stack, suite: str, wanted: str, at_least: int) -> list[dict]:  # type: ignore[type-arg]
    """Wait until every sandbox of the suite is `wanted` or in error with a reason, then check that
    containers and sandboxes correspond one to one."""
    seen: dict[str, object] = {}

    async def settled() -> bool:
        boxes = await suite_sandboxes(rest, suite)
        seen["states"] = [(b["id"][:8], b["state"], b.get("errorReason")) for b in boxes]
        return len(boxes) >= at_least and all(
            b["state"] == wanted or (b["state"] == "error" and b["errorReason"]) for b in boxes)

    try:
        await wait_for(settled, timeout=120, interval=0.2)
    except AssertionError:
        raise AssertionError(f"{suite} never converged to {wanted}: {seen}") from None
    boxes = await suite_sandboxes(rest, suite)
    run = stack.config.container_labels[TEST_RUN_LABEL]
    client = docker.from_env()
    try:
        containers = client.containers.list(all=True, sparse=True, filters={"label": f"{TEST_RUN_LABEL}={run}"})
        per_sandbox = Counter(c.attrs["Labels"].get("corral.sandbox_id") for c in containers)
    finally:
        client.close()
    assert all(count == 1 for count in per_sandbox.values()), f"duplicated containers: {per_sandbox}"
    with_container = {b["id"] for b in boxes if b["state"] in ("started", "stopped")}
    assert with_container <= set(per_sandbox), "a sandbox lost its container"
    return boxes


async def orphans(stack: Stack, rest: Rest) -> set[str]:
    """Containers whose sandbox the api does not know (or knows as destroyed)."""
    run = stack.config.container_labels[TEST_RUN_LABEL]
    client = docker.from_env()
    try:
        ids = {c.attrs["Labels"].get("corral.sandbox_id") for c in
               client.containers.list(all=True, sparse=True, filters={"label": f"{TEST_RUN_LABEL}={run}"})}
    finally:
        client.close()
    gone = set()
    for sandbox_id in ids:
        status, _ = await rest.get(str(sandbox_id))
        if status == 404:
            gone.add(str(sandbox_id))
    return gone


async def container_appears(stack: Stack) -> bool:
    run = stack.config.container_labels[TEST_RUN_LABEL]
    client = docker.from_env()
    try:
        # sparse: no inspect per container, which races with a container removed meanwhile
        return bool(client.containers.list(all=True, sparse=True, filters={"label": f"{TEST_RUN_LABEL}={run}",
                                                                            "status": "created"}))
    finally:
        client.close()


async def test_runner_killed_in_the_middle_of_creates(fault_stack: Stack, rest: Rest) -> None:
    creates = [asyncio.create_task(rest.call("POST", f"{rest.api}/sandbox", json={"labels": {"suite": "kill-create"}}))
               for _ in range(3)]
    await wait_for(lambda: container_appears(fault_stack), timeout=60, interval=0.005,
                   message="no container was ever being created")
    fault_stack.services["runner"].kill()
    INJECTED["runner killed mid-create"] += 1
    fault_stack.services["runner"].start()
    await asyncio.gather(*creates)
    await asyncio.to_thread(fault_stack.wait_ready)
    boxes = await converged(rest, fault_stack, "kill-create", "started", at_least=3)
    assert len(boxes) == 3, "a create was duplicated or lost"
    assert not await orphans(fault_stack, rest)
    for box in boxes:
        await rest.delete(box["id"])


async def test_runner_killed_in_the_middle_of_stops(fault_stack: Stack, rest: Rest) -> None:
    ids = [(await rest.create(labels={"suite": "kill-stop"}))["id"] for _ in range(2)]
    for sid in ids:
        status, body = await rest.call("POST", f"{rest.api}/sandbox/{sid}/stop")
        assert status == 200, body
    fault_stack.services["runner"].kill()
    INJECTED["runner killed mid-stop"] += 1
    fault_stack.services["runner"].start()
    await asyncio.to_thread(fault_stack.wait_ready)
    boxes = await converged(rest, fault_stack, "kill-stop", "stopped", at_least=2)
    assert {b["id"] for b in boxes} == set(ids)
    for sid in ids:
        await rest.delete(sid)


async def test_api_killed_in_the_middle_of_requests(fault_stack: Stack, rest: Rest) -> None:
    async def create() -> object:
        try:
            return await rest.call("POST", f"{rest.api}/sandbox", json={"labels": {"suite": "kill-api"}})
        except aiohttp.ClientError as error:  # the api died under this request
            return error

    before = fault_stack.health()["logPosition"]
    requests = [asyncio.create_task(create()) for _ in range(4)]
    await wait_for(lambda: fault_stack.health().get("logPosition", 0) > before, timeout=60, interval=0.002,
                   message="no create was recorded")
    fault_stack.services["api"].kill()
    INJECTED["api killed mid-request"] += 1
    answers = await asyncio.gather(*requests)
    fault_stack.services["api"].start()
    await asyncio.to_thread(fault_stack.wait_ready)
    boxes = await converged(rest, fault_stack, "kill-api", "started", at_least=1)
    answered = {a[1]["id"] for a in answers if isinstance(a, tuple) and a[0] == 200}
    assert answered <= {b["id"] for b in boxes}, "a sandbox the api answered for was lost"
    assert len(boxes) <= 4, "a create was duplicated"
    assert not await orphans(fault_stack, rest)
    for box in boxes:
        await rest.delete(box["id"])


async def test_nats_restarted_while_sandboxes_are_created(fault_stack: Stack, rest: Rest) -> None:
    creates = [asyncio.create_task(rest.call("POST", f"{rest.api}/sandbox", json={"labels": {"suite": "nats"}}))
               for _ in range(3)]
    await wait_for(lambda: container_appears(fault_stack), timeout=60, interval=0.005)
    assert fault_stack.nats is not None
    await asyncio.to_thread(fault_stack.nats.restart)
    INJECTED["nats-server restarted mid-create"] += 1
    await asyncio.gather(*creates)
    boxes = await converged(rest, fault_stack, "nats", "started", at_least=3)
    assert len(boxes) == 3
    assert not await orphans(fault_stack, rest)
    bus = JetStreamBus(fault_stack.nats.url, name="fault-check")
    await bus.connect()
    try:
        async def relayed_all() -> bool:
            messages = await bus.stream_messages(EVT_STREAM, "evt.>")
            sequences = [codecs.recorded_events.decode(m.data).sequence for m in messages
                         if not m.subject.startswith("evt.runner.")]
            return sequences == list(range(1, fault_stack.health()["logPosition"] + 1))

        await wait_for(relayed_all, timeout=60, message="events were lost or repeated on EVT")
    finally:
        await bus.close()
    for box in boxes:
        await rest.delete(box["id"])
