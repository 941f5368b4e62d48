"""The files area on the wire (daytona-wire.md §5.3): exact statuses, error bodies, the multipart
response of bulk-download, bulk-upload failures, and uploads cut off midway leaving nothing behind."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from corral_testing.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture
async def box(rest) -> AsyncIterator[tuple[object, str]]:  # type: ignore[no-untyped-def]
    sandbox = await rest.create()
    try:
        yield rest, f"{rest.toolbox}/{sandbox['id']}"
    finally:
        await rest.delete(sandbox["id"])


async def sh(rest, tb: str, command: str) -> str:  # type: ignore[no-untyped-def]
    status, body = await rest.call("POST", f"{tb}/process/execute", json={"command": command})
    assert status == 200 and body["exitCode"] == 0, body
    return str(body["result"])


async def test_statuses_and_error_bodies(box) -> None:  # type: ignore[no-untyped-def]
    rest, tb = box
    assert (await rest.call("POST", f"{tb}/files/folder", params={"path": "w/d", "mode": "755"}))[0] == 201
    await sh(rest, tb, "echo hi > w/f.txt")
    assert (await rest.call("POST", f"{tb}/files/move", params={"source": "w/f.txt", "destination": "w/g.txt"}))[0] \
        == 200
    assert (await rest.call("POST", f"{tb}/files/permissions", params={"path": "w/g.txt", "mode": "640"}))[0] == 200
    status, info = await rest.call("GET", f"{tb}/files/info", params={"path": "w/g.txt"})
    assert status == 200 and info["permissions"] == "0640" and info["size"] == 3
    assert (await rest.call("DELETE", f"{tb}/files", params={"path": "w/g.txt"}))[0] == 204
    assert await rest.call("GET", f"{tb}/files/info", params={"path": "w/g.txt"}) == (404, {
        "statusCode": 404, "message": "No such file or directory: /home/daytona/w/g.txt", "code": "FILE_NOT_FOUND",
        "source": "DAYTONA_DAEMON"})
    for params, code in (({"path": "w", "depth": "0"}, "BAD_REQUEST"), ({"path": "w", "depth": "x"}, "BAD_REQUEST"),
                         ({"path": "w/d/../../.bashrc"}, "INVALID_FILE_PATH")):
        status, body = await rest.call("GET", f"{tb}/files", params=params)
        assert (status, body["code"]) == (400, code), body
    assert (await rest.call("GET", f"{tb}/files/info"))[0] == 400
    assert (await rest.call("DELETE", f"{tb}/files", params={"path": "w"}))[1]["code"] == "INVALID_FILE_PATH"
    status, body = await rest.call("DELETE", f"{tb}/files", params={"path": "/etc", "recursive": "true"})
    assert (status, body["code"]) == (403, "FILE_ACCESS_DENIED")
    assert (await rest.call("POST", f"{tb}/files/replace", data=b"{not json"))[0] == 400
    assert (await rest.call("POST", f"{tb}/files/replace", json={"files": "x", "pattern": "a", "newValue": "b"}))[0] \
        == 400
    assert await rest.call("GET", f"{tb}/files/find", params={"path": "w", "pattern": "zzz"}) == (200, [])
    assert await rest.call("GET", f"{tb}/files/search", params={"path": "w", "pattern": "*.none"}) == (200,
                                                                                                       {"files": []})


async def test_bulk_download_is_a_complete_multipart_response(box) -> None:  # type: ignore[no-untyped-def]
    rest, tb = box
    await sh(rest, tb, "printf 'one' > one.txt && printf '' > empty.txt")
    async with rest.session.post(f"{tb}/files/bulk-download", headers=rest.auth,
                                 json={"paths": ["one.txt", "missing.txt", "empty.txt"]}) as response:
        assert response.status == 200
        match = re.fullmatch(r"multipart/form-data; boundary=(\S+)", response.headers["Content-Type"])
        assert match
        body = await response.read()
    boundary = match[1].encode()
    assert body.endswith(b"--" + boundary + b"--\r\n")
    parts = body[: -len(boundary) - 6].split(b"--" + boundary + b"\r\n")[1:]
    heads = [part.split(b"\r\n\r\n", 1) for part in parts]
    assert b'name="file"; filename="one.txt"' in heads[0][0] and heads[0][1] == b"one\r\n"
    assert b'name="error"; filename="missing.txt"' in heads[1][0] and b"application/json" in heads[1][0]
    error = json.loads(heads[1][1])
    assert error["statusCode"] == 404 and error["code"] == "FILE_NOT_FOUND" and error["message"]
    assert b'filename="empty.txt"' in heads[2][0] and heads[2][1] == b"\r\n"
    async with rest.session.post(f"{tb}/files/bulk-download", headers=rest.auth, json={"paths": "one.txt"}) as bad:
        assert bad.status == 400


async def test_bulk_upload_reports_failures_and_keeps_what_worked(box) -> None:  # type: ignore[no-untyped-def]
    rest, tb = box
    form = aiohttp.FormData()
    for i, path in enumerate(["ok/a.txt", "/etc/forbidden.txt"]):
        form.add_field(f"files[{i}].path", path)
    for i, path in enumerate(["ok/a.txt", "/etc/forbidden.txt"]):
        form.add_field(f"files[{i}].file", b"data %d" % i, filename=path)
    status, body = await rest.call("POST", f"{tb}/files/bulk-upload", data=form)
    assert status == 403 and body["files"] == [{"path": "/home/daytona/ok/a.txt", "bytes": 6}]
    assert len(body["errors"]) == 1 and "Permission denied" in body["errors"][0]
    assert await sh(rest, tb, "cat ok/a.txt") == "data 0"
    assert (await rest.call("POST", f"{tb}/files/bulk-upload", json={"files": []}))[0] == 400
    raw = await rest.call("POST", f"{tb}/files/upload-v2", params={"path": "raw.bin"}, data=b"\xffraw")
    assert raw == (200, {"name": "raw.bin", "path": "/home/daytona/raw.bin", "type": "file", "size": 4})
    async with rest.session.get(f"{tb}/files/download", params={"path": "raw.bin"}, headers=rest.auth) as response:
        assert response.status == 200 and response.headers["Content-Length"] == "4"
        assert response.headers["Content-Disposition"] == 'attachment; filename="raw.bin"'
        assert await response.read() == b"\xffraw"


async def test_an_upload_cut_off_midway_leaves_the_target_untouched(box) -> None:  # type: ignore[no-untyped-def]
    rest, tb = box
    await sh(rest, tb, "mkdir cut && printf original > cut/target.bin")
    boundary = "cut-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files[0].path\"\r\n\r\ncut/target.bin\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files[0].file\"; filename=\"cut/target.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()

    class ClientGaveUp(Exception):
        pass

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(64):
            yield b"z" * 65536
        raise ClientGaveUp()

    with pytest.raises((ClientGaveUp, aiohttp.ClientError)):
        async with rest.session.post(f"{tb}/files/bulk-upload", data=body(), headers={
                **rest.auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}) as response:
            await response.read()

    async def cleaned() -> bool:
        return await sh(rest, tb, "ls -A cut") == "target.bin\n"

    await wait_for(cleaned, timeout=20, message="the partial upload's temporary file was never removed")
    assert await sh(rest, tb, "cat cut/target.bin") == "original"
