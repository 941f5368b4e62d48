"""Webhook fan-out: 1,000 platform events to 10 endpoints (10,000 signed deliveries), sustained.

The pipeline is the real one from the event log on: an api event log (SQLite) with the api's outbox relay
publishing to `EVT` on a nats-server of its own, the webhooks service as its own process (`python -m
corral_webhooks`, its SQLite store), and one real HTTP receiver with 10 endpoint paths verifying every
delivery with the `standardwebhooks` library. The 10 endpoints are recorded as the api records them; then
500 sandboxes are created and started (`SandboxCreated`, then the runner's `SandboxStarted`: 1,000 events,
each in its own transaction, as fast as the log takes them), making `sandbox.created` and
`sandbox.state.updated` for every endpoint. Only the REST layer in front of the log is left out (it plays
no part in fan-out); the bench's own stack is not used, so its event positions are not disturbed.

Two runs: a burst (events recorded as fast as the log takes them, so a backlog forms: the figure is the
fan-out's throughput) and a paced run (events at a steady `PACED_RATE` per second, below that throughput:
the figure is the latency of a platform keeping up). Reported: deliveries per second (first event recorded
-> last delivery received) and the latency from an event's recorded time (its payload `timestamp`) to its
arrival at the receiver, p50 / p95 / p99. `python -m bench.webhooks [--events N] [--endpoints N]
[--rate R]` runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

from corral_api.domain.webhook_endpoint import secret_from
from corral_contracts import sandbox as ev
from corral_contracts import webhooks as wh
from corral_contracts.codecs import RecordedEvent
from corral_eventstore import EventLog, OutboxRelay
from corral_messaging import JetStreamBus
from corral_stack.nats import NatsServer
from corral_stack.ports import free_port, is_listening
from corral_stack.processes import ServiceProcess
from corral_stack.stack import Stack
from corral_testing.webhooks import Receiver

from .figures import Options, Series, table

EVENTS = 1000
ENDPOINTS = 10
PACED_RATE = 40.0
"""Events per second of the paced run."""
ORG = "00000000-0000-4000-8000-0000000000be"
USER = {"Corral-Actor": "crl_bench"}
RUNNER = {"Corral-Actor": "runner:bench", "Corral-Causation-Id": "bench"}


def status(port: int) -> dict:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


async def until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: {what} not reached within {timeout}s")
        await asyncio.sleep(0.01)


async def one_run(events: int, endpoints: int, rate: float = 0.0,  # type: ignore[no-untyped-def]
                  log=print) -> tuple[float, list[float]]:
    home = Path(tempfile.mkdtemp(prefix="corral-wh-", dir="/tmp"))
    nats = NatsServer(home / "nats", log_file=home / "nats.log").start()
    api_log = EventLog(RecordedEvent, f"sqlite:///{home / 'api.db'}")
    bus = JetStreamBus(nats.url, name="bench-webhooks")
    receiver = await Receiver().start()
    port = free_port()
    service = ServiceProcess("webhooks", [sys.executable, "-m", "corral_webhooks"], echo=False,
                             log_file=home / "webhooks.log",
                             env={**os.environ, "CORRAL_HOME": str(home), "CORRAL_NATS_URL": nats.url,
                                  "CORRAL_WEBHOOKS_ALLOW_PRIVATE": "1", "CORRAL_WEBHOOKS_PORT": str(port),
                                  "CORRAL_LOG_LEVEL": "WARNING"})
    relay = OutboxRelay(api_log, bus.publish, poll_interval=0.5)
    try:
        await bus.connect()
        await bus.ensure_streams()
        await relay.start()
        service.start()
        await until(lambda: is_listening("127.0.0.1", port), 60, "the webhooks service listening")
        for i in range(endpoints):
            endpoint_id = str(uuid.uuid4())
            secret = secret_from(os.urandom(32))
            receiver.secrets[f"e{i}"] = secret
            api_log.append(uuid.UUID(endpoint_id), 0, [wh.WebhookEndpointCreated(
                endpoint_id=endpoint_id, organization_id=ORG, url=receiver.url(f"e{i}"), secret=secret)], USER)
        relay.notify()
        await until(lambda: status(port).get("endpoints") == endpoints, 30, "the endpoints known")
        expected = events * endpoints
        started = time.time()
        for n in range(events // 2):
            if rate:
                await asyncio.sleep(max(0.0, started + 2 * n / rate - time.time()))
            sid = str(uuid.uuid4())
            await asyncio.to_thread(api_log.append, uuid.UUID(sid), 0, [ev.SandboxCreated(
                sandbox_id=sid, organization_id=ORG, name=f"bench-{n}", runner_id="bench", image="img",
                snapshot="corral-default", user="daytona")], USER)
            relay.notify()
            await asyncio.to_thread(api_log.append, uuid.UUID(sid), 1, [ev.SandboxStarted(
                sandbox_id=sid, runner_id="bench", container_id="c")], RUNNER)
            relay.notify()
        recorded = time.time() - started
        await until(lambda: len(receiver.received) >= expected, 600, f"{expected} deliveries")
        done = max(r.at for r in receiver.received)
        assert not receiver.rejected, receiver.rejected[:3]
        assert len({(r.path, r.webhook_id) for r in receiver.received}) == expected
        latencies = [(r.at - datetime.fromisoformat(r.payload["timestamp"]).timestamp()) * 1000
                     for r in receiver.received]
        per_second = expected / (done - started)
        log(f"bench: {events} events recorded in {recorded:.1f}s; {expected} deliveries in {done - started:.1f}s "
            f"({per_second:.0f}/s); repeats {len(receiver.received) - expected}")
        return per_second, latencies
    finally:
        await relay.stop()
        await bus.close()
        service.stop()
        await receiver.stop()
        api_log.close()
        nats.stop()
        shutil.rmtree(home, ignore_errors=True)


async def measure(events: int = EVENTS, endpoints: int = ENDPOINTS, rate: float = PACED_RATE,
                  log=print) -> list[Series]:  # type: ignore[no-untyped-def]
    throughput = Series(f"webhooks: deliveries/s, burst ({events} ev x {endpoints})", unit="/s")
    burst = Series("webhooks: event -> receiver, burst", unit="ms")
    paced = Series(f"webhooks: event -> receiver, {rate:g} ev/s", unit="ms")
    per_second, latencies = await one_run(events, endpoints, 0.0, log)
    throughput.add(per_second)
    burst.samples.extend(latencies)
    _, latencies = await one_run(events, endpoints, rate, log)
    paced.samples.extend(latencies)
    for series in (burst, paced):
        log(f"bench: {series.name}: p50 {series.median:.1f} ms, p95 {series.p95:.1f} ms, p99 {series.p99:.1f} ms")
    return [throughput, burst, paced]


async def run(stack: Stack, options: Options) -> list[Series]:
    """The `make bench` suite: a pipeline of its own (the stack's event log is not touched)."""
    return await measure()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks")
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--endpoints", type=int, default=ENDPOINTS)
    parser.add_argument("--rate", type=float, default=PACED_RATE, help="events per second of the paced run")
    args = parser.parse_args()
    print(table(asyncio.run(measure(args.events, args.endpoints, args.rate))))


if __name__ == "__main__":
    main()
