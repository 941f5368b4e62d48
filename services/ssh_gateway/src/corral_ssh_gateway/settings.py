"""The ssh-gateway's settings: one frozen struct, read from the environment once, in `main`."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import msgspec

from corral_web.secrets import internal_token


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    home: str
    nats_url: str
    internal_token: str
    host: str = "127.0.0.1"
    """Address the gateway listens on (CORRAL_SSH_HOST; 0.0.0.0 for every address)."""
    port: int = 2222
    gateway_id: str = "ssh-gateway"
    wake_wait: float = 60.0
    """Seconds a login waits for a stopped sandbox to start before it is refused."""
    login_timeout: float = 120.0
    activity_every: float = 10.0
    """Seconds between activity reports of a sandbox while an SSH session to it is open."""
    check_every: float = 10.0
    """Seconds between checks that open sessions' tokens are not revoked (a revoked token ends its sessions)."""
    failures_free: int = 3
    """Failed logins from one address before the next ones are slowed down."""
    failure_delay: float = 1.0
    """The first slow-down (seconds); it doubles with every further failure, up to `failure_delay_max`."""
    failure_delay_max: float = 16.0
    failure_window: float = 600.0
    """Seconds after an address's last failure when it is forgotten."""
    host_key: str = ""
    """The host key's file (CORRAL_SSH_HOST_KEY; default `$CORRAL_HOME/ssh-gateway/host_ed25519_key`), made
    on first start; several gateways behind one address share one file so clients see one key."""
    log_level: str = "INFO"

    @property
    def host_key_path(self) -> Path:
        return Path(self.host_key) if self.host_key else Path(self.home) / "ssh-gateway" / "host_ed25519_key"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CORRAL_HOME", ".corral")).resolve()
        token = internal_token(env, home)
        return cls(
            home=str(home),
            nats_url=env.get("CORRAL_NATS_URL", "nats://127.0.0.1:4222"),
            internal_token=token,
            host=env.get("CORRAL_SSH_HOST", "127.0.0.1"),
            port=int(env.get("CORRAL_SSH_PORT", "2222")),
            gateway_id=env.get("CORRAL_SSH_GATEWAY_ID", f"ssh-gateway@{socket.gethostname()}"),
            wake_wait=float(env.get("CORRAL_SSH_WAKE_WAIT", "60")),
            activity_every=float(env.get("CORRAL_SSH_ACTIVITY_EVERY", "10")),
            check_every=float(env.get("CORRAL_SSH_CHECK_EVERY", "10")),
            failures_free=int(env.get("CORRAL_SSH_FAILURES_FREE", "3")),
            failure_delay=float(env.get("CORRAL_SSH_FAILURE_DELAY", "1")),
            failure_delay_max=float(env.get("CORRAL_SSH_FAILURE_DELAY_MAX", "16")),
            host_key=env.get("CORRAL_SSH_HOST_KEY", ""),
            log_level=env.get("CORRAL_LOG_LEVEL", "INFO"),
        )

