"""Signed file URLs: the signature scheme (checked against the SDK's own signer), the route table
learning keys from events, and the directory's decision. No I/O."""

from __future__ import annotations

import time

import pytest
from daytona._utils.file_url_signing import compute_file_url_signature

from corral_contracts import sandbox as ev
from corral_proxy.app.directory import Directory, Refused
from corral_proxy.domain import signing

SID = "22222222-2222-4222-8222-222222222222"


def test_our_signatures_are_the_sdks() -> None:
    for method, path, expires in (("GET", "/home/daytona/a b.txt", 1_900_000_000), ("POST", "rel/ü.bin", 0)):
        assert signing.sign("k3y", method, path, expires) == compute_file_url_signature("k3y", method, path, expires)


@pytest.mark.parametrize(("method", "path", "expires", "signature", "ok"), [
    ("GET", "a.txt", "100", signing.sign("key", "GET", "a.txt", 100), True),
    ("POST", "a.txt", "100", signing.sign("key", "GET", "a.txt", 100), False),
    ("GET", "b.txt", "100", signing.sign("key", "GET", "a.txt", 100), False),
    ("GET", "a.txt", "101", signing.sign("key", "GET", "a.txt", 100), False),
    ("GET", "a.txt", "100", signing.sign("other", "GET", "a.txt", 100), False),
    ("GET", "a.txt", "100", signing.sign("key", "GET", "a.txt", 100)[3:], False),
    ("GET", "a.txt", "-1", signing.sign("key", "GET", "a.txt", -1), False),
    ("GET", "a.txt", "１", signing.sign("key", "GET", "a.txt", 1), False),
])
def test_a_signature_binds_key_method_path_and_expiry(method, path, expires, signature, ok) -> None:  # type: ignore[no-untyped-def]
    assert signing.matches("key", method, path, expires, signature) is ok
    assert signing.matches("", method, path, expires, signature) is False


def test_expiry_zero_never_expires() -> None:
    signing.check_expiry("0", time.time())
    signing.check_expiry("200", 199.5)
    with pytest.raises(signing.SignatureRefused) as refused:
        signing.check_expiry("200", 200.5)
    assert refused.value.status == 403


def test_only_the_two_file_operations_can_be_signed() -> None:
    query = {"signature": "v1_x"}
    assert signing.is_signed_request("GET", "files/download", query)
    assert signing.is_signed_request("post", "files/upload-v2", query)
    assert not signing.is_signed_request("POST", "files/download", query)
    assert not signing.is_signed_request("GET", "files/bulk-download", query)
    assert not signing.is_signed_request("GET", "process/execute", query)
    assert not signing.is_signed_request("GET", "files/download", {})


async def _directory(*events: object) -> Directory:
    directory = Directory(runner_urls=lambda: None, settle_wait=0.05)  # type: ignore[arg-type,return-value]
    for event in events:
        directory.table.apply(event)
    return directory


async def test_the_directory_accepts_only_the_current_key_of_a_started_sandbox() -> None:
    created = ev.SandboxCreated(sandbox_id=SID, organization_id="org", name="n", runner_id="r1", image="i",
                                snapshot="s", user="daytona")
    started = ev.SandboxStarted(sandbox_id=SID, runner_id="r1")
    first = ev.SandboxSigningKeyRotated(sandbox_id=SID, signing_key="first")
    second = ev.SandboxSigningKeyRotated(sandbox_id=SID, signing_key="second")
    directory = await _directory(created, started, first)
    now = time.time()
    expires = str(int(now) + 60)
    good = signing.sign("first", "GET", "p", int(expires))
    assert (await directory.signed_route(SID, "GET", "p", expires, good, now)).runner_id == "r1"
    directory.table.apply(second)
    with pytest.raises(Refused) as refused:
        await directory.signed_route(SID, "GET", "p", expires, good, now)
    assert refused.value.status == 401
    with pytest.raises(Refused) as unknown:
        await directory.signed_route("33333333-3333-4333-8333-333333333333", "GET", "p", expires, good, now)
    assert unknown.value.status == 401
    late = signing.sign("second", "GET", "p", int(now) - 1)
    with pytest.raises(Refused) as expired:
        await directory.signed_route(SID, "GET", "p", str(int(now) - 1), late, now)
    assert expired.value.status == 403
    directory.table.apply(ev.SandboxStopRequested(sandbox_id=SID))
    with pytest.raises(Refused) as stopping:
        await directory.signed_route(SID, "GET", "p", expires, signing.sign("second", "GET", "p", int(expires)), now)
    assert stopping.value.status == 409
