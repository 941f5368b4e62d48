"""The version the running agent reports: baked into the zipapp, or hashed from the sources."""
from __future__ import annotations


def running_version() -> str:
    try:
        from ._bundled_version import VERSION  # written by bundle.build_zipapp
    except ImportError:  # running from a source tree (development, tests)
        from .bundle import agent_version

        return agent_version()
    return VERSION
