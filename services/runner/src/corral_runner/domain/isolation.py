"""What a sandbox container looks like: the isolation defaults, as data (no Docker here).

- `docker-init` is PID 1 and the agent its child (an image's own ENTRYPOINT is not run: it would take the
  agent's command line as its arguments); the agent file is mounted read-only, the sandbox's
  own run directory (the agent's socket) read-write; no other host path, never the Docker socket.
- Every capability is dropped except `ALLOWED_CAPABILITIES`; `no-new-privileges`; Docker's default
  seccomp profile (never `unconfined`).
- Memory limit with swap equal to it (no swap), CPU quota, pids limit.
- A dedicated bridge network with inter-container traffic off, guarded by host firewall rules
  (`network_policy`); `networkBlockAll` = the container is attached to no network at all.
- The writable layer bounded to the sandbox's disk size where the engine can (the btrfs driver, which an
  engine Corral starts itself uses; or overlay2 on XFS with project quotas).
"""

from __future__ import annotations

import msgspec

from corral_contracts.runner import CreateSandbox

AGENT_DIR_IN_SANDBOX = "/opt/corral"
RUN_DIR_IN_SANDBOX = "/run/corral"
AGENT_FILE = "corral-agent.pyz"
AGENT_SOCKET = "agent.sock"

ALLOWED_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE")
"""What a process in the sandbox may still do if it holds root: file ownership and permissions within its
own filesystem, signals to its own processes, user switching, low ports. No NET_RAW, SYS_ADMIN, SYS_PTRACE,
SYS_MODULE, MKNOD, AUDIT_WRITE, SETFCAP or SYS_CHROOT."""

PIDS_LIMIT = 1024
NETWORK_NAME = "corral-sandboxes"
NETWORK_OPTIONS = {"com.docker.network.bridge.enable_icc": "false"}

LABEL_MANAGED = "corral.managed"
LABEL_SANDBOX = "corral.sandbox_id"
LABEL_RUNNER = "corral.runner_id"
LABEL_DISK_BYTES = "corral.disk_bytes"
"""The sandbox's disk allowance (the engine enforces none here): what `/system/metrics` reports as total."""


def container_name(sandbox_id: str) -> str:
    return f"corral-{sandbox_id}"



class ContainerSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    image: str
    command: list[str]
    user: str
    hostname: str
    working_dir: str
    environment: dict[str, str]
    labels: dict[str, str]
    mounts: list[tuple[str, str, bool]]
    """(host path, container path, read_only)"""
    mem_bytes: int
    nano_cpus: int
    pids_limit: int
    cap_drop: list[str]
    cap_add: list[str]
    security_opt: list[str]
    network: str
    attached: bool
    """False = detached from every network before it first starts (`networkBlockAll`)."""
    disk_bytes: int
    """Size of the writable layer, enforced where the engine supports it."""
    volumes: list[tuple[str, str]] = []
    """(engine-managed named volume, container path): volumes, never host paths."""


def container_spec(command: CreateSandbox, *, runner_id: str, agent_dir: str, run_dir: str,
                   extra_labels: dict[str, str] | None = None,
                   volumes: list[tuple[str, str]] | None = None) -> ContainerSpec:
    home = "/root" if command.user == "root" else f"/home/{command.user}"
    environment = {
        "HOME": home, "USER": command.user, "LANG": "C.UTF-8",
        "DAYTONA_SANDBOX_ID": command.sandbox_id, "DAYTONA_SANDBOX_USER": command.user,
        "CORRAL_SANDBOX_ID": command.sandbox_id,
        **command.env,
    }
    return ContainerSpec(
        name=container_name(command.sandbox_id),
        image=command.image,
        command=["python3", "-I", "-S", f"{AGENT_DIR_IN_SANDBOX}/{AGENT_FILE}",
                 "--socket", f"{RUN_DIR_IN_SANDBOX}/{AGENT_SOCKET}",
                 "--workdir", home],
        user=command.user,
        hostname=command.sandbox_id,
        working_dir=home,
        environment=environment,
        labels={LABEL_MANAGED: "true", LABEL_SANDBOX: command.sandbox_id, LABEL_RUNNER: runner_id,
                LABEL_DISK_BYTES: str(command.disk * 1024**3), **(extra_labels or {})},
        mounts=[(agent_dir, AGENT_DIR_IN_SANDBOX, True), (run_dir, RUN_DIR_IN_SANDBOX, False)],
        mem_bytes=command.memory * 1024**3,
        nano_cpus=command.cpu * 1_000_000_000,
        pids_limit=PIDS_LIMIT,
        cap_drop=["ALL"],
        cap_add=list(ALLOWED_CAPABILITIES),
        security_opt=["no-new-privileges:true"],
        network=NETWORK_NAME,
        attached=not command.network_block_all,
        disk_bytes=command.disk * 1024**3,
        volumes=list(volumes or []),
    )
