"""The proxy's settings: one frozen struct, read from the environment once, in `main`."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from corral_web.secrets import internal_token


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str
    internal_token: str
    host: str = "127.0.0.1"
    port: int = 4000
    settle_wait: float = 5.0
    """How long a request for a sandbox that is still being created/started waits before it is refused."""
    preview_domain: str = "preview.localhost"
    """Preview URLs are `{port}-{sandboxId}.{preview_domain}` (the host of CORRAL_PREVIEW_URL)."""
    preview_secret: str = ""
    """Signs the preview cookie; every replica needs the same one (CORRAL_PREVIEW_SECRET, else derived
    from the internal token, which every replica shares)."""
    wake_wait: float = 60.0
    """How long a visit to a stopped sandbox's preview waits for it to start (CORRAL_PREVIEW_WAKE_WAIT)."""
    browser_wait: float = 5.0
    """... and for a browser, after which it gets a page that reloads itself (CORRAL_PREVIEW_BROWSER_WAIT)."""
    port_wait: float = 10.0
    """After a wake, how long "nothing listens on the port" is retried (CORRAL_PREVIEW_PORT_WAIT)."""
    activity_every: float = 10.0
    """Activity reports per sandbox are de-duplicated over this many seconds (CORRAL_ACTIVITY_REPORT_SECONDS)."""
    log_level: str = "INFO"

    @property
    def cookie_secret(self) -> bytes:
        if self.preview_secret:
            return self.preview_secret.encode()
        return hmac.new(self.internal_token.encode(), b"corral preview cookie", hashlib.sha256).digest()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CORRAL_HOME", ".corral")).resolve()
        token = internal_token(env, home)
        return cls(
            nats_url=env.get("CORRAL_NATS_URL", "nats://127.0.0.1:4222"),
            internal_token=token,
            host=env.get("CORRAL_PROXY_HOST", "127.0.0.1"),
            port=int(env.get("CORRAL_PROXY_PORT", "4000")),
            preview_domain=preview_domain(env),
            preview_secret=env.get("CORRAL_PREVIEW_SECRET", ""),
            wake_wait=float(env.get("CORRAL_PREVIEW_WAKE_WAIT", "60")),
            browser_wait=float(env.get("CORRAL_PREVIEW_BROWSER_WAIT", "5")),
            port_wait=float(env.get("CORRAL_PREVIEW_PORT_WAIT", "10")),
            activity_every=float(env.get("CORRAL_ACTIVITY_REPORT_SECONDS", "10")),
            log_level=env.get("CORRAL_LOG_LEVEL", "INFO"),
        )


def preview_domain(env: dict[str, str]) -> str:
    """The host of CORRAL_PREVIEW_URL (e.g. `https://preview.example.com`), default `preview.localhost`
    (every `*.localhost` name resolves to the loopback in browsers and curl, no DNS set-up needed)."""
    url = env.get("CORRAL_PREVIEW_URL", "")
    host = urlsplit(url if "//" in url else f"//{url}").hostname if url else None
    return (host or "preview.localhost").lower()

