"""A line for the test session's output, past pytest's output capture (suite summaries: attacks
tried and stopped, requests a fuzz generated)."""

from __future__ import annotations

import pytest


def report_line(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.getplugin("terminalreporter")
    capture = config.pluginmanager.getplugin("capturemanager")
    if reporter is None:
        print(line)
    elif capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)
    else:
        reporter.write_line(line)
