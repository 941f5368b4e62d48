"""Where the platform may send requests on a user's behalf (webhook endpoints): never to itself.

A URL given by a user is checked when it is accepted and again, address by address, every time it is
used (DNS answers change). Loopback, private, shared, link-local, reserved, multicast, unspecified and
cloud-metadata addresses are refused, in IPv4 and IPv6, including IPv4 embedded in IPv6 (mapped,
6to4, Teredo, NAT64). An operator may allow the private ones (`allow_private`: a laptop, the tests);
metadata, multicast and unspecified addresses stay refused even then.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
    "169.254.170.2",  # AWS ECS task metadata
    "169.254.169.123",  # AWS time sync
    "100.100.100.200",  # Alibaba Cloud
    "fd00:ec2::254",  # AWS over IPv6
    "fd00:ec2::123",
))

NAT64 = ipaddress.ip_network("64:ff9b::/96")
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
BROADCAST = ipaddress.ip_address("255.255.255.255")

MAX_URL_LENGTH = 2048


class DestinationRefused(Exception):
    """The URL or one of the addresses it resolves to may not be sent to."""


def address_refusal(address: str | IPAddress, *, allow_private: bool = False) -> str | None:
    """Why requests to `address` are refused, or None when they are allowed."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%")[0])
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None) or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
        if embedded is not None:
            reason = address_refusal(embedded, allow_private=allow_private)
            return f"{reason} (embedded in {ip})" if reason else None
    elif ip in THIS_NETWORK or ip == BROADCAST:
        return f"{ip} is not a host address"
    if ip in METADATA:
        return f"{ip} is a cloud metadata address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if allow_private:
        return None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_private:
        return f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def split_url(url: str) -> tuple[str, str, int]:
    """`(scheme, host, port)` of an http(s) URL; `ValueError` with a readable reason otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("the URL contains spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError("the URL has an invalid port") from None
    if not host:
        raise ValueError("the URL has no host")
    if parts.fragment:
        raise ValueError("the URL must not have a fragment")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_addresses(host: str, addresses: list[str], *, allow_private: bool) -> None:
    """Refuse the destination when any address it resolves to is refused (a mixed answer is how DNS
    rebinding starts)."""
    if not addresses:
        raise DestinationRefused(f"{host} resolves to no address")
    for address in addresses:
        reason = address_refusal(address, allow_private=allow_private)
        if reason:
            raise DestinationRefused(f"{host} is refused: {reason}")


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6)."""
    literal = literal_address(host)
    if literal is not None:
        return [str(literal)]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise DestinationRefused(f"{host} cannot be resolved: {error.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Accept `url` as a destination now: http(s), and every address it resolves to allowed."""
    try:
        _, host, port = split_url(url)
    except ValueError as error:
        raise DestinationRefused(str(error)) from None
    check_addresses(host, await resolve(host, port), allow_private=allow_private)


__all__ = ["DestinationRefused", "address_refusal", "check_addresses", "check_destination", "literal_address",
           "resolve", "split_url"]
