"""The official `daytona` SDK (0.226.x), unchanged, pointed at the stack."""

from __future__ import annotations

import pytest
from daytona import AsyncDaytona, CreateSandboxFromSnapshotParams, Daytona, DaytonaConfig, ListSandboxesQuery
from daytona.common.errors import DaytonaError, DaytonaNotFoundError

from corral_stack.stack import Stack
from .conftest import config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]



def test_sync_sdk_lifecycle(stack: Stack) -> None:
    daytona = Daytona(config(stack))
    sandbox = daytona.create(CreateSandboxFromSnapshotParams(labels={"suite": "sdk"}, env_vars={"WHO": "sdk"}),
                             timeout=120)
    try:
        assert sandbox.state == "started"
        run = sandbox.process.code_run("print(6 * 7)")
        assert run.exit_code == 0 and run.result.strip() == "42"
        out = sandbox.process.exec("echo $WHO; echo err >&2; exit 4")
        assert out.exit_code == 4 and out.result == "sdk\nerr\n"
        assert sandbox.process.exec("echo persisted > note.txt").exit_code == 0

        sandbox.stop(timeout=60)
        assert sandbox.state == "stopped"
        sandbox.start(timeout=60)
        assert sandbox.state == "started"
        assert sandbox.process.exec("cat note.txt").result == "persisted\n"

        found = daytona.get(sandbox.id)
        assert found.id == sandbox.id and found.labels["suite"] == "sdk"
        assert sandbox.id in [s.id for s in daytona.list(ListSandboxesQuery(labels={"suite": "sdk"}))]
        sandbox.set_labels({"suite": "sdk", "more": "yes"})
        assert daytona.get(sandbox.id).labels["more"] == "yes"
    finally:
        daytona.delete(sandbox, timeout=60, wait=True)
    with pytest.raises(DaytonaNotFoundError):
        daytona.get(sandbox.id)


def test_sdk_sees_clear_errors(stack: Stack) -> None:
    daytona = Daytona(config(stack))
    with pytest.raises(DaytonaNotFoundError):
        daytona.get("00000000-0000-4000-8000-00000000beef")
    bad = Daytona(DaytonaConfig(api_key="wrong", api_url=stack.api_url))
    with pytest.raises(DaytonaError) as raised:
        bad.get("anything")
    assert "API key" in str(raised.value)


async def test_async_sdk_lifecycle(stack: Stack) -> None:
    async with AsyncDaytona(config(stack)) as daytona:
        sandbox = await daytona.create(timeout=120)
        try:
            run = await sandbox.process.code_run("import os; print(os.getcwd())")
            assert run.exit_code == 0 and run.result.strip() == "/home/daytona"
            out = await sandbox.process.exec("echo async")
            assert out.result == "async\n"
            await sandbox.stop(timeout=60)
            await sandbox.start(timeout=60)
            assert (await sandbox.process.exec("echo back")).result == "back\n"
        finally:
            await daytona.delete(sandbox, timeout=60, wait=True)
