"""The SSRF guard's address rules, without any network."""

from __future__ import annotations

import ipaddress

import pytest

from farebox.net.ssrf import FetchPolicy, FetchRefused, check_addresses, is_public


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.20.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
    ],
)
def test_private_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_allow_lists() -> None:
    loopback = [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(FetchRefused):
        check_addresses("localhost", loopback, FetchPolicy())
    check_addresses("localhost", loopback, FetchPolicy(allow_hosts=frozenset({"localhost"})))
    nets = (ipaddress.ip_network("127.0.0.0/8"),)
    check_addresses("anything", loopback, FetchPolicy(allow_networks=nets))
    policy = FetchPolicy.from_env(
        {"FAREBOX_FETCH_ALLOW_HOSTS": "A.internal, b", "FAREBOX_FETCH_ALLOW_NETWORKS": "10.0.0.0/8"}
    )
    assert policy.allow_hosts == {"a.internal", "b"}
    check_addresses("x", [ipaddress.ip_address("10.9.9.9")], policy)
