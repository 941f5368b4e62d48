"""The api's own tests run in-process in seconds: a hang fails after one minute, not the suite's five."""

from __future__ import annotations

from pathlib import Path

import pytest

TIMEOUT = 60
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Called with every collected item of the session: only this directory's get the shorter timeout."""
    for item in items:
        if item.path.is_relative_to(HERE) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIMEOUT))
