"""Who may open a preview: every credential of daytona-platform.md §14 (and what is stripped before the
app sees the request), every refusal, signed URLs with expiry and revocation, the public switch, and
the REST endpoints through the official SDK."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from daytona import AsyncDaytona
from yarl import URL

from corral_stack.stack import Stack
from corral_testing.waiting import wait_for

from ..conftest import config
from .conftest import APP_PORT, AppSandbox, known_to_the_proxy
from .preview_client import host_url, path_url

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

UNKNOWN = "0b7e4a52-59d2-4a0e-9a55-3f6a2b1c9d10"


async def fetch(client: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, dict[str, str], Any, str]:
    """(status, headers, body as JSON or text, raw Set-Cookie lines)."""
    async with client.get(url, allow_redirects=False, **kwargs) as response:
        text = await response.text()
        body: Any = json.loads(text) if response.content_type == "application/json" else text
        return response.status, dict(response.headers), body, "\n".join(response.headers.getall("Set-Cookie", []))


async def seen_by_app(client: aiohttp.ClientSession, url: str, **kwargs: Any) -> dict[str, Any]:
    status, _, body, _ = await fetch(client, url + "/headers", **kwargs)
    assert status == 200, body
    return {"path": body["path"], "headers": {k.lower(): v for k, v in body["headers"]}}


async def test_the_sdk_hands_out_preview_and_signed_urls(stack: Stack, app: AppSandbox) -> None:
    link = app.sandbox.get_preview_link(APP_PORT)
    assert link.url == host_url(stack, APP_PORT, app.id) and link.token == app.token and len(app.token) == 32
    signed = app.sandbox.create_signed_preview_url(APP_PORT, 120)
    assert signed.port == APP_PORT and signed.sandbox_id == app.id
    assert len(signed.token) == 16 and signed.token.isalnum() and signed.token.islower()
    assert signed.url == host_url(stack, APP_PORT, signed.token)
    default = app.sandbox.create_signed_preview_url(APP_PORT)
    assert default.token != signed.token


async def test_the_async_sdk_works_unchanged_too(stack: Stack, app: AppSandbox, client: aiohttp.ClientSession) -> None:
    async with AsyncDaytona(config(stack)) as daytona:
        sandbox = await daytona.get(app.id)
        link = await sandbox.get_preview_link(APP_PORT)
        assert (link.url, link.token) == (host_url(stack, APP_PORT, app.id), app.token)
        signed = await sandbox.create_signed_preview_url(APP_PORT, 60)
        async with client.get(signed.url + "/hello") as response:
            assert response.status == 200
        await sandbox.expire_signed_preview_url(APP_PORT, signed.token)

        async def revoked() -> bool:
            async with client.get(signed.url + "/hello") as response:
                return response.status == 403

        await wait_for(revoked, timeout=10, message="the revoked URL still works")
        await sandbox.set_public(False)
        assert (await daytona.get(app.id)).public is False


async def test_rest_validation_and_unknown_sandboxes(stack: Stack, app: AppSandbox, rest: Any) -> None:
    base = f"{rest.api}/sandbox/{app.id}/ports"
    for port in ("0", "65536", "http", "-1"):
        status, body = await rest.call("GET", f"{base}/{port}/preview-url")
        assert (status, body["code"]) == (400, "BAD_REQUEST"), port
    for seconds in ("0", "86401", "soon", "-5", "1.5"):
        status, body = await rest.call("GET", f"{base}/{APP_PORT}/signed-preview-url",
                                       params={"expiresInSeconds": seconds})
        assert (status, body["code"]) == (400, "BAD_REQUEST"), seconds
    status, signed = await rest.call("GET", f"{base}/{APP_PORT}/signed-preview-url",
                                     params={"expiresInSeconds": "86400"})
    assert status == 200 and signed["port"] == APP_PORT and signed["sandboxId"] == app.id
    for port, token in ((APP_PORT, "aaaaaaaaaaaaaaaa"), (APP_PORT, "short"), (APP_PORT + 1, signed["token"])):
        status, body = await rest.call("POST", f"{base}/{port}/signed-preview-url/{token}/expire")
        assert (status, body["code"]) == (404, "NOT_FOUND"), (port, token)
    status, body = await rest.call("POST", f"{base}/{APP_PORT}/signed-preview-url/{signed['token']}/expire")
    assert status == 200
    status, body = await rest.call("POST", f"{rest.api}/sandbox/{app.id}/public/maybe")
    assert (status, body["code"]) == (400, "BAD_REQUEST")
    for path in (f"ports/{APP_PORT}/preview-url", f"ports/{APP_PORT}/signed-preview-url"):
        status, body = await rest.call("GET", f"{rest.api}/sandbox/{UNKNOWN}/{path}")
        assert status == 404, body
    status, body = await rest.call("POST", f"{rest.api}/sandbox/{UNKNOWN}/public/true")
    assert status == 404


async def test_no_credential_is_401_json_or_html(stack: Stack, app: AppSandbox, client: aiohttp.ClientSession) -> None:
    url = host_url(stack, APP_PORT, app.id) + "/hello"
    status, headers, body, _ = await fetch(client, url)
    assert status == 401 and body["statusCode"] == 401 and body["code"] == "UNAUTHORIZED"
    assert "X-Daytona-Preview-Token" in body["message"]
    status, headers, body, _ = await fetch(client, url, headers={"Accept": "text/html,*/*"})
    assert status == 401 and headers["Content-Type"].startswith("text/html") and "<h1>" in body
    status, _, body, _ = await fetch(client, url, headers={"Authorization": "Bearer crl_not-a-key"})
    assert (status, body["code"]) == (401, "UNAUTHORIZED")


@pytest.mark.parametrize("form", ["host", "path"])
async def test_wrong_tokens_are_403(stack: Stack, app: AppSandbox, client: aiohttp.ClientSession, form: str) -> None:
    url = (host_url if form == "host" else path_url)(stack, APP_PORT, app.id) + "/hello"
    wrong = "f" * 32
    for kwargs in ({"headers": {"X-Daytona-Preview-Token": wrong}}, {"params": {"DAYTONA_SANDBOX_AUTH_KEY": wrong}},
                   {"headers": {"Cookie": f"daytona-sandbox-auth-{app.id}=9999999999.forged"}}):
        status, _, body, _ = await fetch(client, url, **kwargs)
        assert (status, body["code"]) == (403, "INVALID_PREVIEW_TOKEN"), kwargs


async def test_unknown_and_other_organizations_sandboxes_look_the_same(
        stack: Stack, app: AppSandbox, client: aiohttp.ClientSession, other_key: str) -> None:
    await known_to_the_proxy(stack, other_key, app.id)
    answers = []
    for label, headers in ((UNKNOWN, {}), (UNKNOWN, {"Authorization": f"Bearer {other_key}"}),
                           (app.id, {"Authorization": f"Bearer {other_key}"}), ("not-a-sandbox", {})):
        status, _, body, _ = await fetch(client, host_url(stack, APP_PORT, label) + "/hello", headers=headers)
        answers.append((status, body["code"], body["message"].replace(label, "<id>")))
    assert set(answers) == {(404, "NOT_FOUND", "Sandbox <id> not found")}, answers


@pytest.mark.parametrize("form", ["host", "path"])
async def test_header_token_and_api_key_open_it_and_never_reach_the_app(
        stack: Stack, app: AppSandbox, client: aiohttp.ClientSession, form: str) -> None:
    url = (host_url if form == "host" else path_url)(stack, APP_PORT, app.id)
    seen = await seen_by_app(client, url, headers={"X-Daytona-Preview-Token": app.token, "X-App": "kept",
                                                  "X-Daytona-Skip-Last-Activity-Update": "true"})
    headers = seen["headers"]
    assert headers["host"] == f"localhost:{APP_PORT}" and headers["x-app"] == "kept"
    assert not {"x-daytona-preview-token", "x-daytona-skip-last-activity-update", "x-corral-internal-token"} & set(headers)
    assert headers["x-forwarded-host"] == url.split("//", 1)[1].split("/", 1)[0]
    assert headers["x-forwarded-proto"] == "http"
    if form == "path":
        assert headers["x-forwarded-prefix"] == f"/preview/{app.id}/{APP_PORT}" and seen["path"] == "/headers"
    seen = await seen_by_app(client, url, headers={"Authorization": f"Bearer {stack.admin_api_key}"})
    assert "authorization" not in seen["headers"]
    seen = await seen_by_app(client, url, headers={"X-Daytona-Preview-Token": app.token,
                                                  "Authorization": "Basic dXNlcjpwdw=="})
    assert seen["headers"]["authorization"] == "Basic dXNlcjpwdw=="  # the app's own credentials pass


@pytest.mark.parametrize("form", ["host", "path"])
async def test_query_token_sets_a_cookie_that_opens_it_afterwards(
        stack: Stack, app: AppSandbox, client: aiohttp.ClientSession, form: str) -> None:
    url = (host_url if form == "host" else path_url)(stack, APP_PORT, app.id)
    raw = URL(url + "/headers?a=1&DAYTONA_SANDBOX_AUTH_KEY=" + app.token + "&b=%2F2", encoded=True)
    status, _, body, cookies = await fetch(client, raw)  # type: ignore[arg-type]
    assert status == 200 and body["path"] == "/headers?a=1&b=%2F2"
    ours = [c for c in cookies.splitlines() if c.startswith(f"daytona-sandbox-auth-{app.id}=")]
    assert len(ours) == 1, cookies
    attributes = {a.strip().split("=")[0].lower() for a in ours[0].split(";")[1:]}
    assert {"max-age", "path", "httponly", "samesite"} <= attributes and "Max-Age=3600" in ours[0]
    assert ("Path=/;" in ours[0]) if form == "host" else (f"Path=/preview/{app.id};" in ours[0])
    value = ours[0].split(";")[0]
    seen = await seen_by_app(client, url, headers={"Cookie": f"theirs=1; {value}; also=2"})
    assert seen["headers"]["cookie"] == "theirs=1; also=2"
    status, _, _, _ = await fetch(client, host_url(stack, APP_PORT, app.id) + "/hello",
                                  headers={"Cookie": value.replace(app.id, "x" * 8)})
    assert status == 401


async def test_answers_keep_every_set_cookie_and_redirects_stay_in_the_preview(
        stack: Stack, app: AppSandbox, client: aiohttp.ClientSession) -> None:
    token = {"X-Daytona-Preview-Token": app.token}
    status, _, _, cookies = await fetch(client, host_url(stack, APP_PORT, app.id) + "/hello", headers=token)
    assert status == 200 and cookies.splitlines() == ["app=1; Path=/", "other=2; Path=/"]
    base = path_url(stack, APP_PORT, app.id)
    status, headers, _, _ = await fetch(client, base + "/redirect", headers=token)
    assert (status, headers["Location"]) == (302, f"/preview/{app.id}/{APP_PORT}/hello")
    status, headers, _, _ = await fetch(client, base + "/redirect-absolute", headers=token)
    assert (status, headers["Location"]) == (302, f"{base}/hello")
    host = host_url(stack, APP_PORT, app.id)
    status, headers, _, _ = await fetch(client, host + "/redirect-absolute", headers=token)
    assert (status, headers["Location"]) == (302, f"{host}/hello")


async def test_signed_urls_open_one_port_until_revoked_or_expired(
        stack: Stack, app: AppSandbox, client: aiohttp.ClientSession) -> None:
    signed = app.sandbox.create_signed_preview_url(APP_PORT, 300)
    path_form = path_url(stack, APP_PORT, signed.token)
    for url in (signed.url, path_form):
        status, _, body, cookies = await fetch(client, url + "/hello")
        assert (status, body, cookies) == (200, "hello from the sandbox\n", "app=1; Path=/\nother=2; Path=/")
    status, _, body, _ = await fetch(client, host_url(stack, APP_PORT + 1, signed.token) + "/hello")
    assert (status, body["code"]) == (403, "WRONG_PORT")
    app.sandbox.expire_signed_preview_url(APP_PORT, signed.token)
    app.sandbox.expire_signed_preview_url(APP_PORT, signed.token)  # idempotent

    async def revoked() -> bool:
        return (await fetch(client, signed.url + "/hello"))[0] == 403

    await wait_for(revoked, timeout=10, message="a revoked signed URL still opens the preview")
    status, _, body, _ = await fetch(client, path_form + "/hello")
    assert (status, body["code"]) == (403, "PREVIEW_URL_EXPIRED")
    short = app.sandbox.create_signed_preview_url(APP_PORT, 1)
    first = await fetch(client, short.url + "/hello")
    assert first[0] in (200, 403)  # it may already be past its one second on a loaded machine

    async def expired() -> bool:
        return (await fetch(client, short.url + "/hello"))[0] == 403

    await wait_for(expired, timeout=10, message="a signed URL outlived its expiry")
    status, _, body, _ = await fetch(client, host_url(stack, APP_PORT, "abcdefghij012345") + "/hello")
    assert (status, body["code"]) == (403, "PREVIEW_URL_EXPIRED")


async def test_public_previews_need_no_credential_until_made_private_again(
        stack: Stack, app: AppSandbox, client: aiohttp.ClientSession, daytona: Any) -> None:
    url = host_url(stack, APP_PORT, app.id) + "/hello"

    async def status_is(expected: int) -> bool:
        return (await fetch(client, url))[0] == expected

    try:
        app.sandbox.set_public(True)
        assert daytona.get(app.id).public is True
        await wait_for(lambda: status_is(200), timeout=10, message="a public sandbox still asks for credentials")
        seen = await seen_by_app(client, host_url(stack, APP_PORT, app.id),
                                 headers={"Authorization": f"Bearer {stack.admin_api_key}"})
        assert "authorization" not in seen["headers"]  # a Corral key never reaches the app, public or not
    finally:
        app.sandbox.set_public(False)
    assert daytona.get(app.id).public is False
    await wait_for(lambda: status_is(401), timeout=10, message="a private sandbox is still public")
