"""`sandbox.fs` through the official SDK, sync and async, against a real sandbox (user `daytona`).

Each scenario is written once as a coroutine; `call` runs a sync SDK method in a thread or awaits an
async one, so both clients go through the very same steps. Streams are compared byte for byte.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from daytona import AsyncDaytona, Daytona, FileDownloadRequest, FileUpload
from daytona.common.errors import (DaytonaError, DaytonaFileAccessDeniedError, DaytonaFileNotFoundError,
                                   DaytonaInvalidFilePathError)

from corral_stack.stack import Stack
from .conftest import config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

Call = Callable[..., Awaitable[Any]]
HOME = "/home/daytona"



def caller(asynchronous: bool) -> Call:
    async def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if asynchronous:
            result = method(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return await asyncio.to_thread(method, *args, **kwargs)
    return call


async def collect(stream: Any) -> bytes:
    """The bytes of a download stream: a sync iterator (consumed in a thread) or an async one."""
    if hasattr(stream, "__aiter__"):
        return b"".join([chunk async for chunk in stream])
    return await asyncio.to_thread(lambda: b"".join(stream))


async def sh(sandbox: Any, call: Call, command: str) -> str:
    response = await call(sandbox.process.exec, command, timeout=60)
    assert response.exit_code == 0, response.result
    return str(response.result)


async def scenario(sandbox: Any, call: Call, local: Path) -> None:
    fs = sandbox.fs
    assert await call(sandbox.get_work_dir) == HOME

    # folders, uploads from bytes, from a local path, in bulk and as a stream
    await call(fs.create_folder, "proj/sub", "750")
    info = await call(fs.get_file_info, "proj/sub")
    assert info.is_dir is True and info.permissions == "0750" and info.owner == "daytona" and info.name == "sub"
    await call(fs.upload_file, b"hello\n", "proj/hello.txt")
    source = local / "source.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    await call(fs.upload_file, str(source), f"{HOME}/proj/sub/from-path.bin")
    await call(fs.upload_files, [FileUpload(b"x = 1  # TODO: first\n", "proj/a.py"),
                                 FileUpload(str(source), "proj/sub/copy.bin"),
                                 FileUpload(b"print('TODO: second')\n", "proj/sub/b.py")])
    progress: list[int] = []
    await call(fs.upload_file_stream, io.BytesIO(b"s" * 200_000), "proj/stream.bin",
               on_progress=lambda p: progress.append(p.bytes_sent))
    assert progress and progress[-1] == 200_000

    # downloads: to memory, to a local path, several at once, streamed
    assert await call(fs.download_file, "proj/hello.txt") == b"hello\n"
    target = local / "out" / "copy.bin"
    await call(fs.download_file, "proj/sub/copy.bin", str(target))
    assert target.read_bytes() == source.read_bytes()
    results = await call(fs.download_files, [FileDownloadRequest(source="proj/hello.txt"),
                                             FileDownloadRequest(source=f"{HOME}/proj/a.py"),
                                             FileDownloadRequest(source="proj/missing.txt"),
                                             FileDownloadRequest(source="proj/sub/from-path.bin",
                                                                 destination=str(local / "bulk.bin"))])
    assert [r.source for r in results] == ["proj/hello.txt", f"{HOME}/proj/a.py", "proj/missing.txt",
                                           "proj/sub/from-path.bin"]
    assert results[0].result == b"hello\n" and results[0].error is None
    assert results[1].result == b"x = 1  # TODO: first\n"
    assert results[2].result is None and results[2].error_details.code == "FILE_NOT_FOUND"
    assert results[3].result == str(local / "bulk.bin") and (local / "bulk.bin").read_bytes() == source.read_bytes()
    assert await collect(await call(fs.download_file_stream, "proj/sub/copy.bin")) == source.read_bytes()

    # listing, info, search, grep, replace
    listed = await call(fs.list_files, "proj")
    assert [(f.name, f.is_dir) for f in listed] == [("a.py", False), ("hello.txt", False), ("stream.bin", False),
                                                     ("sub", True)]
    assert listed[1].size == 6 and listed[1].path == f"{HOME}/proj/hello.txt" and listed[1].mod_time
    deep = await call(fs.list_files, "proj", depth=2)
    assert f"{HOME}/proj/sub/b.py" in [f.path for f in deep] and len(deep) == 7
    info = await call(fs.get_file_info, "proj/sub/from-path.bin")
    assert info.size == source.stat().st_size and info.is_dir is False and info.mode.startswith("-rw")
    found = await call(fs.search_files, "proj", "*.py")
    assert found.files == [f"{HOME}/proj/a.py", f"{HOME}/proj/sub/b.py"]
    matches = await call(fs.find_files, "proj", "TODO:")
    assert [(m.file, m.line, m.content) for m in matches] == [
        (f"{HOME}/proj/a.py", 1, "x = 1  # TODO: first"), (f"{HOME}/proj/sub/b.py", 1, "print('TODO: second')")]
    replaced = await call(fs.replace_in_files, ["proj/a.py", "proj/sub/b.py", "proj/nope.py"], "TODO", "DONE")
    assert [(r.file, r.success) for r in replaced] == [("proj/a.py", True), ("proj/sub/b.py", True),
                                                       ("proj/nope.py", False)]
    assert replaced[2].error
    assert await sh(sandbox, call, "cat proj/a.py proj/sub/b.py") == "x = 1  # DONE: first\nprint('DONE: second')\n"

    # move, permissions, delete
    await call(fs.move_files, "proj/hello.txt", "proj/sub/hello.txt")
    await call(fs.set_file_permissions, "proj/sub/hello.txt", mode="600", owner="daytona", group="daytona")
    info = await call(fs.get_file_info, "proj/sub/hello.txt")
    assert info.permissions == "0600" and info.owner == "daytona" and info.group == "daytona"
    await call(fs.delete_file, "proj/sub/hello.txt")
    with pytest.raises(DaytonaInvalidFilePathError):
        await call(fs.delete_file, "proj/sub")
    await call(fs.delete_file, "proj", recursive=True)
    assert "proj" not in (await sh(sandbox, call, "ls -A")).split()

    # errors become the SDK's finer exceptions
    with pytest.raises(DaytonaFileNotFoundError):
        await call(fs.get_file_info, "proj")
    with pytest.raises(DaytonaFileNotFoundError):
        await call(fs.download_file, "no/such/file")
    with pytest.raises(DaytonaFileNotFoundError):
        await collect(await call(fs.download_file_stream, "no/such/file"))
    with pytest.raises(DaytonaFileAccessDeniedError):
        await call(fs.list_files, "/root")
    with pytest.raises(DaytonaFileAccessDeniedError):
        await call(fs.set_file_permissions, "/etc/hostname", mode="777")
    with pytest.raises(DaytonaError) as refused:
        await call(fs.upload_file, b"x", "/etc/corral-forbidden")
    assert refused.value.status_code == 403 and "Permission denied" in str(refused.value)


async def test_files_through_the_sync_sdk(stack: Stack, tmp_path: Path) -> None:
    daytona = Daytona(config(stack))
    sandbox = await asyncio.to_thread(daytona.create, timeout=120)
    try:
        await scenario(sandbox, caller(False), tmp_path)
    finally:
        await asyncio.to_thread(daytona.delete, sandbox, timeout=60)


async def test_files_through_the_async_sdk(stack: Stack, tmp_path: Path) -> None:
    async with AsyncDaytona(config(stack)) as daytona:
        sandbox = await daytona.create(timeout=120)
        try:
            await scenario(sandbox, caller(True), tmp_path)
            # an async iterable source takes the SDK's hand-built multipart path (part filename = base name)
            chunks = [os.urandom(100_000) for _ in range(7)]
            await sandbox.fs.upload_file_stream(aiter_bytes(chunks), "deep/er/async.bin")
            assert await sandbox.fs.download_file("deep/er/async.bin") == b"".join(chunks)
        finally:
            await daytona.delete(sandbox, timeout=60)


async def test_odd_paths_are_echoed_byte_for_byte(stack: Stack, tmp_path: Path) -> None:
    """Download parts are matched to requests by their exact filename: quotes, backslashes, spaces,
    non-ASCII and relative spellings all come back as asked."""
    names = ['quote "q".txt', "back\\slash.txt", "spaced name.txt", "ünïcødé ☃.txt", "semi;colon=1.txt"]
    async with AsyncDaytona(config(stack)) as daytona:
        sandbox = await daytona.create(timeout=120)
        try:
            await sandbox.fs.upload_files([FileUpload(name.encode(), f"odd/{name}") for name in names])
            spellings = [f"odd/{n}" for n in names] + [f"./odd/{names[0]}", f"{HOME}/odd/../odd/{names[3]}"]
            results = await sandbox.fs.download_files([FileDownloadRequest(source=s) for s in spellings])
            assert [r.source for r in results] == spellings
            assert [r.result for r in results] == [n.encode() for n in names] + [names[0].encode(), names[3].encode()]
            assert all(r.error is None for r in results)
            sync_sandbox = Daytona(config(stack)).get(sandbox.id)
            for name in names:
                assert await collect(await asyncio.to_thread(sync_sandbox.fs.download_file_stream,
                                                             f"odd/{name}")) == name.encode()
        finally:
            await daytona.delete(sandbox, timeout=60)


async def test_directory_listing_of_many_entries(stack: Stack) -> None:
    async with AsyncDaytona(config(stack)) as daytona:
        sandbox = await daytona.create(timeout=120)
        try:
            result = await sandbox.process.exec("mkdir many && cd many && seq -f 'entry-%05g' 5000 | xargs touch")
            assert result.exit_code == 0
            listed = await sandbox.fs.list_files("many")
            assert len(listed) == 5000 and listed[0].name == "entry-00001" and listed[-1].name == "entry-05000"
            found = await sandbox.fs.search_files(".", "entry-04*")
            assert len(found.files) == 1000
        finally:
            await daytona.delete(sandbox, timeout=60)


async def aiter_bytes(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
