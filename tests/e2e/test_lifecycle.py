"""The lifecycle that never gets stuck: timers (with activity from running jobs), archive and restore,
resize, deadlines and recover — on a platform whose timer minute lasts 2 s and whose deadlines are a
tenth of the real ones, so the test waits seconds rather than minutes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import docker
import pytest

from corral_stack.stack import Stack
from corral_testing.stack import running_stack
from corral_testing.waiting import wait_for

from .conftest import Rest

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

FAST = {"CORRAL_MINUTE_SECONDS": "2", "CORRAL_SUPERVISE_INTERVAL": "0.5", "CORRAL_DEADLINE_FACTOR": "0.1",
        "CORRAL_REISSUE_AFTER": "3", "CORRAL_HEARTBEAT_INTERVAL": "0.5", "CORRAL_BACKUP_EVERY": "4"}


@pytest.fixture(scope="module")
def fast_stack() -> Iterator[Stack]:
    with running_stack(env=FAST) as stack:
        yield stack


@pytest.fixture
async def fast(fast_stack: Stack) -> AsyncIterator[Rest]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield Rest(session, fast_stack)


async def sweeps(rest: Rest) -> int:
    status, health = await rest.call("GET", f"{rest.api}/health")
    return int(health["sweeps"])


async def events_of(rest: Rest, sandbox_id: str) -> list[dict]:  # type: ignore[type-arg]
    status, body = await rest.call("GET", f"{rest.api}/sandbox/{sandbox_id}/events")
    assert status == 200, body
    return body["items"]  # type: ignore[no-any-return]


async def test_a_running_job_is_never_auto_stopped_and_idleness_is(fast: Rest) -> None:
    sandbox = await fast.create(autoStopInterval=1)  # one timer minute: 2 s here
    sid = sandbox["id"]
    try:
        job = asyncio.create_task(fast.execute(sid, "sleep 7; echo done"))
        start = await sweeps(fast)
        await wait_for(lambda: _at_least(fast, start + 10), timeout=30, message="the supervisor stopped sweeping")
        status, body = await fast.get(sid)
        assert body["state"] == "started", "auto-stopped in the middle of a job"
        status, result = await job
        assert status == 200 and result["result"] == "done\n"
        stopped = await fast.wait_state(sid, "stopped", timeout=30)
        assert stopped["desiredState"] == "stopped"
        stop = [e for e in await events_of(fast, sid) if e["type"] == "SandboxStopRequested"][-1]
        assert stop["data"]["reason"] == "auto-stop" and stop["meta"]["Corral-Actor"] == "supervisor"
    finally:
        await fast.delete(sid)


async def _at_least(rest: Rest, count: int) -> bool:
    return await sweeps(rest) >= count


async def test_keep_alive_and_timer_endpoints(fast: Rest) -> None:
    sid = (await fast.create())["id"]
    try:
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/autostop/0")
        assert status == 200 and body["autoStopInterval"] == 0
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/autoarchive/0")
        assert body["autoArchiveInterval"] == 43200
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/autodelete/-5")
        assert body["autoDeleteInterval"] == -1
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/autostop/-1")
        assert status == 400
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/autostop/soon")
        assert status == 400
        before = (await fast.get(sid))[1]["lastActivityAt"]
        status, _ = await fast.call("POST", f"{fast.api}/sandbox/{sid}/last-activity")
        assert status == 201
        assert (await fast.get(sid))[1]["lastActivityAt"] > before
    finally:
        await fast.delete(sid)


async def test_an_ephemeral_sandbox_is_deleted_when_stopped(fast: Rest) -> None:
    sid = (await fast.create(autoDeleteInterval=0))["id"]
    status, _ = await fast.call("POST", f"{fast.api}/sandbox/{sid}/stop")
    assert status == 200
    await fast.wait_state(sid, "gone")


async def test_archive_frees_the_container_and_restore_keeps_every_file(fast: Rest) -> None:
    sid = (await fast.create())["id"]
    client = docker.from_env()
    try:
        status, result = await fast.execute(sid, "mkdir -p keep && head -c 300000 /dev/urandom > keep/blob && "
                                                 "sha256sum keep/blob")
        digest = result["result"].split()[0]
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/archive")
        assert status == 409, "only a stopped sandbox can be archived"
        await fast.call("POST", f"{fast.api}/sandbox/{sid}/stop")
        await fast.wait_state(sid, "stopped")
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/archive")
        assert status == 200 and body["state"] in ("archiving", "archived")
        await fast.wait_state(sid, "archived")
        assert not client.containers.list(all=True, filters={"name": f"corral-{sid}"}), "the container is freed"
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/start")
        assert status == 200 and body["state"] in ("restoring", "started")
        await fast.wait_state(sid, "started")
        status, result = await fast.execute(sid, "sha256sum keep/blob")
        assert result["result"].split()[0] == digest
        kinds = [e["type"] for e in await events_of(fast, sid)]
        assert kinds.index("SandboxArchived") < kinds.index("SandboxRestoreRequested")
    finally:
        await fast.delete(sid)
        client.close()
    await fast.wait_state(sid, "gone")
    with pytest.raises(docker.errors.ImageNotFound):
        docker.from_env().images.get(f"corral-archive:{sid}")


async def test_resize_a_running_sandbox(fast: Rest) -> None:
    sid = (await fast.create())["id"]
    client = docker.from_env()
    try:
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/resize", json={"cpu": 2, "memory": 2})
        assert status == 200
        resized = await fast.wait_state(sid, "started")
        await wait_for(lambda: _resources(fast, sid, 2, 2), timeout=20)
        host = client.containers.get(f"corral-{sid}").attrs["HostConfig"]
        assert host["Memory"] == 2 * 1024**3 and host["NanoCpus"] == 2_000_000_000 and resized["id"] == sid
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/resize", json={"cpu": 99})
        assert status == 403 and body["code"] == "QUOTA_EXCEEDED"
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/resize", json={"disk": 50})
        assert status == 400
    finally:
        await fast.delete(sid)
        client.close()


async def _resources(rest: Rest, sid: str, cpu: int, memory: int) -> bool:
    status, body = await rest.get(sid)
    return bool(body["state"] == "started" and body["cpu"] == cpu and body["memory"] == memory)


async def test_a_missed_deadline_is_an_error_that_recover_undoes(fast_stack: Stack, fast: Rest) -> None:
    sid = (await fast.create())["id"]
    try:
        fast_stack.services["runner"].kill()  # the stop below can no longer be carried out
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/stop")
        assert status == 200 and body["state"] == "stopping"

        async def failed() -> bool:
            status, body = await fast.get(sid)
            return bool(body["state"] == "error")

        await wait_for(failed, timeout=60, message="stopping never hit its deadline")
        status, body = await fast.get(sid)
        assert body["recoverable"] is True and "stopping did not finish" in body["errorReason"]

        fast_stack.services["runner"].start()
        await asyncio.to_thread(fast_stack.wait_ready)
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/recover")
        assert status == 200
        await fast.wait_state(sid, "started", timeout=60)
        status, result = await fast.execute(sid, "echo recovered")
        assert result["result"] == "recovered\n"
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/recover")
        assert status == 409, "only a sandbox in error can be recovered"
    finally:
        await fast.delete(sid)


async def test_a_running_session_command_or_an_open_terminal_keeps_a_sandbox_awake(fast_stack: Stack,
                                                                                  fast: Rest) -> None:
    from daytona import AsyncDaytona, DaytonaConfig, PtySize, SessionExecuteRequest

    async with AsyncDaytona(DaytonaConfig(api_key=fast_stack.admin_api_key, api_url=fast_stack.api_url)) as daytona:
        sandbox = await daytona.create(timeout=120)
        try:
            status, body = await fast.call("POST", f"{fast.api}/sandbox/{sandbox.id}/autostop/1")  # 2 s here
            assert status == 200
            await sandbox.process.create_session("job")
            command = await sandbox.process.execute_session_command(
                "job", SessionExecuteRequest(command="sleep 6; echo finished", run_async=True))
            start = await sweeps(fast)
            await wait_for(lambda: _at_least(fast, start + 10), timeout=30)
            assert (await fast.get(sandbox.id))[1]["state"] == "started", "stopped during a session command"

            async def finished() -> bool:
                done = await sandbox.process.get_session_command("job", command.cmd_id)
                return done.exit_code is not None

            await wait_for(finished, timeout=30)
            pty = await sandbox.process.create_pty_session(id="term", on_data=lambda data: None,
                                                           pty_size=PtySize(cols=80, rows=24))
            await pty.wait_for_connection()
            start = await sweeps(fast)
            await wait_for(lambda: _at_least(fast, start + 10), timeout=30)
            assert (await fast.get(sandbox.id))[1]["state"] == "started", "stopped with a terminal open"
            await pty.disconnect()
            await fast.wait_state(sandbox.id, "stopped", timeout=30)
        finally:
            await daytona.delete(sandbox, timeout=60, wait=True)


async def test_a_lost_container_is_restored_from_the_last_backup(fast_stack: Stack, fast: Rest) -> None:
    sid = (await fast.create())["id"]
    client = docker.from_env()
    try:
        status, result = await fast.execute(sid, "echo precious > kept.txt && date -u +%Y-%m-%dT%H:%M:%S.%NZ")
        written = result["result"].strip()

        async def backed_up_after_write() -> bool:
            status, body = await fast.get(sid)
            return body["backupState"] == "Completed" and body["backupCreatedAt"] > written

        await wait_for(backed_up_after_write, timeout=60, message="no backup was taken")
        fast_stack.services["runner"].kill()
        client.containers.get(f"corral-{sid}").remove(force=True)  # the host lost the container
        fast_stack.services["runner"].start()
        await asyncio.to_thread(fast_stack.wait_ready)

        async def lost() -> bool:
            status, body = await fast.get(sid)
            return bool(body["state"] == "error")

        await wait_for(lost, timeout=60, message="the runner did not report the lost container")
        status, body = await fast.get(sid)
        assert body["recoverable"] is True and "lost" in body["errorReason"]
        status, body = await fast.call("POST", f"{fast.api}/sandbox/{sid}/recover")
        assert status == 200 and body["state"] in ("restoring", "started")
        await fast.wait_state(sid, "started", timeout=60)
        status, result = await fast.execute(sid, "cat kept.txt")
        assert result["result"] == "precious\n"
    finally:
        await fast.delete(sid)
        client.close()
    await fast.wait_state(sid, "gone")
    with pytest.raises(docker.errors.ImageNotFound):
        docker.from_env().images.get(f"corral-backup:{sid}")
