"""Snapshots and volumes through the official SDK, on a stack with two runners sharing one Docker engine
under different names: a snapshot built from a Dockerfile with a pip package, sandboxes from a declarative
image with streamed build logs, shipping to the runner that lacks a snapshot, a sandbox's filesystem as a
snapshot, and volumes shared by sandboxes and outliving them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from daytona import (CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams, CreateSnapshotParams, Daytona,
                     DaytonaError, Image, Resources, VolumeMount)
from daytona.common.errors import DaytonaConflictError

from corral_contracts.snapshot import runner_image
from corral_stack.stack import Stack
from corral_testing.stack import running_stack
from corral_testing.waiting import wait_for

from .conftest import Rest, config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

RUN = os.urandom(4).hex()
"""In every Dockerfile of this module: builds are new for each run (no image reused from an earlier one)."""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(runners=2, env={"CORRAL_SNAPSHOT_FETCH": "ship"}) as started:
        yield started


@pytest.fixture(scope="module")
def daytona(stack: Stack) -> Daytona:
    return Daytona(config(stack))


@pytest.fixture(scope="module")
def pip_snapshot(daytona: Daytona, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """A snapshot built from a Dockerfile that installs a pip package (its build logs collected)."""
    dockerfile = tmp_path_factory.mktemp("build") / "Dockerfile"
    dockerfile.write_text(f"FROM {stack.sandbox_image}\nLABEL corral.test-build={RUN}\n"
                          "RUN python -m pip install --no-cache-dir six==1.16.0\n")
    logs: list[str] = []
    name = f"pip-{RUN}"
    snapshot = daytona.snapshot.create(CreateSnapshotParams(name=name, image=Image.from_dockerfile(dockerfile)),
                                       on_logs=logs.append, timeout=600)
    assert snapshot.state == "active", snapshot
    return name, logs


def test_default_snapshot_is_listed_general_and_active(daytona: Daytona) -> None:
    page = daytona.snapshot.list()
    default = next(s for s in page.items if s.name == "corral-default")
    assert default.general and default.state == "active"
    assert daytona.snapshot.get("corral-default").id == default.id


def test_dockerfile_snapshot_with_a_pip_package_starts_sandboxes_that_import_it(
        daytona: Daytona, pip_snapshot: tuple[str, list[str]]) -> None:
    name, logs = pip_snapshot
    assert any("Creating snapshot" in line for line in logs)
    assert any("pip install" in line for line in logs), logs  # the build's own output, streamed
    sandbox = daytona.create(CreateSandboxFromSnapshotParams(snapshot=name), timeout=180)
    try:
        assert sandbox.snapshot == name
        result = sandbox.process.code_run("import six; print(six.__version__)")
        assert result.exit_code == 0 and result.result.strip() == "1.16.0", result
    finally:
        daytona.delete(sandbox)


async def test_a_snapshot_is_shipped_to_each_runner_that_lacks_it(
        daytona: Daytona, pip_snapshot: tuple[str, list[str]], stack: Stack, rest: Rest) -> None:
    """Both runners start a sandbox from the snapshot; each gets its own copy first (docker save from the
    snapshot manager, docker load on the runner), which its runner-local tag shows."""
    name, _ = pip_snapshot
    snapshot = daytona.snapshot.get(name)
    client = docker.from_env()
    sandboxes = []

    def holds(runner_id: str) -> bool:
        try:
            client.images.get(runner_image(runner_id, snapshot.ref))
            return True
        except docker.errors.ImageNotFound:
            return False

    held_before = {runner_id: holds(runner_id) for runner_id in stack.config.runner_ports}
    assert not all(held_before.values())
    try:
        for _ in range(2):
            sandboxes.append(await rest.create(snapshot=name))
        for sandbox in sandboxes:
            await rest.wait_state(sandbox["id"], "started", timeout=180)
        runners = {s["runnerId"] for s in sandboxes}
        assert runners == set(stack.config.runner_ports), runners
        assert all(holds(runner_id) for runner_id in runners)  # each runner now has its own copy
        for sandbox in sandboxes:
            status, out = await rest.code_run(sandbox["id"], "import six; print(six.__version__)")
            assert status == 200 and out["result"].strip() == "1.16.0", out
            status, history = await rest.call("GET", f"{rest.api}/sandbox/{sandbox['id']}/events")
            kinds = [e["type"] for e in history["items"]]
            fetched = "SandboxPullingSnapshot" in kinds  # the runner fetched it first (`pulling_snapshot`)
            assert fetched == (not held_before[sandbox["runnerId"]]), (held_before, sandbox["runnerId"], kinds)
    finally:
        client.close()
        for sandbox in sandboxes:
            await rest.delete(sandbox["id"])


def test_sandbox_from_a_declarative_image_streams_its_build_logs_and_reuses_the_build(
        daytona: Daytona, stack: Stack) -> None:
    image = Image.base(stack.sandbox_image).env({"CORRAL_TEST_RUN": RUN}).pip_install("six==1.16.0")
    logs: list[str] = []
    sandbox = daytona.create(CreateSandboxFromImageParams(image=image, resources=Resources(cpu=1, memory=1)),
                             on_snapshot_create_logs=logs.append, timeout=600)
    again = None
    try:
        assert sandbox.state == "started"
        text = "".join(logs)
        assert "python -m pip install" in text and "snapshot image" in text, text[-2000:]
        assert sandbox.process.code_run("import six, os; print(six.__version__, os.environ['CORRAL_TEST_RUN'])"
                                        ).result.strip() == f"1.16.0 {RUN}"
        assert sandbox.build_info is not None and sandbox.build_info.dockerfile_content == image.dockerfile()
        again = daytona.create(CreateSandboxFromImageParams(image=image), timeout=180)
        assert again.snapshot == sandbox.snapshot  # the same content hash: the build is reused
    finally:
        daytona.delete(sandbox)
        if again is not None:
            daytona.delete(again)


def test_a_sandbox_filesystem_becomes_a_snapshot_new_sandboxes_start_from(daytona: Daytona) -> None:
    source = daytona.create(timeout=120)
    name = f"captured-{RUN}"
    try:
        source.process.exec("echo kept-in-snapshot > marker.txt")
        source.create_snapshot(name)  # waits while the sandbox is `snapshotting`
        source.refresh_data()
        assert source.state == "started"
        snapshot = daytona.snapshot.get(name)
        assert snapshot.source_sandbox_id == source.id and snapshot.state == "active", snapshot
    finally:
        daytona.delete(source)

    def active() -> bool:
        state = daytona.snapshot.get(name).state
        assert state not in ("error", "build_failed"), daytona.snapshot.get(name).error_reason
        return state == "active"
    wait_sync(active, 120)
    copy = daytona.create(CreateSandboxFromSnapshotParams(snapshot=name), timeout=180)
    try:
        assert copy.process.exec("cat marker.txt").result.strip() == "kept-in-snapshot"
    finally:
        daytona.delete(copy)


async def test_build_failures_say_why(daytona: Daytona, stack: Stack, rest: Rest) -> None:
    with pytest.raises(DaytonaError, match="not present on this Docker host"):
        daytona.snapshot.create(CreateSnapshotParams(name=f"unpullable-{RUN}",
                                                     image=Image.base("python:3.12").pip_install("six")), timeout=120)
    assert daytona.snapshot.get(f"unpullable-{RUN}").state == "build_failed"
    broken = Image.base(stack.sandbox_image).run_commands(f"echo {RUN}", "rm -f /usr/bin/python3* /usr/bin/apt*")
    with pytest.raises(DaytonaError, match="no usable python3.*no package manager to install python3 with"):
        daytona.snapshot.create(CreateSnapshotParams(name=f"no-python-{RUN}", image=broken), timeout=600)
    with pytest.raises(DaytonaError, match="BUILD_FAILED"):
        daytona.create(CreateSandboxFromImageParams(image=f"python:3.12-{RUN}"), timeout=120)
    sandbox = await rest.create(buildInfo={"dockerfileContent": f"FROM python:3.12-{RUN}\n"})
    assert sandbox["state"] in ("pending_build", "building_snapshot", "build_failed"), sandbox
    failed = await rest.wait_state_any(sandbox["id"], "build_failed", timeout=120)
    assert "not present on this Docker host" in failed["errorReason"], failed
    status, logs = await rest.call("GET", f"{rest.api}/sandbox/{sandbox['id']}/build-logs")
    assert status == 200 and b"not present on this Docker host" in logs, logs
    await rest.delete(sandbox["id"])


def test_an_image_without_python_gets_one_added(daytona: Daytona, stack: Stack) -> None:
    image = Image.base(stack.sandbox_image).run_commands(
        f"echo {RUN}", "DEBIAN_FRONTEND=noninteractive apt-get purge -y python3.11-minimal python3-minimal "
        "libpython3.11-minimal > /dev/null", "! command -v python3")
    logs: list[str] = []
    snapshot = daytona.snapshot.create(CreateSnapshotParams(name=f"python-added-{RUN}", image=image),
                                       on_logs=logs.append, timeout=600)
    assert snapshot.state == "active"
    assert any("adding python3" in line for line in logs), logs
    sandbox = daytona.create(CreateSandboxFromSnapshotParams(snapshot=snapshot.name), timeout=180)
    try:
        assert sandbox.process.code_run("import sys; print(sys.version_info >= (3, 9))").result.strip() == "True"
    finally:
        daytona.delete(sandbox)


def test_an_image_on_the_host_with_its_own_entrypoint_becomes_a_snapshot(daytona: Daytona, stack: Stack,
                                                                           tmp_path: Path) -> None:
    tag = f"corral-test-entrypoint:{RUN}"
    (tmp_path / "Dockerfile").write_text(f'FROM {stack.sandbox_image}\nENTRYPOINT ["/bin/false"]\n')
    client = docker.from_env()
    client.images.build(path=str(tmp_path), tag=tag, labels=dict(stack.config.container_labels), rm=True,
                        forcerm=True)
    logs: list[str] = []
    try:
        snapshot = daytona.snapshot.create(CreateSnapshotParams(name=f"host-image-{RUN}", image=tag),
                                           on_logs=logs.append, timeout=300)
        assert snapshot.state == "active" and snapshot.image_name == tag
        assert snapshot.entrypoint == ["/bin/false"]
        sandbox = daytona.create(CreateSandboxFromSnapshotParams(snapshot=snapshot.name), timeout=180)
        try:
            assert sandbox.process.exec("echo runs").result.strip() == "runs"
        finally:
            daytona.delete(sandbox)
        daytona.snapshot.delete(snapshot)
        with pytest.raises(DaytonaError):
            daytona.snapshot.get(snapshot.name)
    finally:
        client.images.remove(tag, force=True)
        client.close()


async def test_refusals(daytona: Daytona, pip_snapshot: tuple[str, list[str]], rest: Rest) -> None:
    name, _ = pip_snapshot
    status, body = await rest.call("POST", f"{rest.api}/sandbox", json={"snapshot": name, "cpu": 2})
    assert status == 400 and "resources" in body["message"], body
    status, body = await rest.call("POST", f"{rest.api}/snapshots", json={"name": name, "imageName": "x"})
    assert status == 409, body
    status, body = await rest.call("POST", f"{rest.api}/snapshots", json={"name": "n"})
    assert status == 400, body
    status, body = await rest.call("GET", f"{rest.api}/snapshots/{uuid.uuid4()}")
    assert status == 404, body
    snapshot_id = daytona.snapshot.get(name).id
    status, _ = await rest.call("POST", f"{rest.api}/snapshots/{snapshot_id}/deactivate")
    assert status == 204
    try:
        status, body = await rest.call("POST", f"{rest.api}/sandbox", json={"snapshot": name})
        assert status == 400 and "inactive" in body["message"], body
    finally:
        assert daytona.snapshot.activate(name).state == "active"
    sandbox = daytona.create(CreateSandboxFromSnapshotParams(snapshot=name), timeout=180)
    try:
        with pytest.raises(DaytonaConflictError):
            daytona.snapshot.delete(daytona.snapshot.get(name))
    finally:
        daytona.delete(sandbox)


def test_volumes_are_shared_and_outlive_their_sandboxes(daytona: Daytona) -> None:
    volume = daytona.volume.get(f"data-{RUN}", create=True)
    assert volume.state in ("pending_create", "ready")
    assert daytona.volume.get(f"data-{RUN}").id == volume.id
    with pytest.raises(DaytonaConflictError):
        daytona.volume.create(f"data-{RUN}")
    mount = [VolumeMount(volume_id=volume.id, mount_path="/home/daytona/shared")]
    first = daytona.create(CreateSandboxFromSnapshotParams(volumes=mount), timeout=120)
    second = daytona.create(CreateSandboxFromSnapshotParams(volumes=[
        VolumeMount(volume_id=volume.id, mount_path="/mnt/sub", subpath="nested/dir")]), timeout=120)
    try:
        assert first.process.exec("echo from-first > /home/daytona/shared/note.txt").exit_code == 0
        assert second.process.exec("echo in-subpath > /mnt/sub/inner.txt").exit_code == 0
        assert first.process.exec("cat /home/daytona/shared/nested/dir/inner.txt").result.strip() == "in-subpath"
        with pytest.raises(DaytonaConflictError):
            daytona.volume.delete(volume)
        assert [v.id for v in daytona.volume.list() if v.id == volume.id] == [volume.id]
    finally:
        daytona.delete(first, wait=True, timeout=120)
        daytona.delete(second, wait=True, timeout=120)
    third = daytona.create(CreateSandboxFromSnapshotParams(volumes=mount), timeout=120)
    try:
        assert third.process.exec("cat /home/daytona/shared/note.txt").result.strip() == "from-first"
    finally:
        daytona.delete(third, wait=True, timeout=120)
    daytona.volume.delete(volume)

    def deleted() -> bool:
        return not [v for v in daytona.volume.list() if v.id == volume.id]
    wait_sync(deleted, 60)
    with pytest.raises(DaytonaError):
        daytona.volume.get(f"data-{RUN}")  # 404: the name is free again


def wait_sync(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    asyncio.run(wait_for(predicate, timeout=timeout, interval=0.25))
