"""A forwarded toolbox path never leaves its sandbox (no dot segments, encoded or not)."""

from __future__ import annotations

import pytest

from corral_proxy.domain.paths import escapes


@pytest.mark.parametrize("tail", ["..", "../x", "a/../../internal/s/exec", "./files", "files/.", "%2e%2e/x",
                                  "a/%2E%2E/b", "a\\..\\b", "%2e/x"])
def test_dot_segments_escape(tail: str) -> None:
    assert escapes(tail)


@pytest.mark.parametrize("tail", ["process/execute", "files/download", "files/..hidden", "a/b...", ".bashrc",
                                  "files?path=../x", ""])
def test_ordinary_tails_do_not(tail: str) -> None:
    assert not escapes(tail)
