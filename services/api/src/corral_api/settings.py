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
            database_url=env.get("CORRAL_DATABASE_URL", f"sqlite:///{home / 'api' / 'events.db'}"),
            nats_url=env.get("CORRAL_NATS_URL", "nats://127.0.0.1:4222"),
            host=env.get("CORRAL_API_HOST", "127.0.0.1"),
            port=int(env.get("CORRAL_API_PORT", "3000")),
            toolbox_proxy_url=env.get("CORRAL_TOOLBOX_PROXY_URL", "http://127.0.0.1:4000/toolbox").rstrip("/"),
            admin_api_key=key,
            create_wait=float(env.get("CORRAL_CREATE_WAIT", "30")),
            log_level=env.get("CORRAL_LOG_LEVEL", "INFO"),
        )


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
