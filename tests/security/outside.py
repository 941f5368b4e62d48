"""A network of our own on this machine standing in for the internet and for a metadata service.

A network namespace joined to the host by a veth pair, with two "internet" addresses and the cloud
metadata address, all served by one TCP server that answers `outside <address>` and logs every
address it was reached at. Traffic from sandboxes to the metadata address is routed there (a policy
rule for packets arriving from the sandboxes' bridge only), so a firewall that failed to refuse it
would be caught here, and nothing ever leaves this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker

PORT = 8080
METADATA = "169.254.169.254"

SERVER = r"""
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[2]))); server.listen(64)
print("ready", flush=True)
def serve(conn):
    with conn:
        address = conn.getsockname()[0]
        log.write(address + "\n")
        conn.sendall(("outside %s\n" % address).encode())
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


@dataclass
class Outside:
    namespace: str
    host_address: str
    """The host's end of the veth (an address of the host: sandboxes must not reach it)."""
    internet: tuple[str, str]
    """Two addresses standing for hosts on the internet."""
    log: Path
    bridge: str

    def reached(self) -> list[str]:
        """Every address the server was reached at so far."""
        return self.log.read_text().split() if self.log.exists() else []

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.namespace, *command], capture_output=True, text=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def sandbox_bridge() -> str:
    client = docker.from_env()
    try:
        network = client.networks.get("corral-sandboxes")
        return str(network.attrs.get("Options", {}).get("com.docker.network.bridge.name") or f"br-{network.id[:12]}")
    finally:
        client.close()


@contextmanager
def outside_network() -> Iterator[Outside]:
    tag = os.urandom(3).hex()
    octet = int(tag[:2], 16) % 250 + 2
    prefix = f"198.18.{octet}"  # the benchmarking range: never a real host, and this /24 only lives here
    namespace, host_end, far_end = f"crlsec{tag}", f"crl{tag}h", f"crl{tag}n"
    table, priority = str(20000 + int(tag, 16) % 10000), str(20000 + int(tag, 16) % 10000)
    bridge = sandbox_bridge()
    log = Path(f"/tmp/corral-outside-{tag}.log")
    server = None
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", far_end)
        _ip("link", "set", far_end, "netns", namespace)
        _ip("addr", "add", f"{prefix}.1/24", "dev", host_end)
        _ip("link", "set", host_end, "up")
        inside = ["netns", "exec", namespace, "ip"]
        for address in (f"{prefix}.2/24", f"{prefix}.3/24", f"{METADATA}/32"):
            _ip(*inside, "addr", "add", address, "dev", far_end)
        _ip(*inside, "link", "set", far_end, "up")
        _ip(*inside, "link", "set", "lo", "up")
        _ip("route", "add", f"{METADATA}/32", "via", f"{prefix}.2", "dev", host_end, "table", table)
        _ip("rule", "add", "iif", bridge, "to", f"{METADATA}/32", "lookup", table, "priority", priority)
        server = subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-c", SERVER, str(log), str(PORT)],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield Outside(namespace=namespace, host_address=f"{prefix}.1", internet=(f"{prefix}.2", f"{prefix}.3"),
                      log=log, bridge=bridge)
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "rule", "del", "priority", priority], capture_output=True)
        subprocess.run(["ip", "route", "flush", "table", table], capture_output=True)
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        log.unlink(missing_ok=True)

