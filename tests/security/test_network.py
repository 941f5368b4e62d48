"""Network attacks: a sandbox reaches the internet, and nothing else — not the host, the control plane,
other sandboxes, other containers or the metadata service — and its allow list and block-all hold,
live, after a flush of its rules and across a runner restart."""

from __future__ import annotations

import errno
import shlex
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator

import docker
import pytest

from corral_stack.stack import Stack
from corral_testing.waiting import wait_for

from .conftest import Api
from .outside import METADATA, PORT, Outside
from .probes import connect_code, last_json

REFUSED = errno.EHOSTUNREACH
"""What the host firewall answers (ICMP admin-prohibited): proof that a rule, not chance, stopped it."""


def container_ip(sandbox_id: str) -> str:
    client = docker.from_env()
    try:
        networks = client.containers.get(f"corral-{sandbox_id}").attrs["NetworkSettings"]["Networks"]
        return str(networks["corral-sandboxes"]["IPAddress"])
    finally:
        client.close()


async def connect(api: Api, sandbox_id: str, *targets: tuple[str, int], timeout: float = 3.0) -> dict[str, dict]:
    code, output = await api.python(sandbox_id, connect_code(list(targets), timeout))
    assert code == 0, output
    return last_json(output)  # type: ignore[no-any-return]


def refused(result: dict) -> bool:
    return not result["connected"] and result["errno"] == REFUSED


class Listener:
    """A TCP server on the host, on every address, that remembers who connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[0])
            conn.sendall(b"host\n")
            conn.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.sock.close()


def host_addresses() -> dict[str, str]:
    """Every IPv4 address of this host but loopback, by interface."""
    lines = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in lines.splitlines():
        fields = line.split()
        if fields[1] != "lo":
            found[fields[1]] = fields[3].split("/")[0]
    return found


@pytest.mark.control
async def test_general_egress_reaches_the_internet(api: Api, sandboxes: dict[str, str], outside: Outside) -> None:
    result = await connect(api, sandboxes["daytona"], (outside.internet[0], PORT))
    assert result[f"{outside.internet[0]}:{PORT}"]["data"] == f"outside {outside.internet[0]}\n"


@pytest.mark.control
def test_the_host_listener_answers_from_outside(listener: Listener, outside: Outside) -> None:
    done = outside.run("python3", "-c", f"import socket; print(socket.create_connection(('{outside.host_address}', "
                                        f"{listener.port}), timeout=3).recv(10))")
    assert "host" in done.stdout, done.stderr


@pytest.mark.parametrize("user", ["daytona", "root"])
async def test_no_address_of_the_host_is_reachable(api: Api, sandboxes: dict[str, str], listener: Listener,
                                                   outside: Outside, user: str) -> None:
    """The gateway of the sandboxes' bridge, docker0, the primary interface, any other: all the host."""
    addresses = host_addresses()
    assert outside.bridge in addresses
    before = len(listener.peers)
    results = await connect(api, sandboxes[user], *((a, listener.port) for a in addresses.values()))
    assert all(refused(r) for r in results.values()), results
    assert len(listener.peers) == before


async def test_the_control_plane_is_unreachable(api: Api, sandboxes: dict[str, str], stack: Stack) -> None:
    """api, proxy, runner and NATS, on the gateway and through the host's loopback by name."""
    gateway = host_addresses()[_bridge()]
    ports = [stack.config.api_port, stack.config.proxy_port, stack.config.nats_port, *stack.config.runner_ports.values()]
    results = await connect(api, sandboxes["root"], *((gateway, p) for p in ports),
                            *(("host.docker.internal", p) for p in ports[:1]))
    for target, result in results.items():
        assert not result["connected"], (target, result)


def _bridge() -> str:
    from .outside import sandbox_bridge
    return sandbox_bridge()


async def test_cloud_metadata_is_unreachable(api: Api, sandboxes: dict[str, str], outside: Outside) -> None:
    sandbox_ip = container_ip(sandboxes["root"])
    route = subprocess.run(["ip", "route", "get", METADATA, "from", sandbox_ip, "iif", outside.bridge],
                           capture_output=True, text=True).stdout
    assert f"dev crl" in route, route  # without the firewall the packet would reach our stand-in
    results = await connect(api, sandboxes["root"], (METADATA, PORT), (METADATA, 80))
    assert all(refused(r) for r in results.values()), results
    assert METADATA not in outside.reached()


@pytest.fixture(scope="module")
async def other_sandbox(api: Api) -> AsyncIterator[tuple[str, str]]:
    """A sandbox serving HTTP on 8000 (its id and address)."""
    sandbox = await api.create(labels={"corral.security": "victim"})
    try:
        await api.sh(sandbox["id"], "setsid nohup python3 -m http.server 8000 >/dev/null 2>&1 < /dev/null &")
        address = container_ip(sandbox["id"])

        def serving() -> bool:
            try:
                socket.create_connection((address, 8000), timeout=1).close()
                return True
            except OSError:
                return False
        await wait_for(serving, timeout=20, message="the victim's server never answered the host")
        yield sandbox["id"], address
    finally:
        await api.delete(sandbox["id"])


@pytest.mark.parametrize("user", ["daytona", "root"])
async def test_other_sandboxes_are_unreachable(api: Api, sandboxes: dict[str, str], other_sandbox: tuple[str, str],
                                               user: str) -> None:
    results = await connect(api, sandboxes[user], (other_sandbox[1], 8000))
    assert all(refused(r) for r in results.values()), results


@pytest.fixture(scope="module")
def other_container() -> Iterator[tuple[str, int]]:
    """A plain container on the engine's default bridge, its port also published on the host."""
    client = docker.from_env()
    container = client.containers.run("corral/sandbox:default", ["python3", "-m", "http.server", "8000"], detach=True,
                                      ports={"8000/tcp": None}, labels={"corral.security": "other-container"},
                                      auto_remove=False)
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        published = int(container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"])
        yield address, published
    finally:
        container.remove(force=True)
        client.close()


async def test_other_containers_and_published_ports_are_unreachable(
        api: Api, sandboxes: dict[str, str], other_container: tuple[str, int]) -> None:
    address, published = other_container

    def answers() -> bool:
        try:
            socket.create_connection((address, 8000), timeout=1).close()
            socket.create_connection(("127.0.0.1", published), timeout=1).close()
            return True
        except OSError:
            return False
    await wait_for(answers, timeout=20, message="the other container never answered the host")
    targets = [(address, 8000), *((a, published) for a in host_addresses().values())]
    results = await connect(api, sandboxes["root"], *targets)
    assert all(not r["connected"] for r in results.values()), results


@pytest.mark.parametrize("user", ["daytona", "root"])
async def test_raw_and_packet_sockets_are_refused(api: Api, sandboxes: dict[str, str], user: str) -> None:
    code, output = await api.python(sandboxes[user], r"""
import json, socket
out = {}
for name, args in {"raw": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
                   "packet": (socket.AF_PACKET, socket.SOCK_RAW, 0x0300)}.items():
    try:
        socket.socket(*args).close(); out[name] = "opened"
    except OSError as e:
        out[name] = e.errno
print(json.dumps(out))
""")
    assert last_json(output) == {"raw": errno.EPERM, "packet": errno.EPERM}, output


async def test_routes_and_interfaces_cannot_be_changed(api: Api, sandboxes: dict[str, str]) -> None:
    """Root cannot send loopback traffic to the host, add addresses or take interfaces down (no NET_ADMIN)."""
    gateway = host_addresses()[_bridge()]
    for command in (f"ip route add 127.0.0.0/8 via {gateway}", "ip addr add 10.9.9.9/32 dev lo",
                    "ip link set lo down", "sysctl -w net.ipv4.ip_forward=1"):
        code, output = await api.sh(sandboxes["root"], command)
        assert code != 0, (command, output)


async def test_an_allow_list_limits_egress_and_never_opens_the_forbidden(api: Api, outside: Outside) -> None:
    allowed, other = outside.internet
    sandbox = await api.create(networkAllowList=f"{allowed}/32, {METADATA}/32, 172.16.0.0/12")
    try:
        assert sandbox["networkAllowList"] == f"{allowed}/32,{METADATA}/32,172.16.0.0/12"
        results = await connect(api, sandbox["id"], (allowed, PORT), (other, PORT), (METADATA, PORT),
                                (host_addresses()[outside.bridge], PORT))
        assert results[f"{allowed}:{PORT}"]["connected"], results
        assert refused(results[f"{other}:{PORT}"]), results
        assert refused(results[f"{METADATA}:{PORT}"]) and refused(results[f"{host_addresses()[outside.bridge]}:{PORT}"])
    finally:
        await api.delete(sandbox["id"])


async def test_network_settings_change_live_without_a_restart(api: Api, outside: Outside) -> None:
    first, second = outside.internet
    sandbox = await api.create()
    sid = sandbox["id"]
    targets = ((first, PORT), (second, PORT))
    try:
        pid = (await api.sh(sid, "cat /proc/1/stat"))[1].split()[21]  # start time of PID 1: same run throughout

        response = await api.network(sid, networkAllowList=f"{second}/32")
        assert response.status_code == 200 and response.json()["networkAllowList"] == f"{second}/32", response.text
        results = await connect(api, sid, *targets)
        assert refused(results[f"{first}:{PORT}"]) and results[f"{second}:{PORT}"]["connected"], results

        response = await api.network(sid, networkBlockAll=True)
        assert response.status_code == 200 and response.json()["networkBlockAll"] is True, response.text
        code, interfaces = await api.sh(sid, "ls /sys/class/net")
        assert interfaces.split() == ["lo"], interfaces
        results = await connect(api, sid, *targets)
        assert all(r["errno"] == errno.ENETUNREACH for r in results.values()), results
        code, _ = await api.sh(sid, "getent hosts deb.debian.org")
        assert code != 0  # no name resolution either

        response = await api.network(sid, networkBlockAll=False)
        assert response.status_code == 200 and response.json()["networkAllowList"] == f"{second}/32"
        results = await connect(api, sid, *targets)
        assert refused(results[f"{first}:{PORT}"]) and results[f"{second}:{PORT}"]["connected"], results

        response = await api.network(sid, networkAllowList="")
        assert response.status_code == 200 and response.json()["networkAllowList"] is None
        results = await connect(api, sid, *targets)
        assert all(r["connected"] for r in results.values()), results

        assert (await api.sh(sid, "cat /proc/1/stat"))[1].split()[21] == pid  # never restarted
        kinds = [e["type"] for e in await api.events(sid)]
        assert kinds.count("SandboxNetworkSettingsChanged") == 4 and kinds.count("SandboxNetworkApplied") == 4, kinds
    finally:
        await api.delete(sid)


async def test_block_all_at_create_means_no_network(api: Api, outside: Outside) -> None:
    sandbox = await api.create(networkBlockAll=True)
    try:
        assert (await api.sh(sandbox["id"], "ls /sys/class/net"))[1].split() == ["lo"]
        results = await connect(api, sandbox["id"], (outside.internet[0], PORT), (METADATA, PORT))
        assert all(not r["connected"] for r in results.values()), results
    finally:
        await api.delete(sandbox["id"])


async def test_rules_come_back_after_a_flush_and_a_runner_restart(api: Api, outside: Outside, stack: Stack) -> None:
    """Rules removed behind the runner's back are put back by its periodic check; a restarted runner
    re-applies every rule before anything else."""
    allowed, other = outside.internet
    sandbox = await api.create(networkAllowList=f"{allowed}/32")
    sid = sandbox["id"]
    chain = "CRL-" + sid.replace("-", "")[:24]
    try:
        assert refused((await connect(api, sid, (other, PORT)))[f"{other}:{PORT}"])
        listing = subprocess.run(["iptables", "-S", "CORRAL-SANDBOXES"], capture_output=True, text=True).stdout
        jump = next(line for line in listing.splitlines() if chain in line)
        subprocess.run(["iptables", *shlex.split(jump.replace("-A ", "-D ", 1))], check=True)
        subprocess.run(["iptables", "-F", chain], check=True)
        # unprotected now (unless the runner's periodic check already noticed: it runs every few seconds)

        async def protected() -> bool:
            listing = subprocess.run(["iptables", "-S", "CORRAL-SANDBOXES"], capture_output=True, text=True).stdout
            return chain in listing and refused(
                (await connect(api, sid, (other, PORT), timeout=1))[f"{other}:{PORT}"])
        await wait_for(protected, timeout=30, interval=0.5, message="the runner never put the rules back")

        stack.restart("runner")
        assert refused((await connect(api, sid, (other, PORT)))[f"{other}:{PORT}"])
        assert (await connect(api, sid, (allowed, PORT)))[f"{allowed}:{PORT}"]["connected"]
    finally:
        await api.delete(sid)

    def no_rule_left() -> bool:  # destroyed: no rule of it is left
        return chain not in subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    await wait_for(no_rule_left, timeout=30, interval=0.2, message=f"{chain} outlived its sandbox")


@pytest.mark.control
async def test_bad_network_settings_are_400(api: Api, sandboxes: dict[str, str]) -> None:
    sid = sandboxes["daytona"]
    eleven = ",".join(f"10.0.{i}.0/24" for i in range(11))
    for body in ({}, {"networkAllowList": eleven}, {"networkAllowList": "10.0.0.0/33"},
                 {"networkAllowList": "example.com"}, {"networkBlockAll": "yes"}):
        response = await api.network(sid, **body)
        assert response.status_code == 400 and response.json()["statusCode"] == 400, (body, response.text)
    response = await api.client.post(f"{api.stack.api_url}/sandbox", json={"networkAllowList": eleven},
                                     headers=api.auth)
    assert response.status_code == 400, response.text
