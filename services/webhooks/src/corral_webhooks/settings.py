"""The webhooks service's settings: one frozen struct, read from the environment once, in `main`."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from .domain.schedule import DISABLE_AFTER


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    nats_url: str
    host: str = "127.0.0.1"
    port: int = 3004
    """Health endpoint (`GET /health`)."""
    allow_private: bool = False
    """Deliver to loopback/private/link-local addresses too (CORRAL_WEBHOOKS_ALLOW_PRIVATE=1): a laptop, tests."""
    retry_scale: float = 1.0
    """Scales the retry schedule (5 s ... 10 h). Only tests shorten it (CORRAL_WEBHOOKS_RETRY_SCALE)."""
    disable_after: float = DISABLE_AFTER
    """Seconds an endpoint may fail every attempt before it is disabled (CORRAL_WEBHOOKS_DISABLE_AFTER)."""
    timeout: float = 15.0
    """Seconds an attempt may take in all; a 2xx within it is a success."""
    concurrency: int = 64
    """Attempts in flight at once (CORRAL_WEBHOOKS_CONCURRENCY)."""
    sweep_interval: float = 30.0
    """Seconds between checks of failing endpoints."""
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CORRAL_HOME", ".corral")).resolve()
        return cls(
            database_url=store_url(home, env),
            nats_url=env.get("CORRAL_NATS_URL", "nats://127.0.0.1:4222"),
            host=env.get("CORRAL_WEBHOOKS_HOST", "127.0.0.1"),
            port=int(env.get("CORRAL_WEBHOOKS_PORT", "3004")),
            allow_private=flag(env.get("CORRAL_WEBHOOKS_ALLOW_PRIVATE", "")),
            retry_scale=float(env.get("CORRAL_WEBHOOKS_RETRY_SCALE", "1")),
            disable_after=float(env.get("CORRAL_WEBHOOKS_DISABLE_AFTER", str(DISABLE_AFTER))),
            timeout=float(env.get("CORRAL_WEBHOOKS_TIMEOUT", "15")),
            concurrency=int(env.get("CORRAL_WEBHOOKS_CONCURRENCY", "64")),
            sweep_interval=float(env.get("CORRAL_WEBHOOKS_SWEEP_INTERVAL", "30")),
            log_level=env.get("CORRAL_LOG_LEVEL", "INFO"),
        )


def store_url(home: Path, env: dict[str, str]) -> str:
    """`CORRAL_WEBHOOKS_DATABASE_URL`; else the platform's PostgreSQL (`CORRAL_DATABASE_URL`, tables of its
    own); else SQLite under `$CORRAL_HOME/webhooks/`."""
    if env.get("CORRAL_WEBHOOKS_DATABASE_URL"):
        return env["CORRAL_WEBHOOKS_DATABASE_URL"]
    shared = env.get("CORRAL_DATABASE_URL", "")
    if shared.startswith(("postgres://", "postgresql://")):
        return shared
    return f"sqlite:///{home / 'webhooks' / 'store.db'}"


def flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")
