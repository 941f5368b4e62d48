"""The gateway's use cases with a fake api desk: admitting logins (slow-down, refusals, waking a stopped
sandbox) and keeping sessions (their end records, activity, revocation)."""

from __future__ import annotations

import asyncio

import pytest

from corral_contracts.ssh import SshLoginReply, SshLoginRequest, SshSessionEnded, SshWakeReply, SshWakeRequest
from corral_ssh_gateway.app.access import UNAVAILABLE, Gatekeeper, Refused
from corral_ssh_gateway.app.sessions import Sessions
from corral_ssh_gateway.domain.backoff import Backoff


class FakeDesk:
    """The api's side of the port, from a table of tokens."""

    def __init__(self) -> None:
        self.tokens: dict[str, SshLoginReply] = {}
        self.logins: list[SshLoginRequest] = []
        self.wakes: list[SshWakeRequest] = []
        self.ended: list[SshSessionEnded] = []
        self.wake_to = "started"
        self.invalid: dict[str, str] = {}
        self.down = False

    async def login(self, request: SshLoginRequest) -> SshLoginReply:
        if self.down:
            raise TimeoutError("no reply")
        self.logins.append(request)
        return self.tokens.get(request.token_hash, SshLoginReply(granted=False, refusal="unknown", message="nope"))

    async def wake(self, request: SshWakeRequest) -> SshWakeReply:
        self.wakes.append(request)
        return SshWakeReply(state=self.wake_to, runner_id="r2", message="" if self.wake_to == "started" else "gone")

    async def session_ended(self, ended: SshSessionEnded) -> None:
        self.ended.append(ended)

    async def check(self, access_ids: list[str]) -> dict[str, str]:
        return {a: why for a, why in self.invalid.items() if a in access_ids}


def grant(state: str = "started") -> SshLoginReply:
    return SshLoginReply(granted=True, sandbox_id="s1", access_id="a1", organization_id="o", state=state,
                         runner_id="r1", user="daytona")


def hashed(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def gatekeeper(desk: FakeDesk, clock: Clock) -> Gatekeeper:
    return Gatekeeper(desk, Backoff(free=2, base=1.0, cap=4.0), gateway_id="g", wake_wait=5.0,
                      clock=lambda: clock.now, sleep=clock.sleep)


async def admit(keeper: Gatekeeper, token: str, notes: list[str] | None = None, address: str = "192.0.2.1"):  # type: ignore[no-untyped-def]
    return await keeper.admit(token, session_id="00000000-0000-4000-8000-00000000000a", address=address, port=1,
                              client_version="SSH-2.0-test", notify=(notes if notes is not None else []).append)


async def test_a_granted_token_logs_in_and_only_its_hash_travels() -> None:
    desk, clock = FakeDesk(), Clock()
    desk.tokens[hashed("good")] = grant()
    admitted = await admit(gatekeeper(desk, clock), "good")
    assert (admitted.sandbox_id, admitted.runner_id, admitted.access_id) == ("s1", "r1", "a1")
    assert desk.logins[0].token_hash == hashed("good") and "good" not in repr(desk.logins[0])
    assert desk.wakes == [] and clock.slept == []


async def test_failures_slow_the_address_down_and_a_success_forgives() -> None:
    desk, clock = FakeDesk(), Clock()
    desk.tokens[hashed("good")] = grant()
    keeper = gatekeeper(desk, clock)
    for _ in range(4):
        with pytest.raises(Refused) as refused:
            await admit(keeper, "bad")
        assert refused.value.message == "nope"
    assert clock.slept == [1.0, 2.0]
    await admit(keeper, "good")  # slowed once more, then forgiven
    assert clock.slept == [1.0, 2.0, 4.0]
    with pytest.raises(Refused):
        await admit(keeper, "bad")
    assert clock.slept == [1.0, 2.0, 4.0]


async def test_malformed_user_names_are_refused_without_asking() -> None:
    desk, clock = FakeDesk(), Clock()
    for token in ("", "x" * 257):
        with pytest.raises(Refused):
            await admit(gatekeeper(desk, clock), token)
    assert desk.logins == []


async def test_an_unreachable_api_is_no_verdict_on_the_token() -> None:
    desk, clock = FakeDesk(), Clock()
    desk.down = True
    keeper = gatekeeper(desk, clock)
    for _ in range(5):
        with pytest.raises(Refused) as refused:
            await admit(keeper, "whatever")
        assert refused.value.message == UNAVAILABLE
    assert clock.slept == []


async def test_a_stopped_sandbox_is_woken_or_the_login_refused() -> None:
    desk, clock = FakeDesk(), Clock()
    desk.tokens[hashed("good")] = grant("stopped")
    notes: list[str] = []
    admitted = await admit(gatekeeper(desk, clock), "good", notes)
    assert admitted.runner_id == "r2" and len(desk.wakes) == 1 and "starting it" in notes[0]
    desk.wake_to = "destroyed"
    with pytest.raises(Refused) as refused:
        await admit(gatekeeper(desk, clock), "good")
    assert refused.value.message == "gone"
    assert [e.reason for e in desk.ended] == ["sandbox-unavailable"]  # the recorded login ends at once


async def test_sessions_record_their_channels_report_activity_and_end_when_revoked() -> None:
    desk, clock = FakeDesk(), Clock()
    desk.tokens[hashed("good")] = grant()
    active: list[str] = []

    async def report(sandbox_id: str) -> None:
        active.append(sandbox_id)

    sessions = Sessions(desk, report, clock=lambda: clock.now)
    disconnected: list[str] = []
    session = sessions.begin(await admit(gatekeeper(desk, clock), "good"), disconnected.append)
    record = session.channel("exec", "x" * 5000)
    record.exit_status, record.bytes_out = 0, 12
    clock.now += 2.5
    session.finish(record)
    await sessions.report_open()
    assert await sessions.check_open() == 0
    desk.invalid = {"a1": "revoked"}
    assert await sessions.check_open() == 1
    await sessions.stop()
    assert active == ["s1", "s1"] and disconnected == ["This SSH access token was revoked."]
    [ended] = desk.ended
    assert ended.reason == "revoked" and ended.seconds == 2.5
    assert ended.channels[0].kind == "exec" and len(ended.channels[0].command) == 1000
    assert ended.channels[0].seconds == 2.5 and ended.channels[0].bytes_out == 12
    sessions.end(session, "client")  # once only
    await asyncio.sleep(0)
    assert len(desk.ended) == 1
