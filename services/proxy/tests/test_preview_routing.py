"""Preview routing and admission in the proxy: the pure parts, then the gate fed with recorded events
(the same envelopes the proxy follows on EVT) and a fake of its wake port."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from corral_contracts import codecs, identity, preview, sandbox as ev
from corral_contracts.envelope import EventEnvelope
from corral_contracts.preview import PreviewWakeReply
from corral_proxy.app.directory import Directory, Refused
from corral_proxy.app.previews import Credentials, PreviewGate, Starting
from corral_proxy.domain import previews as pv
from corral_proxy.domain.routes import RouteTable

SID = "0b7e4a52-59d2-4a0e-9a55-3f6a2b1c9d10"
OTHER = "ffffffff-59d2-4a0e-9a55-3f6a2b1c9d10"
TOKEN = "p" * 32
SECRET = b"secret"
KEY, OTHER_KEY = "crl_mine", "crl_theirs"


def test_host_form() -> None:
    address = pv.parse_host(f"3000-{SID}.preview.localhost:4000", "preview.localhost", "/a?b=1")
    assert address == pv.PreviewAddress(label=SID, port=3000, form="host", upstream="/a?b=1")
    assert address.prefix == "" and not address.signed
    assert pv.parse_host(f"80-{SID.upper()}.Preview.LOCALHOST.", "preview.localhost", "").label == SID  # type: ignore[union-attr]
    assert pv.parse_host("3000-abcdefghij012345.p.example.com", "p.example.com", "/").signed  # type: ignore[union-attr]
    for host in (f"{SID}.preview.localhost", f"0-{SID}.preview.localhost", f"65536-{SID}.preview.localhost",
                 f"080-{SID}.preview.localhost", f"x-{SID}.preview.localhost", f"3000-{SID}.other.localhost",
                 f"3000-{SID}.a.preview.localhost", "preview.localhost", "127.0.0.1:4000", "3000-.preview.localhost"):
        assert pv.parse_host(host, "preview.localhost", "/") is None, host


def test_path_form() -> None:
    address = pv.parse_path(f"/preview/{SID}/3000/static/app.js?v=%2F1")
    assert address == pv.PreviewAddress(label=SID, port=3000, form="path", upstream="/static/app.js?v=%2F1")
    assert address.prefix == f"/preview/{SID}/3000"
    assert pv.parse_path(f"/preview/{SID}/3000").upstream == "/"  # type: ignore[union-attr]
    assert pv.parse_path(f"/preview/{SID}/3000?x=1").upstream == "/?x=1"  # type: ignore[union-attr]
    for path in (f"/preview/{SID}", f"/preview/{SID}/http/", "/preview//3000/", f"/toolbox/{SID}/3000/"):
        assert pv.parse_path(path) is None, path


def test_cookie_is_bound_to_its_sandbox_and_its_time() -> None:
    value = pv.cookie_value(SECRET, SID, 2000)
    assert pv.cookie_valid(SECRET, SID, value, now=1999)
    assert not pv.cookie_valid(SECRET, SID, value, now=2000)
    assert not pv.cookie_valid(SECRET, OTHER, value, now=1000)
    assert not pv.cookie_valid(b"other secret", SID, value, now=1000)
    assert not pv.cookie_valid(SECRET, SID, value.replace("2000", "9000"), now=1000)
    assert not pv.cookie_valid(SECRET, SID, "garbage", now=1000)


def test_our_query_parameter_and_cookies_are_removed_and_nothing_else() -> None:
    assert pv.strip_query_key("/p?a=1&DAYTONA_SANDBOX_AUTH_KEY=t%2B&b=%2F", pv.QUERY_KEY) == ("/p?a=1&b=%2F", "t+")
    assert pv.strip_query_key("/p?DAYTONA_SANDBOX_AUTH_KEY=", pv.QUERY_KEY) == ("/p", "")
    assert pv.strip_query_key("/p?a", pv.QUERY_KEY) == ("/p?a", None)
    assert pv.without_cookies(f"a=1; daytona-sandbox-auth-{SID}=x;b=2", pv.COOKIE_PREFIX) == "a=1; b=2"


def envelope(payload: object, n: int) -> bytes:
    return codecs.encode(EventEnvelope(event_id=f"n{n}", aggregate_id=SID, sequence=n,
                                       occurred_at=datetime.now(timezone.utc), payload=payload))


class FakeWake:
    """The wake port: records calls; `then` events are applied as the api and runner would."""

    def __init__(self, directory: Directory, then: list[object], reply: PreviewWakeReply):
        self.directory, self.then, self.reply, self.calls = directory, then, reply, []

    async def __call__(self, sandbox_id: str, port: int) -> PreviewWakeReply:
        self.calls.append((sandbox_id, port))
        for n, event in enumerate(self.then):
            await self.directory.apply(envelope(event, 100 + n))
        return self.reply


async def runners() -> dict[str, bytes]:
    return {}


@pytest.fixture
async def directory() -> Directory:
    directory = Directory(runners, settle_wait=0.05)
    for n, event in enumerate([
        ev.SandboxCreated(sandbox_id=SID, organization_id="org", name="n", runner_id="r1", image="i", snapshot="s",
                          user="u", preview_token=TOKEN),
        ev.SandboxStarted(sandbox_id=SID, runner_id="r1"),
        identity.ApiKeyCreated(key_id="k1", organization_id="org", name="k", key_hash=pv.token_hash(KEY),
                               prefix="", suffix=""),
        identity.ApiKeyCreated(key_id="k2", organization_id="org2", name="k", key_hash=pv.token_hash(OTHER_KEY),
                               prefix="", suffix=""),
    ]):
        await directory.apply(envelope(event, n + 1))
    return directory


def gate(directory: Directory, wake: object = None) -> PreviewGate:
    return PreviewGate(directory, wake or FakeWake(directory, [], PreviewWakeReply(accepted=False)), secret=SECRET,
                       wake_wait=1.0, browser_wait=0.0)


HOST = pv.PreviewAddress(label=SID, port=3000, form="host", upstream="/")


@pytest.mark.parametrize(("credentials", "via", "key_presented", "cookie"), [
    (Credentials(bearer=KEY), "api-key", True, False),
    (Credentials(header_token=TOKEN), "preview-token", False, False),
    (Credentials(query_token=TOKEN), "query", False, True),
    (Credentials(cookie=pv.cookie_value(SECRET, SID, 10**10)), "cookie", False, False),
    (Credentials(bearer=OTHER_KEY, header_token=TOKEN), "preview-token", True, False),
])
async def test_each_credential_admits(directory: Directory, credentials: Credentials, via: str, key_presented: bool,
                                      cookie: bool) -> None:
    admission = await gate(directory).admit(HOST, credentials, now=1000.0)
    assert (admission.via, admission.key_presented, admission.set_cookie) == (via, key_presented, cookie)


@pytest.mark.parametrize(("address", "credentials", "status", "code"), [
    (HOST, Credentials(), 401, "UNAUTHORIZED"),
    (HOST, Credentials(bearer="crl_unknown"), 401, "UNAUTHORIZED"),
    (HOST, Credentials(header_token="x" * 32), 403, "INVALID_PREVIEW_TOKEN"),
    (HOST, Credentials(query_token=""), 403, "INVALID_PREVIEW_TOKEN"),
    (HOST, Credentials(cookie=pv.cookie_value(SECRET, SID, 10)), 403, "INVALID_PREVIEW_TOKEN"),
    (HOST, Credentials(bearer=OTHER_KEY), 404, "NOT_FOUND"),
    (pv.PreviewAddress(label=OTHER, port=3000, form="host", upstream="/"), Credentials(bearer=KEY), 404, "NOT_FOUND"),
    (pv.PreviewAddress(label="nope", port=3000, form="host", upstream="/"), Credentials(), 404, "NOT_FOUND"),
    (pv.PreviewAddress(label="abcdefghij012345", port=3000, form="path", upstream="/"), Credentials(), 403,
     "PREVIEW_URL_EXPIRED"),
])
async def test_refusals(directory: Directory, address: pv.PreviewAddress, credentials: Credentials, status: int,
                        code: str) -> None:
    with pytest.raises(Refused) as refused:
        await gate(directory).admit(address, credentials, now=1000.0)
    assert (refused.value.status, refused.value.code) == (status, code)


async def test_public_sandboxes_and_signed_urls(directory: Directory) -> None:
    await directory.apply(envelope(ev.SandboxPublicChanged(sandbox_id=SID, public=True), 10))
    assert (await gate(directory).admit(HOST, Credentials(), now=1000.0)).via == "public"
    expires = datetime.now(timezone.utc) + timedelta(seconds=60)
    token = "abcdefghij012345"
    await directory.apply(envelope(preview.SignedPreviewUrlIssued(
        sandbox_id=SID, organization_id="org", port=3000, token_hash=pv.token_hash(token), expires_at=expires), 11))
    signed = pv.PreviewAddress(label=token, port=3000, form="host", upstream="/")
    admission = await gate(directory).admit(signed, Credentials(), now=expires.timestamp() - 1)
    assert admission.via == "signed" and admission.route.sandbox_id == SID
    for address, now in ((signed, expires.timestamp()), (pv.PreviewAddress(label=token, port=3001, form="host",
                                                                           upstream="/"), 0.0)):
        with pytest.raises(Refused):
            await gate(directory).admit(address, Credentials(), now=now)
    await directory.apply(envelope(preview.SignedPreviewUrlExpired(sandbox_id=SID, port=3000,
                                                                   token_hash=pv.token_hash(token)), 12))
    with pytest.raises(Refused):
        await gate(directory).admit(signed, Credentials(), now=0.0)


def test_grants_whose_time_is_up_are_forgotten() -> None:
    table = RouteTable()
    now = datetime.now(timezone.utc)
    for n, seconds in enumerate((-1, 0, 60)):
        table.apply(preview.SignedPreviewUrlIssued(sandbox_id=SID, organization_id="o", port=1, token_hash=str(n),
                                                   expires_at=now + timedelta(seconds=seconds)))
    assert table.prune_grants(now) == 2 and list(table.grants) == ["2"]


async def test_a_stopped_sandbox_is_woken_then_served(directory: Directory) -> None:
    await directory.apply(envelope(ev.SandboxStopped(sandbox_id=SID, runner_id="r1"), 20))
    route = directory.table.routes[SID]
    wake = FakeWake(directory, [ev.SandboxStartRequested(sandbox_id=SID), ev.SandboxStarted(sandbox_id=SID,
                                                                                             runner_id="r1")],
                    PreviewWakeReply(accepted=True, state="starting"))
    assert await gate(directory, wake).ready(route, 3000, browser=False) is True
    assert wake.calls == [(SID, 3000)] and route.state == "started"
    assert await gate(directory, wake).ready(route, 3000, browser=False) is False


async def test_a_browser_gets_the_starting_page_and_refusals_are_503(directory: Directory) -> None:
    await directory.apply(envelope(ev.SandboxStopped(sandbox_id=SID, runner_id="r1"), 20))
    route = directory.table.routes[SID]
    wake = FakeWake(directory, [ev.SandboxStartRequested(sandbox_id=SID)], PreviewWakeReply(accepted=True))
    with pytest.raises(Starting):
        await gate(directory, wake).ready(route, 3000, browser=True)
    assert route.state == "starting"
    await directory.apply(envelope(ev.SandboxStopped(sandbox_id=SID, runner_id="r1"), 30))
    refusing = FakeWake(directory, [], PreviewWakeReply(accepted=False, message="no"))
    with pytest.raises(Refused) as refused:
        await gate(directory, refusing).ready(route, 3000, browser=False)
    assert (refused.value.status, refused.value.code) == (503, "WAKE_REFUSED")
    await directory.apply(envelope(ev.SandboxFailed(sandbox_id=SID, reason="boom"), 31))
    with pytest.raises(Refused) as failed:
        await gate(directory, refusing).ready(route, 3000, browser=False)
    assert (failed.value.status, failed.value.code) == (503, "SANDBOX_ERROR")
