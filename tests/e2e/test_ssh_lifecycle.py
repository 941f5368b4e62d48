"""SSH and the sandbox lifecycle, on a platform whose timer minute lasts 2 s: a login starts a stopped (or
archived) sandbox, an open session keeps a short auto-stop from firing, tokens expire, and revoking a token
ends the sessions it opened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from corral_stack.stack import Stack
from corral_testing.openssh import ensure_openssh
from corral_testing.stack import running_stack
from corral_testing.waiting import wait_for

from .conftest import Rest
from .ssh_tools import OpenSsh, end
from .test_lifecycle import FAST, events_of, sweeps

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

SSH_FAST = {**FAST, "CORRAL_SSH_CHECK_EVERY": "0.5", "CORRAL_SSH_ACTIVITY_EVERY": "0.5",
            "CORRAL_SSH_SWEEP_INTERVAL": "0.5"}


@pytest.fixture(scope="module")
def ssh_stack() -> Iterator[Stack]:
    ensure_openssh()
    with running_stack(env=SSH_FAST) as stack:
        yield stack


@pytest.fixture
async def rest(ssh_stack: Stack) -> AsyncIterator[Rest]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield Rest(session, ssh_stack)


@pytest.fixture
def client(ssh_stack: Stack, tmp_path: Path) -> OpenSsh:
    return OpenSsh(ssh_stack, tmp_path / "known_hosts", log_level="INFO")


async def token_for(rest: Rest, sandbox_id: str, minutes: int = 60) -> dict:  # type: ignore[type-arg]
    status, body = await rest.call("POST", f"{rest.api}/sandbox/{sandbox_id}/ssh-access",
                                   params={"expiresInMinutes": str(minutes)})
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def test_a_login_starts_a_stopped_or_archived_sandbox(rest: Rest, client: OpenSsh) -> None:
    sid = (await rest.create(autoStopInterval=0))["id"]
    try:
        token = (await token_for(rest, sid))["token"]
        await rest.call("POST", f"{rest.api}/sandbox/{sid}/stop")
        await rest.wait_state(sid, "stopped")
        woken = await asyncio.to_thread(client.ssh, token, "echo awake")
        assert woken.returncode == 0 and woken.stdout == b"awake\n", woken.stderr
        assert f"Sandbox {sid} is stopped; starting it".encode() in woken.stderr
        start = [e for e in await events_of(rest, sid) if e["type"] == "SandboxStartRequested"][-1]
        assert start["meta"]["Corral-Actor"] == "ssh-gateway"

        await rest.call("POST", f"{rest.api}/sandbox/{sid}/stop")
        await rest.wait_state(sid, "stopped")
        status, _ = await rest.call("POST", f"{rest.api}/sandbox/{sid}/archive")
        assert status == 200
        await rest.wait_state(sid, "archived")
        restored = await asyncio.to_thread(client.ssh, token, "cat /proc/1/cmdline >/dev/null && echo restored")
        assert restored.returncode == 0 and restored.stdout == b"restored\n", restored.stderr
        assert (await rest.get(sid))[1]["state"] == "started"
    finally:
        await rest.delete(sid)


async def test_an_open_session_is_activity_for_auto_stop(rest: Rest, client: OpenSsh) -> None:
    sid = (await rest.create(autoStopInterval=0))["id"]
    try:
        token = (await token_for(rest, sid))["token"]
        idle = client.popen(token, "-N")  # a connection without any channel: only the gateway says it is active
        try:
            await wait_for(lambda: _session_started(rest, sid), timeout=60, message="the SSH session never began")
            status, _ = await rest.call("POST", f"{rest.api}/sandbox/{sid}/autostop/1")  # one 2-second minute
            assert status == 200
            start = await sweeps(rest)
            await wait_for(lambda: _sweeps_at_least(rest, start + 12), timeout=60, message="no sweeps")
            assert (await rest.get(sid))[1]["state"] == "started", "auto-stopped during an open SSH session"
        finally:
            end(idle)
        stopped = await rest.wait_state(sid, "stopped", timeout=60)
        assert stopped["desiredState"] == "stopped"
        stop = [e for e in await events_of(rest, sid) if e["type"] == "SandboxStopRequested"][-1]
        assert stop["data"]["reason"] == "auto-stop"
    finally:
        await rest.delete(sid)


async def _session_started(rest: Rest, sid: str) -> bool:
    return any(e["type"] == "SshSessionStarted" for e in await events_of(rest, sid))


async def _sweeps_at_least(rest: Rest, count: int) -> bool:
    return await sweeps(rest) >= count


async def test_tokens_expire(rest: Rest, client: OpenSsh) -> None:
    sid = (await rest.create(autoStopInterval=0))["id"]
    try:
        access = await token_for(rest, sid, minutes=1)  # 2 s here

        async def invalid() -> bool:
            status, body = await rest.call("GET", f"{rest.api}/sandbox/ssh-access/validate",
                                           params={"token": access["token"]})
            return status == 200 and body == {"valid": False, "sandboxId": sid}

        await wait_for(invalid, timeout=30, message="the token never expired")
        refused = await asyncio.to_thread(client.ssh, access["token"], "true")
        assert refused.returncode == 255 and b"expired" in refused.stderr

        async def recorded() -> bool:
            return any(e["type"] == "SshAccessExpired" and e["data"]["access_id"] == access["id"]
                       for e in await events_of(rest, sid))

        await wait_for(recorded, timeout=30, message="the expiry was never recorded")
    finally:
        await rest.delete(sid)


async def test_revoking_a_token_ends_its_open_sessions(rest: Rest, client: OpenSsh) -> None:
    sid = (await rest.create(autoStopInterval=0))["id"]
    try:
        access = await token_for(rest, sid)
        other = await token_for(rest, sid)
        revoked_session = client.popen(access["token"], "sleep 300")
        kept_session = client.popen(other["token"], "sleep 300")
        try:
            await wait_for(lambda: _sessions(rest, sid, 2), timeout=60, message="the sessions never began")
            status, _ = await rest.call("DELETE", f"{rest.api}/sandbox/{sid}/ssh-access",
                                        params={"token": access["token"]})
            assert status == 200
            await wait_for(lambda: revoked_session.poll() is not None, timeout=30,
                           message="the revoked token's session is still open")
            assert revoked_session.returncode == 255
            assert b"revoked" in revoked_session.stderr.read()  # type: ignore[union-attr]
            assert kept_session.poll() is None, "a session of another token was ended"

            async def ended() -> bool:
                return any(e["type"] == "SshSessionEnded" and e["data"]["reason"] == "revoked"
                           for e in await events_of(rest, sid))

            await wait_for(ended, timeout=30, message="the end was not recorded")
        finally:
            for process in (revoked_session, kept_session):
                process.kill()
                process.wait(30)
    finally:
        await rest.delete(sid)


async def _sessions(rest: Rest, sid: str, count: int) -> bool:
    return sum(e["type"] == "SshSessionStarted" for e in await events_of(rest, sid)) >= count
