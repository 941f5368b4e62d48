"""The whole platform on one machine: nats-server, api, runner(s), snapshot manager, proxy, webhooks and
ssh-gateway as separate processes.

`make run` uses it in the foreground; the test suite starts one per session on free ports with its
own `CORRAL_HOME`, and fault tests kill and restart its processes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import docker
import msgspec

from .docker_engine import ensure_docker
from .nats import NatsServer
from .ports import free_port, is_listening
from .processes import ServiceProcess
from .sandbox_image import ensure_sandbox_image
from .secrets_store import ensure_secret


class StackConfig(msgspec.Struct, kw_only=True):
    home: Path
    host: str = "127.0.0.1"
    api_port: int = 3000
    proxy_port: int = 4000
    runner_ports: dict[str, int] = msgspec.field(default_factory=lambda: {"local": 3003})
    nats_port: int = 4222
    webhooks_port: int = 3004
    """The webhooks service's health endpoint."""
    ssh_port: int = 2222
    snapshot_manager_port: int = 3010
    container_labels: dict[str, str] = {}
    echo: bool = True
    admin_api_key: str | None = None
    log_level: str = "INFO"
    create_wait: float = 30.0
    env: dict[str, str] = {}
    """Extra environment of every service process (tests shorten the lifecycle clock with it)."""

    @classmethod
    def ephemeral(cls, home: Path, *, runners: int = 1, echo: bool = False, labels: dict[str, str] | None = None,
                  env: dict[str, str] | None = None) -> "StackConfig":
        """Free ports everywhere and unique runner names: for tests and benchmarks."""
        tag = os.urandom(3).hex()
        return cls(home=home, api_port=free_port(), proxy_port=free_port(), nats_port=free_port(),
                   webhooks_port=free_port(), ssh_port=free_port(), snapshot_manager_port=free_port(),
                   runner_ports={f"runner-{tag}-{i}": free_port() for i in range(runners)}, echo=echo,
                   container_labels=labels or {}, env=env or {})


class Stack:
    def __init__(self, config: StackConfig, log=print):  # type: ignore[no-untyped-def]
        self.config = config
        self.log = log
        self.home = config.home.resolve()
        self.nats: NatsServer | None = None
        self.services: dict[str, ServiceProcess] = {}
        self.admin_api_key = ""
        self.internal_token = ""
        self.docker_url = ""
        self.sandbox_image = ""
        """The default sandbox image by its recipe tag (`corral/sandbox:<hash>`), which no other checkout moves."""

    @property
    def api_url(self) -> str:
        return f"http://{self.config.host}:{self.config.api_port}/api"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.config.host}:{self.config.proxy_port}"

    @property
    def snapshot_manager_url(self) -> str:
        return f"http://{self.config.host}:{self.config.snapshot_manager_port}"

    @property
    def toolbox_url(self) -> str:
        return f"{self.proxy_url}/toolbox"

    def prepare(self) -> None:
        """Everything that may take minutes the first time and seconds afterwards."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.admin_api_key = ensure_secret(self.home / "admin-api-key", prefix="crl_",
                                           override=self.config.admin_api_key or os.environ.get("CORRAL_ADMIN_API_KEY"))
        self.internal_token = ensure_secret(self.home / "internal-token")
        self.docker_url = ensure_docker(self.home, log=self.log)
        client = docker.DockerClient(base_url=self.docker_url)
        try:
            self.sandbox_image = ensure_sandbox_image(client, work_dir=self.home / "images", log=self.log)
        finally:
            client.close()

    def _env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "CORRAL_HOME": str(self.home),
            "CORRAL_NATS_URL": self.nats.url if self.nats else "",
            "CORRAL_ADMIN_API_KEY": self.admin_api_key,
            "CORRAL_INTERNAL_TOKEN": self.internal_token,
            "CORRAL_TOOLBOX_PROXY_URL": self.toolbox_url,
            "CORRAL_SSH_HOST": self.config.host,
            "CORRAL_SSH_PORT": str(self.config.ssh_port),
            "CORRAL_LOG_LEVEL": self.config.log_level,
            "DOCKER_HOST": self.docker_url,
            "CORRAL_SNAPSHOT_MANAGER_URL": self.snapshot_manager_url,
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.config.env)
        env.update(extra)
        return env

    def _service(self, name: str, module: str, **env: str) -> ServiceProcess:
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return ServiceProcess(name, [sys.executable, "-m", module], env=self._env(**env),
                              log_file=logs / f"{name}.log", echo=self.config.echo)

    def start(self) -> "Stack":
        self.prepare()
        cfg = self.config
        self.nats = NatsServer(self.home / "nats", port=cfg.nats_port, host=cfg.host,
                               log_file=self.home / "nats.log").start()
        self.services["api"] = self._service("api", "corral_api", CORRAL_API_HOST=cfg.host,
                                             CORRAL_API_PORT=str(cfg.api_port), CORRAL_CREATE_WAIT=str(cfg.create_wait))
        labels = ",".join(f"{k}={v}" for k, v in cfg.container_labels.items())
        self.services["snapshot-manager"] = self._service(
            "snapshot-manager", "corral_snapshot_manager", CORRAL_SNAPSHOT_MANAGER_HOST=cfg.host,
            CORRAL_SNAPSHOT_MANAGER_PORT=str(cfg.snapshot_manager_port), CORRAL_RUNNER_LABELS=labels,
            CORRAL_HELPER_IMAGE=self.sandbox_image or "corral/sandbox:default")
        for runner_id, port in cfg.runner_ports.items():
            name = "runner" if len(cfg.runner_ports) == 1 else f"runner:{runner_id}"
            self.services[name] = self._service(name, "corral_runner", CORRAL_RUNNER_ID=runner_id,
                                                CORRAL_RUNNER_HOST=cfg.host, CORRAL_RUNNER_PORT=str(port),
                                                CORRAL_RUNNER_LABELS=labels)
        self.services["proxy"] = self._service("proxy", "corral_proxy", CORRAL_PROXY_HOST=cfg.host,
                                               CORRAL_PROXY_PORT=str(cfg.proxy_port))
        self.services["webhooks"] = self._service("webhooks", "corral_webhooks", CORRAL_WEBHOOKS_HOST=cfg.host,
                                                  CORRAL_WEBHOOKS_PORT=str(cfg.webhooks_port))
        self.services["ssh-gateway"] = self._service("ssh-gateway", "corral_ssh_gateway")
        for service in self.services.values():
            service.start()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Every service answers and the api sees every runner."""
        deadline = time.monotonic() + timeout
        cfg = self.config
        checks = [(cfg.host, cfg.proxy_port), (cfg.host, cfg.webhooks_port), (cfg.host, cfg.ssh_port),
                  (cfg.host, cfg.snapshot_manager_port),
                  *((cfg.host, p) for p in cfg.runner_ports.values())]
        while time.monotonic() < deadline:
            for name, service in self.services.items():
                if not service.running():
                    raise RuntimeError(f"{name} exited during start-up; see {self.home / 'logs' / name}.log")
            if all(is_listening(h, p) for h, p in checks) and self.health().get("runners", 0) >= len(cfg.runner_ports):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the platform did not become ready within {timeout}s; logs in {self.home / 'logs'}")

    def health(self) -> dict:  # type: ignore[type-arg]
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=1) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def restart(self, name: str) -> None:
        service = self.services[name]
        service.stop()
        service.start()
        self.wait_ready()

    def add_service(self, name: str, module: str, **env: str) -> ServiceProcess:
        """Start one more service process (a second proxy replica, say); it stops with the stack."""
        service = self._service(name, module, **env)
        self.services[name] = service
        return service.start()

    def dump_stacks(self) -> None:
        """Ask every running service to write its threads and asyncio tasks to its log (SIGUSR1)."""
        for service in self.services.values():
            service.signal(signal.SIGUSR1)

    def stop(self) -> None:
        runners = [n for n in self.services if n.startswith("runner")]
        front = [n for n in self.services if n != "api" and n not in runners]
        for name in [*front, *runners, "api"]:
            if name in self.services:
                self.services[name].stop()
        if self.nats:
            self.nats.stop()
