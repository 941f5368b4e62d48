"""Where the platform may send requests for a user: the address rule and URL checks. No I/O but
`localhost` resolution (the machine's resolver)."""

from __future__ import annotations

import pytest

from corral_web.outbound import DestinationRefused, address_refusal, check_destination, split_url

REFUSED_UNLESS_ALLOWED = [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "169.254.1.1",
    "100.64.0.1", "198.18.0.1", "::1", "fe80::1", "fc00::1", "fd12:3456::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1",
]
ALWAYS_REFUSED = [
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "::ffff:169.254.169.254",
    "0.0.0.0", "0.1.2.3", "::", "255.255.255.255", "224.0.0.1", "239.1.2.3", "ff02::1",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED_UNLESS_ALLOWED)
def test_private_addresses_are_refused_unless_the_operator_allows_them(address: str) -> None:
    assert address_refusal(address) is not None
    assert address_refusal(address, allow_private=True) is None


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
def test_metadata_multicast_and_unspecified_addresses_are_always_refused(address: str) -> None:
    assert address_refusal(address) is not None
    assert address_refusal(address, allow_private=True) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address) is None


def test_the_reason_names_the_kind_of_address() -> None:
    assert "loopback" in str(address_refusal("::ffff:127.0.0.1"))
    assert "metadata" in str(address_refusal("169.254.169.254"))
    assert "link-local" in str(address_refusal("fe80::1"))


@pytest.mark.parametrize("url", ["ftp://example.com/", "example.com/hook", "http://", "http://exa mple.com/",
                                 "http://example.com:99999/", "https://example.com/#frag", "http://x/" + "a" * 2100])
def test_urls_that_are_not_plain_http_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        split_url(url)


def test_urls_split_into_scheme_host_and_port() -> None:
    assert split_url("https://Example.com/hook?x=1") == ("https", "example.com", 443)
    assert split_url("http://[::1]:8080/") == ("http", "::1", 8080)


async def test_a_name_is_refused_for_what_it_resolves_to() -> None:
    with pytest.raises(DestinationRefused, match="loopback"):
        await check_destination("http://localhost:8080/hook", allow_private=False)
    await check_destination("http://localhost:8080/hook", allow_private=True)
    with pytest.raises(DestinationRefused, match="cannot be resolved"):
        await check_destination("http://no-such-host.invalid/", allow_private=True)
