"""Quotas: what sandboxes hold, and admissions that stay within an organization's totals under
concurrency, in one api process and across two replicas sharing one SQLite event store."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from api_harness import running_api

from corral_api.domain.quotas import Quota, Usage, check_admission, held
from corral_api.domain.errors import QuotaExceeded
from corral_api.domain.identity import usage_ledger_key
from corral_contracts import identity as idev
from corral_contracts.codecs import RecordedEvent
from corral_eventstore import EventLog, iter_all
from corral_testing.waiting import wait_for

import pytest


def test_what_a_sandbox_holds_in_each_state() -> None:
    assert held("started", 2, 4, 10) == Usage(2, 4, 10)
    assert held("creating", 2, 4, 10) == Usage(2, 4, 10)
    assert held("stopped", 2, 4, 10) == Usage(0, 0, 10)
    assert held("archived", 2, 4, 10) == held("error", 2, 4, 10) == held("destroying", 2, 4, 10) == Usage()
    assert held("resizing", 2, 4, 10, resume_state="started") == Usage(2, 4, 10)
    assert held("resizing", 2, 4, 10, resume_state="stopped") == Usage(0, 0, 10)


def test_admission_checks_only_what_rises() -> None:
    quota = Quota(total_cpu=4, total_memory=4, total_disk=10)
    check_admission(quota, Usage(3, 3, 9), Usage(1, 1, 1))
    with pytest.raises(QuotaExceeded, match="CPU"):
        check_admission(quota, Usage(4, 0, 0), Usage(1, 0, 0))
    check_admission(quota, Usage(9, 0, 0), Usage(-1, 1, 0))  # over on CPU already, asks only memory


async def _race(api, key: str, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    answers = await asyncio.gather(*(api.call("POST", "/api/sandbox", key, json={"cpu": 1, "memory": 1, "disk": 1})
                                     for _ in range(count)))
    return [status for status, _, _ in answers]


async def test_concurrent_creates_admit_exactly_the_quota() -> None:
    async with running_api() as api:
        org, key = await api.organization(totalCpuQuota=3)
        statuses = await _race(api, key, 12)
        assert sorted(statuses) == [200] * 3 + [403] * 9, statuses
        status, body, _ = await api.call("POST", "/api/sandbox", key, json={})
        assert status == 403 and body["code"] == "QUOTA_EXCEEDED" and "CPU" in body["message"]
        status, body, _ = await api.call("GET", f"/api/organizations/{org['id']}", key)
        assert body["usage"] == {"cpu": 3, "memory": 3, "disk": 3}
        # deleting frees the quota at once
        listed = (await api.call("GET", "/api/sandbox", key))[1]["items"]
        assert (await api.call("DELETE", f"/api/sandbox/{listed[0]['id']}", key))[0] == 200
        assert (await api.call("POST", "/api/sandbox", key, json={}))[0] == 200
        admitted = [e for _, e in iter_all(api.api.event_log) if isinstance(e.payload, idev.OrganizationUsageAdmitted)
                    and e.payload.organization_id == org["id"]]
        assert len(admitted) == 4


async def test_two_replicas_on_one_store_admit_exactly_the_quota(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    async with running_api(EventLog(RecordedEvent, url)) as one, running_api(EventLog(RecordedEvent, url)) as two:
        org, key = await one.organization(totalCpuQuota=4)

        async def known() -> bool:
            return (await two.call("GET", "/api/sandbox", key))[0] == 200
        await wait_for(known, message="the second replica never folded the new organization's key")
        first, second = await asyncio.gather(_race(one, key, 8), _race(two, key, 8))
        assert sorted(first + second) == [200] * 4 + [403] * 12, (first, second)
        assert one.api.directory.usage.totals[org["id"]] == Usage(4, 4, 4)


class LedgerRendezvous:
    """Both replicas read the usage ledger's version before either records: the race an api without
    the ledger would lose (both would see the organization empty and both admit)."""

    def __init__(self, *logs: EventLog):
        self.barrier = threading.Barrier(len(logs), timeout=10)
        self.met = False
        for log in logs:
            read = log.version

            def version(aggregate, read=read):  # type: ignore[no-untyped-def]
                answer = read(aggregate)
                if not self.met and aggregate in self.ledgers:
                    self.barrier.wait()
                    self.met = True
                return answer
            log.version = version  # type: ignore[method-assign]
        self.ledgers: set[object] = set()


async def test_replicas_that_check_at_the_same_moment_admit_only_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    logs = EventLog(RecordedEvent, url), EventLog(RecordedEvent, url)
    async with running_api(logs[0]) as one, running_api(logs[1]) as two:
        org, key = await one.organization(totalCpuQuota=1)

        async def known() -> bool:
            return (await two.call("GET", "/api/sandbox", key))[0] == 200
        await wait_for(known, message="the second replica never folded the new organization's key")
        rendezvous = LedgerRendezvous(*logs)
        rendezvous.ledgers.add(usage_ledger_key(org["id"]))
        first, second = await asyncio.gather(_race(one, key, 1), _race(two, key, 1))
        assert rendezvous.met, "the replicas did not check at the same moment"
        assert sorted(first + second) == [200, 403], (first, second)


async def test_start_resize_and_per_sandbox_limits_are_admitted_too() -> None:
    async with running_api() as api:
        _, key = await api.organization(totalCpuQuota=2, totalDiskQuota=9, maxCpuPerSandbox=2)
        status, body, _ = await api.call("POST", "/api/sandbox", key, json={"cpu": 3})
        assert status == 403 and body["code"] == "QUOTA_EXCEEDED" and "per sandbox" in body["message"]
        status, body, _ = await api.call("POST", "/api/sandbox", key, json={"cpu": -1})
        assert status == 400
        a = await api.create(key, cpu=1, disk=3)
        b = await api.create(key, cpu=1, disk=3)
        await api.started(a, key)
        await api.started(b, key)
        assert (await api.call("POST", f"/api/sandbox/{b['id']}/stop", key))[0] == 200
        await api.stopped(b, key)
        status, body, _ = await api.call("POST", "/api/sandbox", key, json={"cpu": 1, "disk": 4})
        assert status == 403 and "disk" in body["message"], "b's disk still counts while it is stopped"
        c = await api.create(key, cpu=1, disk=3)  # b's CPU is free while it is stopped
        status, body, _ = await api.call("POST", f"/api/sandbox/{b['id']}/start", key)
        assert status == 403 and body["code"] == "QUOTA_EXCEEDED"
        status, body, _ = await api.call("POST", f"/api/sandbox/{a['id']}/resize", key, json={"cpu": 2})
        assert status == 403 and body["code"] == "QUOTA_EXCEEDED"
        assert (await api.call("DELETE", f"/api/sandbox/{c['id']}", key))[0] == 200
        status, body, _ = await api.call("POST", f"/api/sandbox/{b['id']}/start", key)
        assert status == 200 and body["state"] == "starting"
