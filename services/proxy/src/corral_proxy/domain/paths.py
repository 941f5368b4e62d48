"""What a forwarded path may hold: a toolbox request stays under its own sandbox's `/toolbox/{id}/`.

A tail with `.` or `..` segments (percent-encoded or not) would be normalized away on the hop to the
runner: `/toolbox/<mine>/../<theirs>/...` would reach another sandbox, `/toolbox/<mine>/../../internal/...`
the runner's internal endpoints. Such paths are refused, never forwarded.
"""

from __future__ import annotations

from urllib.parse import unquote


def escapes(tail: str) -> bool:
    """Whether `tail` (decoded or not) could leave the sandbox's toolbox path once normalized."""
    for candidate in (tail, unquote(tail)):
        if any(segment in (".", "..") for segment in candidate.replace("\\", "/").split("/")):
            return True
    return False
