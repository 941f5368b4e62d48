"""Fixtures shared by every test in the repository come from one plugin."""

pytest_plugins = ["corral_testing.plugin"]
