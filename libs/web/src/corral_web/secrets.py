"""The platform's shared secrets as a service reads them at start: from its environment, else from the
file `make run` keeps under `$CORRAL_HOME` (mode 0600). A service that finds neither refuses to start."""

from __future__ import annotations

from pathlib import Path


def required_secret(env: dict[str, str], variable: str, path: Path) -> str:
    """`env[variable]`, else the stripped content of `path`; SystemExit naming both when neither is there."""
    value = env.get(variable) or _read(path)
    if not value:
        raise SystemExit(f"{variable} is not set and {path} does not exist")
    return value


def internal_token(env: dict[str, str], home: Path) -> str:
    """The token every internal hop carries (proxy, gateway and snapshot manager to the runners)."""
    return required_secret(env, "CORRAL_INTERNAL_TOKEN", home / "internal-token")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
