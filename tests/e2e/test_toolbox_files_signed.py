"""Signed file URLs (`sandbox.download_url` / `upload_url`): fetched with a plain HTTP client and no API
key; tampered, re-targeted, expired or rotated-away signatures are refused by the proxy."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from daytona import AsyncDaytona, Daytona, DaytonaConfig
from daytona._utils.file_url_signing import compute_file_url_signature

from corral_stack.stack import Stack
from corral_testing.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def config(stack: Stack) -> DaytonaConfig:
    return DaytonaConfig(api_key=stack.admin_api_key, api_url=stack.api_url)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


async def refused_after_rotation(http: aiohttp.ClientSession, url: str) -> None:
    """The proxy learns the new key from the event stream a moment after the api answers."""
    async def refused() -> bool:
        return (await fetch(http, url))[0] == 401

    await wait_for(refused, timeout=10, message="a URL signed with the old key still opens after the rotation")


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with http.get(url) as response:
        return response.status, await response.read()


async def upload(http: aiohttp.ClientSession, url: str, data: bytes) -> tuple[int, object]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="ignored-name.bin", content_type="application/octet-stream")
    async with http.post(url, data=form) as response:
        body = await response.json() if response.content_type == "application/json" else await response.read()
        return response.status, body


async def test_signed_urls_through_the_sync_sdk(stack: Stack) -> None:
    daytona = Daytona(config(stack))
    sandbox = await asyncio.to_thread(daytona.create, timeout=120)
    try:
        await asyncio.to_thread(sandbox.fs.upload_file, b"quarterly numbers", "share/report.txt")
        url = await asyncio.to_thread(sandbox.download_url, "share/report.txt")
        async with aiohttp.ClientSession() as http:  # no Authorization header anywhere
            assert await fetch(http, url) == (200, b"quarterly numbers")
            signature = parse_qs(urlsplit(url).query)["signature"][0]
            tampered = signature[:-1] + ("A" if signature[-1] != "A" else "B")
            assert (await fetch(http, with_query(url, signature=tampered)))[0] == 401
            assert (await fetch(http, with_query(url, path="/etc/passwd")))[0] == 401
            assert (await fetch(http, with_query(url, expires=str(int(time.time()) + 99999))))[0] == 401
            async with http.post(url) as wrong_method:
                assert wrong_method.status == 401
            odd = "share/a b+c&d=é%20.txt"  # survives the SDK's query encoding and the proxy's decoding
            await asyncio.to_thread(sandbox.fs.upload_file, b"odd", odd)
            assert await fetch(http, await asyncio.to_thread(sandbox.download_url, odd)) == (200, b"odd")
            forever = await asyncio.to_thread(sandbox.download_url, "share/report.txt", 0)
            assert "expires=0" in forever and await fetch(http, forever) == (200, b"quarterly numbers")

            key = await asyncio.to_thread(sandbox._ensure_signing_key)  # what the SDK signs with
            past = int(time.time()) - 5
            expired = with_query(url, expires=str(past),
                                 signature=compute_file_url_signature(key, "GET", "share/report.txt", past))
            status, body = await fetch(http, expired)
            assert status == 403 and b"expired" in body

            put = await asyncio.to_thread(sandbox.upload_url, "share/incoming/data.bin")
            assert await upload(http, put, b"\x00\x01uploaded") == (200, {
                "name": "data.bin", "path": "/home/daytona/share/incoming/data.bin", "type": "file", "size": 10})
            assert await asyncio.to_thread(sandbox.fs.download_file, "share/incoming/data.bin") == b"\x00\x01uploaded"
            assert (await fetch(http, with_query(put)))[0] == 401  # an upload signature does not open a download

            await asyncio.to_thread(sandbox.rotate_signing_key)
            await refused_after_rotation(http, url)
            assert (await upload(http, put, b"late"))[0] == 401
            fresh = await asyncio.to_thread(sandbox.download_url, "share/report.txt")
            assert await fetch(http, fresh) == (200, b"quarterly numbers")
    finally:
        await asyncio.to_thread(daytona.delete, sandbox, timeout=60)


async def test_signed_urls_through_the_async_sdk(stack: Stack) -> None:
    async with AsyncDaytona(config(stack)) as daytona:
        sandbox = await daytona.create(timeout=120)
        try:
            put = await sandbox.upload_url("async/in.txt", ttl_seconds=60)
            async with aiohttp.ClientSession() as http:
                assert (await upload(http, put, b"from a signed upload"))[0] == 200
                url = await sandbox.download_url("async/in.txt", ttl_seconds=60)
                assert await fetch(http, url) == (200, b"from a signed upload")
                assert (await fetch(http, await sandbox.download_url("async/missing.txt")))[0] == 404
                await sandbox.rotate_signing_key()
                await refused_after_rotation(http, url)
                assert await fetch(http, await sandbox.download_url("async/in.txt")) == (200, b"from a signed upload")
        finally:
            await daytona.delete(sandbox, timeout=60)


async def test_the_signing_key_is_stable_until_rotated_and_kept_out_of_the_timeline(stack: Stack, rest) -> None:
    sandbox = await rest.create()
    try:
        base = f"{stack.api_url}/sandbox/{sandbox['id']}"
        first = await rest.call("GET", f"{base}/signing-key")
        assert first[0] == 200 and isinstance(first[1], str) and len(first[1]) >= 32
        assert await rest.call("GET", f"{base}/signing-key") == first
        rotated = await rest.call("POST", f"{base}/signing-key/rotate")
        assert rotated[0] == 200 and isinstance(rotated[1], str) and rotated[1] != first[1]
        assert (await rest.call("GET", f"{base}/signing-key"))[1] == rotated[1]
        status, timeline = await rest.call("GET", f"{base}/events")
        assert status == 200
        keys = [e["data"]["signing_key"] for e in timeline["items"] if e["type"] == "SandboxSigningKeyRotated"]
        assert keys == ["(redacted)", "(redacted)"]
        missing = "00000000-0000-4000-8000-0000000000ff"
        assert (await rest.call("GET", f"{stack.api_url}/sandbox/{missing}/signing-key"))[0] == 404
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"{base}/signing-key") as response:
                assert response.status == 401
    finally:
        await rest.delete(sandbox["id"])
