"""The container spec carries every isolation default (the attack suite proves them on a real engine)."""

from __future__ import annotations

from corral_contracts.runner import CreateSandbox
from corral_runner.domain.isolation import ALLOWED_CAPABILITIES, NETWORK_NAME, container_spec


def spec(**overrides: object):  # type: ignore[no-untyped-def]
    command = CreateSandbox(sandbox_id="s1", image="img", user="daytona", cpu=2, memory=3, **overrides)  # type: ignore[arg-type]
    return container_spec(command, runner_id="r1", agent_dir="/host/agent", run_dir="/host/runs/s1")


def test_only_the_agent_read_only_and_the_run_dir_are_mounted() -> None:
    assert spec().mounts == [("/host/agent", "/opt/corral", True), ("/host/runs/s1", "/run/corral", False)]
    assert not any("docker.sock" in source for source, _, _ in spec().mounts)


def test_capabilities_privileges_and_limits() -> None:
    s = spec()
    assert s.cap_drop == ["ALL"] and set(s.cap_add) == set(ALLOWED_CAPABILITIES)
    assert not {"SYS_ADMIN", "NET_RAW", "SYS_PTRACE", "SYS_MODULE", "NET_ADMIN"} & set(s.cap_add)
    assert s.security_opt == ["no-new-privileges:true"]
    assert s.mem_bytes == 3 * 1024**3 and s.nano_cpus == 2_000_000_000 and s.pids_limit > 0


def test_network_is_the_dedicated_bridge_detached_when_blocking_all() -> None:
    assert spec().network == NETWORK_NAME and spec().attached
    assert spec(network_block_all=True).network == NETWORK_NAME and not spec(network_block_all=True).attached


def test_the_disk_size_is_the_writable_layer_bound() -> None:
    assert spec(disk=5).disk_bytes == 5 * 1024**3


def test_user_env_cannot_be_lost_and_identity_is_set() -> None:
    s = spec(env={"FOO": "bar"})
    assert s.environment["FOO"] == "bar" and s.environment["DAYTONA_SANDBOX_ID"] == "s1"
    assert s.user == "daytona" and s.working_dir == "/home/daytona"
    assert s.labels["corral.runner_id"] == "r1" and s.labels["corral.sandbox_id"] == "s1"
