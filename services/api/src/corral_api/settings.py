"""The api's settings: one frozen struct, read from the environment once, in `main`."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from corral_web.secrets import required_secret

from .domain.quotas import Quota

QUOTA_ENV = {
    "max_cpu_per_sandbox": "CORRAL_MAX_CPU_PER_SANDBOX", "max_memory_per_sandbox": "CORRAL_MAX_MEMORY_PER_SANDBOX",
    "max_disk_per_sandbox": "CORRAL_MAX_DISK_PER_SANDBOX", "total_cpu": "CORRAL_TOTAL_CPU_QUOTA",
    "total_memory": "CORRAL_TOTAL_MEMORY_QUOTA", "total_disk": "CORRAL_TOTAL_DISK_QUOTA",
    "rate_authenticated": "CORRAL_RATE_LIMIT_AUTHENTICATED", "rate_sandbox_create": "CORRAL_RATE_LIMIT_SANDBOX_CREATE",
    "rate_sandbox_lifecycle": "CORRAL_RATE_LIMIT_SANDBOX_LIFECYCLE",
}
"""Every organization's default quota and per-minute rate limits (an operator overrides them per organization)."""


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
    webhooks_allow_private: bool = False
    """Accept webhook endpoints on loopback/private/link-local addresses (CORRAL_WEBHOOKS_ALLOW_PRIVATE=1)."""
    preview_url: str = "http://preview.localhost:4000"
    """Base of preview URLs: `{port}-{id}.` goes before its host (CORRAL_PREVIEW_URL; default: host
    `preview.localhost`, scheme and port of the toolbox proxy URL)."""
    preview_url_form: str = "host"
    """`host` (`{port}-{id}.{domain}`) or `path` (`{proxy}/preview/{id}/{port}/`, for places without
    wildcard DNS) in the URLs the api hands out (CORRAL_PREVIEW_URL_FORM)."""
    ssh_host: str = "127.0.0.1"
    """The host `sshCommand` names (CORRAL_SSH_PUBLIC_HOST, else the gateway's CORRAL_SSH_HOST)."""
    ssh_port: int = 2222
    """The port `sshCommand` names (CORRAL_SSH_PUBLIC_PORT, else the gateway's CORRAL_SSH_PORT)."""
    ssh_sweep_interval: float = 10.0
    """Seconds between the sweeps that record expired SSH tokens and revoke those of destroyed sandboxes."""
    build_timeout: float = 3600.0
    """Seconds a snapshot build may take (CORRAL_BUILD_TIMEOUT; the snapshot manager enforces it, the
    supervisor fails a build still unfinished a while after it)."""
    log_level: str = "INFO"
    quota: Quota = Quota()
    """The platform's default quota and rate limits (`QUOTA_ENV`)."""
    rate_limit_anonymous: int = 10_000
    """Requests per minute per client IP to public routes (CORRAL_RATE_LIMIT_ANONYMOUS)."""
    rate_limit_failed_auth: int = 10_000
    """Refused-key requests per minute per client IP (CORRAL_RATE_LIMIT_FAILED_AUTH)."""
    audit_retention_days: float = 90.0
    """Audit entries older than this are no longer served (CORRAL_AUDIT_RETENTION_DAYS; 0 = keep all)."""
    key_use_granularity: float = 300.0
    """Seconds: an API key's `lastUsedAt` is recorded at most this often (CORRAL_KEY_USE_GRANULARITY)."""

    @property
    def proxy_url(self) -> str:
        """The proxy's base URL: the toolbox proxy URL without its `/toolbox`."""
        return self.toolbox_proxy_url.removesuffix("/toolbox")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CORRAL_HOME", ".corral")).resolve()
        key = required_secret(env, "CORRAL_ADMIN_API_KEY", home / "admin-api-key")
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
            webhooks_allow_private=flag(env.get("CORRAL_WEBHOOKS_ALLOW_PRIVATE", "")),
            preview_url=env.get("CORRAL_PREVIEW_URL") or default_preview_url(
                env.get("CORRAL_TOOLBOX_PROXY_URL", "http://127.0.0.1:4000/toolbox")),
            preview_url_form=_form(env.get("CORRAL_PREVIEW_URL_FORM", "host")),
            ssh_host=ssh_public_host(env),
            ssh_port=int(env.get("CORRAL_SSH_PUBLIC_PORT") or env.get("CORRAL_SSH_PORT") or "2222"),
            ssh_sweep_interval=float(env.get("CORRAL_SSH_SWEEP_INTERVAL", "10")),
            build_timeout=float(env.get("CORRAL_BUILD_TIMEOUT", "3600")),
            log_level=env.get("CORRAL_LOG_LEVEL", "INFO"),
            quota=Quota(**{name: int(env[var]) for name, var in QUOTA_ENV.items() if env.get(var)}),
            rate_limit_anonymous=int(env.get("CORRAL_RATE_LIMIT_ANONYMOUS", "10000")),
            rate_limit_failed_auth=int(env.get("CORRAL_RATE_LIMIT_FAILED_AUTH", "10000")),
            audit_retention_days=float(env.get("CORRAL_AUDIT_RETENTION_DAYS", "90")),
            key_use_granularity=float(env.get("CORRAL_KEY_USE_GRANULARITY", "300")),
        )


def event_store_url(home: Path, env: dict[str, str]) -> str:
    """The api's event store: `CORRAL_DATABASE_URL`, else SQLite under `$CORRAL_HOME/api/` (also read by
    `corral replay`)."""
    return env.get("CORRAL_DATABASE_URL") or f"sqlite:///{home / 'api' / 'events.db'}"


def flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def default_preview_url(toolbox_proxy_url: str) -> str:
    """`preview.localhost` (resolves to the loopback in browsers and curl without DNS set-up) with the
    scheme and port of the proxy."""
    parts = urlsplit(toolbox_proxy_url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or 'http'}://preview.localhost{port}"


def _form(value: str) -> str:
    if value not in ("host", "path"):
        raise SystemExit(f"CORRAL_PREVIEW_URL_FORM must be host or path, not {value!r}")
    return value


def ssh_public_host(env: dict[str, str]) -> str:
    """Where clients reach the ssh-gateway: a gateway listening on every address is named by this host's name."""
    host = env.get("CORRAL_SSH_PUBLIC_HOST") or env.get("CORRAL_SSH_HOST") or "127.0.0.1"
    return socket.gethostname() if host in ("0.0.0.0", "::") else host

