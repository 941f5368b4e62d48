"""The snapshot manager's settings: one frozen struct, read from the environment once, in `main`."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from corral_web.secrets import internal_token

PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
"""Docker's predefined build arguments: the host's proxies reach every build without the Dockerfile
declaring them, and stay out of the image."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str
    internal_token: str
    docker_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 3010
    build_timeout: float = 3600.0
    """Seconds a build (or an import) may take before it is cancelled and reported failed."""
    registry: str = ""
    """A registry (`host[:port]/project`) to pull missing base images from and push snapshot images to;
    empty: none (images come from this Docker host only; runners get snapshots from this service)."""
    helper_image: str = "corral/sandbox:default"
    """A small image with a shell, to prepare volume directories."""
    build_args: dict[str, str] = {}
    labels: dict[str, str] = {}
    """Extra labels on every image, volume and container this service makes (tests find theirs by it)."""
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CORRAL_HOME", ".corral")).resolve()
        token = internal_token(env, home)
        labels = dict(item.split("=", 1) for item in env.get("CORRAL_RUNNER_LABELS", "").split(",") if "=" in item)
        return cls(
            nats_url=env.get("CORRAL_NATS_URL", "nats://127.0.0.1:4222"),
            internal_token=token,
            docker_url=env.get("DOCKER_HOST") or None,
            host=env.get("CORRAL_SNAPSHOT_MANAGER_HOST", "127.0.0.1"),
            port=int(env.get("CORRAL_SNAPSHOT_MANAGER_PORT", "3010")),
            build_timeout=float(env.get("CORRAL_BUILD_TIMEOUT", "3600")),
            registry=env.get("CORRAL_REGISTRY", "").rstrip("/"),
            helper_image=env.get("CORRAL_HELPER_IMAGE", "corral/sandbox:default"),
            build_args={name: env[name] for name in PROXY_ARGS if env.get(name)},
            labels=labels,
            log_level=env.get("CORRAL_LOG_LEVEL", "INFO"),
        )

