"""Every benchmark suite `make bench` runs, in order. A suite is `async (stack, options) -> [Series]`.

Add a suite with one line here; keep each suite in its own module named after what it measures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from corral_stack.stack import Stack

from . import lifecycle, replay
from . import toolbox_pty
from . import toolbox_files
from . import toolbox_sessions
from . import webhooks
from . import previews
from . import ssh
from . import tenancy
from . import snapshots
from .figures import Options, Series

Suite = Callable[[Stack, Options], Awaitable[list[Series]]]

SUITES: list[tuple[str, Suite]] = [
    ("lifecycle", lifecycle.run),
    ("replay", replay.run),
    ("toolbox_pty", toolbox_pty.run),
    ("toolbox_files", toolbox_files.run),
    ("toolbox_sessions", toolbox_sessions.run),
    ("webhooks", webhooks.run),
    ("previews", previews.run),
    ("ssh", ssh.run),
    ("tenancy", tenancy.run),
    ("snapshots", snapshots.run),
]
