"""Rebuilding every read model from 100,000 events (budget: 20 s on the 2-core box).

A realistic log is generated (not timed) into a SQLite event store in a temporary directory: about
10,000 sandboxes living interleaved lives of ten events on average, each transaction as the api records
it (name claimed with the create, released with the destroy request): created, started, labels
replaced, stopped and started again, sometimes failed and restarted, most finally destroyed; a few API
keys, one revoked. Then the directory is rebuilt from zero with `replay.rebuild`, the api's own
start-up path, several times (the median is reported, and the throughput in events per second).

Needs no running stack: `python -m bench.replay [--events N] [--runs R]` runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from corral_api.app import replay
from corral_api.domain.identity import hash_key, key_id_for
from corral_api.domain.names import name_key
from corral_contracts import identity as idev
from corral_contracts import sandbox as ev
from corral_contracts.codecs import RecordedEvent
from corral_eventstore import EventLog, Recorded

from corral_stack.stack import Stack

from .figures import Options, Series, table

EVENTS = 100_000
RUNS = 5
BUDGET_S = 20.0
ORGANIZATIONS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(1, 4)]
RUNNERS = [f"runner-{i}" for i in range(4)]
CONCURRENT = 200
"""Sandboxes alive at once while generating: their events interleave in the log."""

Transaction = list[tuple[uuid.UUID, Any]]


def lifetime(rng: random.Random, index: int) -> Iterator[Transaction]:
    """One sandbox's transactions, as the api would record them (about ten events on average)."""
    sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    key = uuid.UUID(sid)
    org = rng.choice(ORGANIZATIONS)
    name = f"bench-{index}"
    runner = rng.choice(RUNNERS)
    labels = {"code-toolbox-language": "python", "team": rng.choice(["ml", "web", "data"])}
    slot = name_key(org, name)
    yield [(slot, ev.SandboxNameClaimed(organization_id=org, name=name, sandbox_id=sid)),
           (key, ev.SandboxCreated(sandbox_id=sid, organization_id=org, name=name, runner_id=runner,
                                   image="corral/sandbox:default", snapshot="corral-default", user="daytona",
                                   env={"A": "1"}, labels=labels, cpu=rng.choice([1, 2, 4]),
                                   memory=rng.choice([1, 2, 4, 8]), disk=rng.choice([3, 5, 10]),
                                   preview_token=uuid.uuid4().hex))]
    yield [(key, ev.SandboxStarted(sandbox_id=sid, runner_id=runner, container_id=sid[:12]))]
    if rng.random() < 0.6:
        yield [(key, ev.SandboxLabelsReplaced(sandbox_id=sid, labels={**labels, "stage": rng.choice(["a", "b"])}))]
    for _ in range(rng.choice([0, 1, 2])):
        yield [(key, ev.SandboxStopRequested(sandbox_id=sid))]
        yield [(key, ev.SandboxStopped(sandbox_id=sid, runner_id=runner, exit_code=0))]
        yield [(key, ev.SandboxStartRequested(sandbox_id=sid))]
        yield [(key, ev.SandboxStarted(sandbox_id=sid, runner_id=runner, container_id=sid[:12]))]
    if rng.random() < 0.05:
        yield [(key, ev.SandboxFailed(sandbox_id=sid, reason="oom", recoverable=True, operation="run"))]
        yield [(key, ev.SandboxStartRequested(sandbox_id=sid))]
        yield [(key, ev.SandboxStarted(sandbox_id=sid, runner_id=runner, container_id=sid[:12]))]
    if rng.random() < 0.8:
        yield [(key, ev.SandboxDestroyRequested(sandbox_id=sid)),
               (slot, ev.SandboxNameReleased(organization_id=org, name=name, sandbox_id=sid))]
        yield [(key, ev.SandboxDestroyed(sandbox_id=sid, runner_id=runner))]


def api_keys() -> Transaction:
    out: Transaction = []
    for i, org in enumerate(ORGANIZATIONS):
        key_hash = hash_key(f"crl_bench_{i}")
        out.append((key_id_for(key_hash), idev.ApiKeyCreated(
            key_id=str(key_id_for(key_hash)), organization_id=org, name=f"key-{i}", key_hash=key_hash,
            prefix="crl_benc", suffix=f"{i:04d}", permissions=["write:sandboxes"])))
    revoked = hash_key("crl_bench_0")
    out.append((key_id_for(revoked), idev.ApiKeyRevoked(key_id=str(key_id_for(revoked)),
                                                        organization_id=ORGANIZATIONS[0])))
    return out


def generate(event_log: EventLog, events: int = EVENTS, seed: int = 7, batch: int = 5000) -> int:
    """Record about `events` events of interleaved sandbox lives; returns how many were recorded."""
    rng = random.Random(seed)
    versions: dict[uuid.UUID, int] = {}
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    pending: list[Recorded] = []
    recorded = 0
    started = 0
    alive: list[Iterator[Transaction]] = []

    def record(transaction: Transaction) -> None:
        nonlocal at, recorded
        at += timedelta(milliseconds=rng.randint(1, 50))
        for aggregate, payload in transaction:
            versions[aggregate] = versions.get(aggregate, 0) + 1
            pending.append(Recorded(originator_id=aggregate, originator_version=versions[aggregate], timestamp=at,
                                    payload=payload, meta={"Corral-Actor": "bench"}))
        recorded += len(transaction)
        if len(pending) >= batch:
            event_log.save(*pending)
            pending.clear()

    record(api_keys())
    while recorded < events:
        while len(alive) < CONCURRENT:
            alive.append(lifetime(rng, started))
            started += 1
        i = rng.randrange(len(alive))
        transaction = next(alive[i], None)
        if transaction is None:
            alive[i] = alive[-1]
            alive.pop()
            continue
        record(transaction)
    if pending:
        event_log.save(*pending)
    return recorded


def measure(events: int = EVENTS, runs: int = RUNS, log=print) -> list[Series]:  # type: ignore[no-untyped-def]
    directory = Path(tempfile.mkdtemp(prefix="corral-replay-", dir="/tmp"))
    url = f"sqlite:///{directory / 'events.db'}"
    try:
        writer = EventLog(RecordedEvent, url)
        t0 = time.perf_counter()
        recorded = generate(writer, events)
        writer.close()
        log(f"bench: generated {recorded} events in {time.perf_counter() - t0:.1f}s (not timed)")
        seconds = Series(f"replay: rebuild read models ({recorded // 1000}k events)", unit="s", budget=BUDGET_S)
        rate = Series("replay: throughput", unit="k/s")
        for _ in range(runs):
            event_log = EventLog(RecordedEvent, url)
            try:
                rebuilt = asyncio.run(replay.rebuild(event_log))
            finally:
                event_log.close()
            assert rebuilt.events == recorded, (rebuilt.events, recorded)
            seconds.add(rebuilt.seconds)
            rate.add(rebuilt.events / rebuilt.seconds / 1000)
            log(f"bench: {rebuilt.summary()}")
        return [seconds, rate]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def run(stack: Stack, options: Options) -> list[Series]:
    """The `make bench` suite: builds its own event log, the stack's is not needed."""
    return await asyncio.to_thread(measure)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay")
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    print(table(measure(args.events, args.runs)))


if __name__ == "__main__":
    main()
