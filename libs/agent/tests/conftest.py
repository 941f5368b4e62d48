from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import SOURCE_AGENT, RunningAgent, available_pythons, start_agent
from corral_agent.bundle import build_zipapp

_OLDEST_PYTHON = next(iter(available_pythons().items()), None)
# Every agent test runs against this source tree, and against the shipped zipapp under the oldest
# python3 on this machine (3.9 where present, as in the oldest sandbox images).
AGENT_FORMS = ["source"] + ([f"zipapp-python{_OLDEST_PYTHON[0]}"] if _OLDEST_PYTHON else [])


@pytest.fixture(scope="session")
def shipped_zipapp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zipapp(tmp_path_factory.mktemp("shipped") / "corral-agent.pyz")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory path: unix socket paths are limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="corral-agent-", dir="/tmp") as path:
        yield Path(path)


@pytest.fixture(params=AGENT_FORMS)
def agent(request: pytest.FixtureRequest, short_tmp: Path) -> Iterator[RunningAgent]:
    """A real agent process, as in a sandbox: from the source tree or the built zipapp."""
    if request.param == "source":
        command = SOURCE_AGENT
    else:
        # -I -S: the recommended launch (no site-packages .pth imports, no PYTHON* variables)
        command = (_OLDEST_PYTHON[1], "-I", "-S", str(request.getfixturevalue("shipped_zipapp")))
    running = start_agent(short_tmp, command=command, env={"CORRAL_TEST_MARK": "inherited"})
    yield running
    running.stop()
