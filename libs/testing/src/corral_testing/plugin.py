"""The pytest plugin of the whole repository (registered in the root `conftest.py`).

Each shared fixture module is imported here; keep one import line per module.
"""

from corral_testing.nats import nats_server  # noqa: F401
from corral_testing.stack import pytest_runtest_makereport, stack  # noqa: F401
from corral_testing.hangs import pytest_runtest_call  # noqa: F401
from corral_testing.docker_engine import docker_url  # noqa: F401


def pytest_configure(config: object) -> None:
    """In-process services get the `asyncio.wait_for` their processes get (`corral_web.asyncio_compat`)."""
    from corral_web import asyncio_compat

    asyncio_compat.install()
