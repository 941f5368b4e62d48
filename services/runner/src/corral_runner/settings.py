"""The runner's settings: one frozen struct, read from the environment once, in `main`."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import msgspec

from corral_web.secrets import internal_token


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    runner_id: str
    home: str
    nats_url: str
    internal_token: str
    docker_url: str | None = None
    toolbox_host: str = "127.0.0.1"
    toolbox_port: int = 3003
    toolbox_url: str = "http://127.0.0.1:3003"
    """How the proxy reaches this runner's toolbox front."""
    heartbeat_interval: float = 5.0
    agent_ready_timeout: float = 30.0
    container_labels: dict[str, str] = {}
    """Extra labels on every container (tests use one to find and remove what they made)."""
    network_policy: bool = True
    """Enforce the sandboxes' network policy with host firewall rules (CORRAL_NETWORK_POLICY=off only where
    something else isolates them: the runner then says loudly that it does not)."""
    sandbox_denied: list[str] = []
    """More IPv4 networks sandboxes never reach (CORRAL_SANDBOX_DENY, comma-separated): the control plane's
    addresses when it runs on other machines (NATS, databases). A non-loopback NATS address is added itself."""
    oom_interval: float = 2.0
    """Seconds between reads of the sandboxes' out-of-memory kill counters (CORRAL_OOM_INTERVAL)."""
    snapshot_manager_url: str = "http://127.0.0.1:3010"
    """Where snapshot images this runner lacks come from (unless a registry is configured)."""
    registry: str = ""
    snapshot_fetch: str = "auto"
    """How a missing snapshot image comes: `auto` (tag it when on the snapshot manager's own engine, else
    copy it), `ship` (always copy it from the snapshot manager)."""
    helper_image: str = "corral/sandbox:default"
    log_level: str = "INFO"

    @property
    def runner_dir(self) -> Path:
        return Path(self.home) / "runners" / self.runner_id

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CORRAL_HOME", ".corral")).resolve()
        token = internal_token(env, home)
        port = int(env.get("CORRAL_RUNNER_PORT", "3003"))
        host = env.get("CORRAL_RUNNER_HOST", "127.0.0.1")
        labels = dict(item.split("=", 1) for item in env.get("CORRAL_RUNNER_LABELS", "").split(",") if "=" in item)
        return cls(
            runner_id=env.get("CORRAL_RUNNER_ID", socket.gethostname().split(".")[0] or "runner"),
            home=str(home),
            nats_url=env.get("CORRAL_NATS_URL", "nats://127.0.0.1:4222"),
            internal_token=token,
            docker_url=env.get("DOCKER_HOST") or None,
            toolbox_host=host,
            toolbox_port=port,
            toolbox_url=env.get("CORRAL_RUNNER_URL", f"http://{host}:{port}"),
            container_labels=labels,
            heartbeat_interval=float(env.get("CORRAL_HEARTBEAT_INTERVAL", "5")),
            network_policy=env.get("CORRAL_NETWORK_POLICY", "on").lower() not in ("off", "0", "false", "no"),
            sandbox_denied=[c.strip() for c in env.get("CORRAL_SANDBOX_DENY", "").split(",") if c.strip()],
            oom_interval=float(env.get("CORRAL_OOM_INTERVAL", "2")),
            snapshot_manager_url=env.get("CORRAL_SNAPSHOT_MANAGER_URL", "http://127.0.0.1:3010"),
            registry=env.get("CORRAL_REGISTRY", "").rstrip("/"),
            snapshot_fetch=env.get("CORRAL_SNAPSHOT_FETCH", "auto"),
            helper_image=env.get("CORRAL_HELPER_IMAGE", "corral/sandbox:default"),
            log_level=env.get("CORRAL_LOG_LEVEL", "INFO"),
        )

