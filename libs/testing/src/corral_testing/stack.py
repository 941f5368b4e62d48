"""The `stack` fixture: the whole platform as real processes, on free ports, for one test session.

Its containers carry a per-session label and are removed at the end, even after failures; its
`CORRAL_HOME` is a short temporary directory (unix socket paths must stay short).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from corral_stack.stack import Stack, StackConfig

TEST_RUN_LABEL = "corral.test-run"


def remove_labelled(label: str, value: str) -> int:
    """Containers, then images (snapshots, with every tag runners gave them) and volumes carrying the label."""
    client = docker.from_env()
    selector = {"label": f"{label}={value}"}
    try:
        containers = client.containers.list(all=True, sparse=True, filters=selector)
        for container in containers:
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:  # removed meanwhile (a sandbox destroyed by its runner)
                pass
        for _ in range(3):  # an image with a labelled child goes once the child has gone
            left = client.images.list(filters=selector)
            for image in left:
                try:
                    client.images.remove(image.id, force=True)
                except docker.errors.APIError:
                    pass
            if not left:
                break
        volumes = client.volumes.list(filters=selector)
        for volume in sorted(volumes, key=lambda v: "corral.volume_of" not in (v.attrs.get("Labels") or {})):
            try:
                volume.remove(force=True)
            except docker.errors.APIError:
                pass
        return len(containers)
    finally:
        client.close()


def unmount_under(root: Path) -> int:
    """Unmount whatever is mounted below `root` (the runner's bounded run directories of containers that
    were removed without being destroyed), deepest first."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    return len(points)


def log_tail(stack: Stack, name: str, lines: int = 60) -> str:
    path = stack.home / "logs" / f"{name}.log"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def running_stack(**config: Any) -> Iterator[Stack]:
    """A whole platform on free ports in a short temporary home; its containers removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="corral-t-", dir="/tmp"))
    run = os.urandom(4).hex()
    started = Stack(StackConfig.ephemeral(home, labels={TEST_RUN_LABEL: run}, **config), log=lambda *a: None)
    try:
        started.start()
    except Exception:
        for name in started.services:
            print(f"--- {name} log ---\n{log_tail(started, name)}")
        started.stop()
        remove_labelled(TEST_RUN_LABEL, run)
        unmount_under(home)
        raise
    try:
        yield started
    finally:
        started.stop()
        remove_labelled(TEST_RUN_LABEL, run)
        unmount_under(home)
        keep_logs(started, run)
        shutil.rmtree(home, ignore_errors=True)


def logs_root() -> Path:
    return Path(os.environ.get("CORRAL_TEST_LOGS", "/tmp/corral-test-logs"))


def keep_logs(stack: Stack, run: str) -> None:
    """The services' logs outlive the stack's home, for reading after a failed run."""
    target = logs_root() / run
    shutil.copytree(stack.home / "logs", target, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with running_stack() as started:
        yield started


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used a stack has its services write their stacks to their logs, which
    `keep_logs` keeps: a hang seen once in CI says where each service was."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or call.when != "call":
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, Stack):
            value.dump_stacks()
            run = value.config.container_labels.get(TEST_RUN_LABEL, "?")
            report.sections.append(("corral", f"the services' stacks are in their logs, kept in {logs_root() / run}"))
