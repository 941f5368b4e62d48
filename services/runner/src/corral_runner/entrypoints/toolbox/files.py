"""Toolbox: `/files/*` (daytona-wire.md §5.3). Failures carry `source: DAYTONA_DAEMON` and a `FILE_*` code.

Listings are streamed as JSON arrays, uploads are read part by part and piped to the agent, downloads
are written part by part as the agent reads the file: nothing is held whole. Once a streamed
response has started, a failure can no longer change its status, so the connection is cut instead
(the client sees a truncated body, never a complete-looking one).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web

from corral_agent.client import AgentUnavailable, ProtocolViolation
from corral_web import HttpError, decode_json, reply

from ...app.files import FileFailure, Files
from .common import AGENT, DAEMON, PREFIX, sandbox_id
from .files_multipart import (READ_CHUNK, UPLOAD_FIELD, BadPathField, closing, disposition, error_part,
                              file_part_head, new_boundary, part_chunks, path_field)

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_encode = msgspec.json.encode
_BROKEN = (FileFailure, AgentUnavailable, ProtocolViolation, ConnectionError)


class DownloadRequest(msgspec.Struct):
    paths: list[str]


class ReplaceRequest(msgspec.Struct, rename="camel"):
    files: list[str]
    pattern: str
    new_value: str


def _translated(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except FileFailure as failure:
            raise HttpError(failure.status, failure.message, failure.code, DAEMON) from None
        except (AgentUnavailable, ProtocolViolation):
            raise _not_running(request) from None

    return wrapper


def _not_running(request: web.Request) -> HttpError:
    return HttpError(502, f"Sandbox {sandbox_id(request)} is not running on this runner", "SANDBOX_NOT_RUNNING", DAEMON)


def _files(request: web.Request) -> Files:
    return Files(request.app[AGENT])


def _query(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise HttpError(400, f"the query parameter '{name}' is required", "INVALID_FILE_PATH", DAEMON)
    return value


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", ""):
        raise HttpError(400, f"'{name}' must be true or false", "BAD_REQUEST", DAEMON)
    return value in ("true", "1")


def _cut(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """A streamed response failed midway: close the connection so the client cannot mistake it for whole."""
    if request.transport is not None:
        request.transport.close()
    return response


async def _json_array(request: web.Request, items: AsyncIterator[Any], head: bytes = b"[",
                      tail: bytes = b"]") -> web.StreamResponse:
    async with aclosing(items):
        first = await anext(items, None)  # a refusal (missing path, ...) still becomes a proper error
        if first is None:
            return web.Response(body=head + tail, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        buffer = bytearray(head) + _encode(first)
        try:
            async for item in items:
                buffer += b"," + _encode(item)
                if len(buffer) >= READ_CHUNK:
                    await response.write(bytes(buffer))
                    buffer.clear()
            await response.write(bytes(buffer + tail))
        except _BROKEN:
            return _cut(request, response)
        await response.write_eof()
        return response


# --- metadata -------------------------------------------------------------------------------


@routes.get(PREFIX + "/files")
@_translated
async def list_files(request: web.Request) -> web.StreamResponse:
    raw_depth = request.query.get("depth")
    try:
        depth = int(raw_depth) if raw_depth else 1
    except ValueError:
        depth = 0
    if depth < 1:
        raise HttpError(400, "depth must be an integer >= 1", "BAD_REQUEST", DAEMON)
    request_ = {"op": "files.list", "path": request.query.get("path") or ".", "depth": depth}
    return await _json_array(request, _files(request).items(sandbox_id(request), request_))


@routes.get(PREFIX + "/files/info")
@_translated
async def file_info(request: web.Request) -> web.Response:
    result = await _files(request).one(sandbox_id(request), {"op": "files.info", "path": _query(request, "path")})
    return reply(result["info"])


@routes.get(PREFIX + "/files/search")
@_translated
async def search_files(request: web.Request) -> web.StreamResponse:
    op = {"op": "files.search", "path": request.query.get("path") or ".", "pattern": _query(request, "pattern")}
    return await _json_array(request, _files(request).items(sandbox_id(request), op), b'{"files":[', b"]}")


@routes.get(PREFIX + "/files/find")
@_translated
async def find_in_files(request: web.Request) -> web.StreamResponse:
    op = {"op": "files.find", "path": request.query.get("path") or ".", "pattern": _query(request, "pattern")}
    return await _json_array(request, _files(request).items(sandbox_id(request), op))


@routes.post(PREFIX + "/files/folder")
@_translated
async def create_folder(request: web.Request) -> web.Response:
    op = {"op": "files.mkdir", "path": _query(request, "path"), "mode": request.query.get("mode") or None}
    await _files(request).one(sandbox_id(request), op)
    return web.Response(status=201)


@routes.delete(PREFIX + "/files")
@_translated
async def delete_file(request: web.Request) -> web.Response:
    op = {"op": "files.delete", "path": _query(request, "path"), "recursive": _flag(request, "recursive")}
    await _files(request).one(sandbox_id(request), op)
    return web.Response(status=204)


@routes.post(PREFIX + "/files/move")
@_translated
async def move_file(request: web.Request) -> web.Response:
    op = {"op": "files.move", "source": _query(request, "source"), "destination": _query(request, "destination")}
    await _files(request).one(sandbox_id(request), op)
    return web.Response(status=200)


@routes.post(PREFIX + "/files/permissions")
@_translated
async def set_permissions(request: web.Request) -> web.Response:
    query = request.query
    op = {"op": "files.chmod", "path": _query(request, "path"), "mode": query.get("mode") or None,
          "owner": query.get("owner") or None, "group": query.get("group") or None}
    await _files(request).one(sandbox_id(request), op)
    return web.Response(status=200)


@routes.post(PREFIX + "/files/replace")
@_translated
async def replace_in_files(request: web.Request) -> web.StreamResponse:
    body = await decode_json(request, ReplaceRequest, empty_ok=False)
    op = {"op": "files.replace", "files": body.files, "pattern": body.pattern, "newValue": body.new_value}
    return await _json_array(request, _files(request).items(sandbox_id(request), op))


# --- contents -------------------------------------------------------------------------------


@routes.post(PREFIX + "/files/bulk-upload")
@_translated
async def bulk_upload(request: web.Request) -> web.Response:
    """`files[i].path` + `files[i].file` parts, each file piped to the agent as it arrives."""
    reader = await _multipart(request)
    files, sid = _files(request), sandbox_id(request)
    destinations: dict[int, str] = {}
    written: list[dict[str, Any]] = []
    failures: list[tuple[int, str, str]] = []
    while (part := await _next_part(reader)) is not None:
        match = UPLOAD_FIELD.match(part.name or "") if isinstance(part, BodyPartReader) else None
        if match is None or not isinstance(part, BodyPartReader):
            await part.release()
            continue
        index = int(match[1])
        try:
            if match[2] == "path":
                destinations[index] = await path_field(part)
                continue
            destination = destinations.get(index) or part.filename
            if not destination:
                raise FileFailure(400, "INVALID_FILE_PATH", "no destination path (files[i].path) was given")
            result = await files.write(sid, destination, part_chunks(part))
            written.append({"path": result["path"], "bytes": result["size"]})
        except FileFailure as failure:
            failures.append((failure.status, failure.code, f"files[{index}]: {failure.message}"))
        except BadPathField as error:
            failures.append((400, "INVALID_FILE_PATH", f"files[{index}]: {error}"))
        finally:
            await part.release()  # whatever the agent did not take
    if not failures:
        return reply({"files": written})
    statuses = {status for status, _, _ in failures}
    status = statuses.pop() if len(statuses) == 1 else 400
    messages = [message for _, _, message in failures]
    return reply({"errors": messages, "files": written, "message": "; ".join(messages), "statusCode": status,
                  "code": failures[0][1] if status != 400 or len(failures) == 1 else "BAD_REQUEST"}, status=status)


@routes.post(PREFIX + "/files/upload")
@routes.post(PREFIX + "/files/upload-v2")
@_translated
async def upload_file(request: web.Request) -> web.Response:
    """One file to `?path=`: a multipart field `file`, or the raw request body."""
    path = _query(request, "path")
    files, sid = _files(request), sandbox_id(request)
    result: dict[str, Any] | None = None
    if request.content_type.startswith("multipart/"):
        reader = await _multipart(request)
        while (part := await _next_part(reader)) is not None:
            if result is None and isinstance(part, BodyPartReader) and part.name == "file":
                try:
                    result = await files.write(sid, path, part_chunks(part))
                finally:
                    await part.release()
            else:
                await part.release()
        if result is None:
            raise HttpError(400, "the multipart body has no 'file' field", "BAD_REQUEST", DAEMON)
    else:
        result = await files.write(sid, path, request.content.iter_chunked(READ_CHUNK))
    name = str(result["path"]).rstrip("/").rsplit("/", 1)[-1]
    return reply({"name": name, "path": result["path"], "type": "file", "size": result["size"]})


@routes.get(PREFIX + "/files/download")
@_translated
async def download_file(request: web.Request) -> web.StreamResponse:
    """The raw bytes of `?path=`, with the length the file had when it was opened."""
    path = _query(request, "path")
    async with _files(request).reading(sandbox_id(request), path) as download:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream",
                                               "Content-Disposition": disposition("attachment", path)})
        response.content_length = download.size
        await response.prepare(request)
        sent = 0
        try:
            async for chunk in download.chunks():
                if sent < download.size:
                    piece = chunk[: download.size - sent]
                    await response.write(piece)
                    sent += len(piece)
        except _BROKEN:
            return _cut(request, response)
        if sent < download.size:  # the file shrank while we read it
            return _cut(request, response)
        await response.write_eof()
        return response


@routes.post(PREFIX + "/files/bulk-download")
@_translated
async def bulk_download(request: web.Request) -> web.StreamResponse:
    """A multipart/form-data response: one `file` (or `error`) part per requested path, in order."""
    body = await decode_json(request, DownloadRequest, empty_ok=False)
    boundary = new_boundary()
    response = web.StreamResponse(headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    await response.prepare(request)
    files, sid = _files(request), sandbox_id(request)
    try:
        for path in body.paths:
            await _download_part(response, files, sid, boundary, path)
        await response.write(closing(boundary))
    except ConnectionError:
        return _cut(request, response)
    await response.write_eof()
    return response


async def _download_part(response: web.StreamResponse, files: Files, sid: str, boundary: str, path: str) -> None:
    started = False
    try:
        async with files.reading(sid, path) as download:
            await response.write(file_part_head(boundary, path, download.size))
            started = True
            async for chunk in download.chunks():
                await response.write(chunk)
        await response.write(b"\r\n")
        return
    except FileFailure as failure:
        refusal = failure
    except (AgentUnavailable, ProtocolViolation):
        refusal = FileFailure(502, "SANDBOX_NOT_RUNNING", f"Sandbox {sid} is not running on this runner")
    # A file that failed midway is followed by an error part of the same name: the SDK reports the error.
    await response.write((b"\r\n" if started else b"") + error_part(boundary, path, refusal))


async def _next_part(reader):  # type: ignore[no-untyped-def]
    try:
        return await reader.next()
    except ValueError as error:
        raise HttpError(400, f"malformed multipart body: {error}", "BAD_REQUEST", DAEMON) from None


async def _multipart(request: web.Request):  # type: ignore[no-untyped-def]
    if not request.content_type.startswith("multipart/"):
        raise HttpError(400, "expected a multipart/form-data body", "BAD_REQUEST", DAEMON)
    try:
        return await request.multipart()
    except (ValueError, AssertionError) as error:
        raise HttpError(400, f"malformed multipart body: {error}", "BAD_REQUEST", DAEMON) from None
