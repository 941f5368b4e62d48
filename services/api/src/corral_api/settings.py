"""The api's settings: one frozen struct, read from the environment once, in `main`."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    home: str
    database_url: str
    nats_url: str
    host: str = "127.0.0.1"
    port: int = 3000
    toolbox_proxy_url: str = "http://127.0.0.1:4000/toolbox"
    admin_api_key: str
    create_wait: float = 30.0
    supervise_interval: float = 5.0
    """Seconds between supervisor sweeps (timers, deadlines, re-issued commands)."""
    reissue_after: float = 20.0
    """Seconds a sandbox may sit unconverged before its command is sent again."""
    minute: float = 60.0
    """Seconds in a lifecycle-timer minute. Only tests shorten it (CORRAL_MINUTE_SECONDS)."""
    backup_every: float = 3600.0
    """Seconds between backups of a running sandbox (CORRAL_BACKUP_EVERY)."""
    deadline_factor: float = 1.0
    """Scales every transitional state's deadline. Only tests shorten them."""
    build_timeout: float = 3600.0
    """Seconds a snapshot build may take (CORRAL_BUILD_TIMEOUT; the snapshot manager enforces it, the
    supervisor fails a build still unfinished a while after it)."""
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CORRAL_HOME", ".corral")).resolve()
        key = env.get("CORRAL_ADMIN_API_KEY") or _read(home / "admin-api-key")
        if not key:
            raise SystemExit("CORRAL_ADMIN_API_KEY is not set and $CORRAL_HOME/admin-api-key does not exist")
        return cls(
            home=str(home),
            database_url=event_store_url(home, env),
            nats_url=env.get("CORRAL_NATS_URL", "nats://127.0.0.1:4222"),
            host=env.get("CORRAL_API_HOST", "127.0.0.1"),
            port=int(env.get("CORRAL_API_PORT", "3000")),
            toolbox_proxy_url=env.get("CORRAL_TOOLBOX_PROXY_URL", "http://127.0.0.1:4000/toolbox").rstrip("/"),
            admin_api_key=key,
            create_wait=float(env.get("CORRAL_CREATE_WAIT", "30")),
            supervise_interval=float(env.get("CORRAL_SUPERVISE_INTERVAL", "5")),
            reissue_after=float(env.get("CORRAL_REISSUE_AFTER", "20")),
            minute=float(env.get("CORRAL_MINUTE_SECONDS", "60")),
            deadline_factor=float(env.get("CORRAL_DEADLINE_FACTOR", "1")),
            backup_every=float(env.get("CORRAL_BACKUP_EVERY", "3600")),
            build_timeout=float(env.get("CORRAL_BUILD_TIMEOUT", "3600")),
            log_level=env.get("CORRAL_LOG_LEVEL", "INFO"),
        )


def event_store_url(home: Path, env: dict[str, str]) -> str:
    """The api's event store: `CORRAL_DATABASE_URL`, else SQLite under `$CORRAL_HOME/api/` (also read by
    `corral replay`)."""
    return env.get("CORRAL_DATABASE_URL") or f"sqlite:///{home / 'api' / 'events.db'}"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
