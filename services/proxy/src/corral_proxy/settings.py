"""The proxy's settings: one frozen struct, read from the environment once, in `main`."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str
    internal_token: str
    host: str = "127.0.0.1"
    port: int = 4000
    settle_wait: float = 5.0
    """How long a request for a sandbox that is still being created/started waits before it is refused."""
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CORRAL_HOME", ".corral")).resolve()
        token = env.get("CORRAL_INTERNAL_TOKEN") or _read(home / "internal-token")
        if not token:
            raise SystemExit("CORRAL_INTERNAL_TOKEN is not set and $CORRAL_HOME/internal-token does not exist")
        return cls(
            nats_url=env.get("CORRAL_NATS_URL", "nats://127.0.0.1:4222"),
            internal_token=token,
            host=env.get("CORRAL_PROXY_HOST", "127.0.0.1"),
            port=int(env.get("CORRAL_PROXY_PORT", "4000")),
            log_level=env.get("CORRAL_LOG_LEVEL", "INFO"),
        )


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
