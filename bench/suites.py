"""Every benchmark suite `make bench` runs, in order. A suite is `async (stack, options) -> [Series]`.

Add a suite with one line here; keep each suite in its own module named after what it measures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from corral_stack.stack import Stack

from . import lifecycle
from .figures import Options, Series

Suite = Callable[[Stack, Options], Awaitable[list[Series]]]

SUITES: list[tuple[str, Suite]] = [
    ("lifecycle", lifecycle.run),
]
