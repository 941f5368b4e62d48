"""The shipped form: one reproducible zipapp that runs under the image's python3 (>= 3.9)."""
from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from agent_harness import available_pythons, run_exec, start_agent
from corral_agent.bundle import agent_version, build_zipapp
from corral_agent.client import ping

# Heavy or host-only modules the agent must not load at start (RSS budget, minimal image needs).
FORBIDDEN_AT_START = {
    "asyncio", "hashlib", "_hashlib", "http", "email", "argparse", "logging", "zipfile", "zipapp",
    "dataclasses", "inspect", "typing", "base64", "shutil", "tempfile", "corral_agent.client",
    "corral_agent.bundle",
}




@pytest.fixture(scope="module")
def zipapp_path(tmp_path_factory) -> Path:
    return build_zipapp(tmp_path_factory.mktemp("bundle") / "corral-agent.pyz")


def test_builds_are_byte_identical(tmp_path, zipapp_path):
    again = build_zipapp(tmp_path / "again.pyz")
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(zipapp_path.read_bytes()).digest()
    rebuilt = build_zipapp(again)  # over an existing file: replaced atomically, same bytes
    assert rebuilt.read_bytes() == zipapp_path.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["again.pyz"]  # no temporary file left behind


def test_archive_holds_only_the_agent(zipapp_path):
    with zipfile.ZipFile(zipapp_path) as archive:
        names = archive.namelist()
        version_module = archive.read("corral_agent/_bundled_version.py").decode()
    assert names == sorted(names)
    assert "__main__.py" in names
    assert "corral_agent/server.py" in names
    assert "corral_agent/client.py" not in names and "corral_agent/bundle.py" not in names
    assert version_module == f'VERSION = "{agent_version()}"\n'
    assert zipapp_path.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert zipapp_path.stat().st_mode & 0o777 == 0o755


def test_the_agent_import_set_stays_small(zipapp_path):
    probe = (
        "import sys\n"
        f"sys.path.insert(0, {str(zipapp_path)!r})\n"
        "from corral_agent import command_line, context, server, version\n"
        f"assert command_line.__file__.startswith({str(zipapp_path)!r}), command_line.__file__\n"
        "version.running_version()\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    # -I -S: no site, so the editable install of this source tree cannot shadow the archive
    modules = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=False, timeout=30
    )
    assert modules.returncode == 0, modules.stderr
    loaded = {m.split(".")[0] for m in modules.stdout.split()} | set(modules.stdout.split())
    assert not loaded & FORBIDDEN_AT_START


@pytest.mark.parametrize(
    "python", [pytest.param(path, id=f"python{version}") for version, path in available_pythons().items()]
)
def test_zipapp_serves_under_each_available_python(python, zipapp_path, short_tmp):
    version = subprocess.run(
        [python, str(zipapp_path), "--version"], capture_output=True, text=True, check=True, timeout=30
    )
    assert version.stdout.strip() == agent_version()
    running = start_agent(short_tmp, command=(python, str(zipapp_path)))
    try:
        assert asyncio.run(_smoke(running.socket_path)) == agent_version()
    finally:
        assert running.stop() == 0


async def _smoke(socket_path: str) -> str:
    pong = await ping(socket_path)
    code_run = await run_exec(socket_path, argv=["python3", "-u", "-c", "print(1)"])
    assert (code_run.output, code_run.last["exitCode"]) == (b"1\n", 0)
    shell = await run_exec(socket_path, command="echo out; echo err >&2; exit 3")
    assert (shell.output, shell.last["exitCode"]) == (b"out\nerr\n", 3)
    timed_out = await run_exec(socket_path, command="sleep 300", timeout=0.2)
    assert (timed_out.last["exitCode"], timed_out.last["timedOut"]) == (124, True)
    return pong["version"]


def test_the_host_side_api_is_re_exported_lazily():
    import corral_agent
    from corral_agent import client

    assert corral_agent.build_zipapp is build_zipapp
    assert corral_agent.call is client.call and corral_agent.ping is client.ping


def test_usage_errors_exit_2(zipapp_path):
    for args in ([], ["--socket"], ["--bogus"], ["--socket", "/tmp/x.sock", "--socket-mode", "9z"]):
        result = subprocess.run([sys.executable, str(zipapp_path), *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, (args, result.stderr)
        assert "usage:" in result.stderr
