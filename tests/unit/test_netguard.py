"""The outbound guard on hostile targets. No sockets: names go through a fake resolver
and every target here is refused before a connection would be made."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright import netguard
from callwright.netguard import OutboundPolicy, Refused

FAKE_DNS = {
    "localhost": ["127.0.0.1"],
    "metadata.google.internal": ["169.254.169.254"],
    "intranet.example": ["10.20.30.40"],
    "mixed.example": ["93.184.216.34", "192.168.0.7"],
    "six.example": ["::1"],
    "public.example": ["93.184.216.34"],
}


async def fake_resolver(host: str, port: int) -> list[str]:
    try:
        return FAKE_DNS[host.rstrip(".")]
    except KeyError:
        raise OSError(f"no such host {host}") from None


async def attempt(url: str, policy: OutboundPolicy = OutboundPolicy()) -> str:
    """What a caller does: judge the URL, then request it through the guarded client."""
    netguard.check_url(url, policy)
    async with netguard.guarded_client(policy, timeout=1, resolver=fake_resolver) as client:
        await client.get(url)
    raise AssertionError(f"{url} was not refused")


HOSTILE = [
    ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://127.0.0.1:8080/admin", "loopback"),
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://10.0.0.1/", "10.0.0.1 is a private address"),
    ("http://10.255.255.254:9200/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
    ("http://[fd00:ec2::254]/", "a cloud metadata address"),
    ("http://168.63.129.16/", "a cloud metadata address"),
    ("http://100.100.100.200/", "a cloud metadata address"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is a form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:169.254.169.254]/", "a form of 169.254.169.254, a cloud metadata address"),
    ("http://[::127.0.0.1]/", "carries 127.0.0.1, a loopback address"),
    ("http://[2002:7f00:1::]/", "carries 127.0.0.1"),
    ("http://[64:ff9b::a00:1]/", "carries 10.0.0.1"),
    ("http://2130706433/", "2130706433 (127.0.0.1) is a loopback address"),
    ("http://0x7f000001/", "0x7f000001 (127.0.0.1) is a loopback address"),
    ("http://0177.0.0.1/", "0177.0.0.1 (127.0.0.1) is a loopback address"),
    ("http://127.1/", "127.1 (127.0.0.1) is a loopback address"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "a cloud metadata address"),
    ("http://0.0.0.0:8000/", "an unspecified address"),
    ("http://0/", "0 (0.0.0.0) is an unspecified address"),
    ("http://[::]/", "an unspecified address"),
    ("http://[fe80::1%25eth0]/", "a link-local address"),
    ("http://169.254.1.1/", "a link-local address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://[ff02::1]/", "a multicast address"),
    ("http://240.0.0.1/", "a reserved address"),
    ("http://100.64.0.1/", "not a public address"),
    ("http://[fc00::1]/", "a private address"),
    ("http://localhost:8000/", "localhost resolves to 127.0.0.1, a loopback address"),
    ("http://LOCALHOST./", "resolves to 127.0.0.1, a loopback address"),
    ("http://metadata.google.internal/", "resolves to 169.254.169.254, a cloud metadata"),
    ("http://intranet.example/hook", "resolves to 10.20.30.40, a private address"),
    ("http://mixed.example/", "resolves to 192.168.0.7, a private address"),
    ("http://six.example/", "resolves to ::1, a loopback address"),
    ("ftp://public.example/", "scheme 'ftp' is not allowed"),
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("gopher://127.0.0.1:6379/_INFO", "scheme 'gopher' is not allowed"),
    ("http:///no-host", "the URL has no host"),
]


@pytest.mark.parametrize(("url", "reason"), HOSTILE, ids=[u for u, _ in HOSTILE])
async def test_hostile_targets_are_refused_with_a_clear_reason(url: str, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        await attempt(url)
    assert reason in refused.value.reason


def test_the_table_is_big_enough() -> None:
    assert len(HOSTILE) >= 25


async def test_the_transport_refuses_what_check_url_was_not_asked_about() -> None:
    # A redirect hop or a caller that skipped check_url still meets the backend's check.
    for url in ("http://localhost/", "http://[::ffff:10.0.0.1]/", "http://2130706433/"):
        async with netguard.guarded_client(
            OutboundPolicy(), timeout=1, resolver=fake_resolver
        ) as client:
            with pytest.raises(Refused):
                await client.get(url)


async def test_unresolvable_names_fail_as_connection_errors_not_refusals() -> None:
    async with netguard.guarded_client(
        OutboundPolicy(), timeout=1, resolver=fake_resolver
    ) as client:
        with pytest.raises(httpx.ConnectError) as failed:
            await client.get("http://nowhere.example/")
    assert not isinstance(failed.value, Refused)
    assert "cannot resolve nowhere.example" in str(failed.value)


async def test_allow_list_lets_named_networks_and_hosts_through() -> None:
    policy = OutboundPolicy.parse(["10.20.0.0/16", " 127.0.0.1 ", "Hooks.Internal", ""])
    assert policy.hosts == frozenset({"hooks.internal"})
    assert await netguard.resolve_checked("intranet.example", 80, policy, fake_resolver) == [
        "10.20.30.40"
    ]
    assert await netguard.resolve_checked("127.0.0.1", 80, policy, fake_resolver) == ["127.0.0.1"]
    # A mapped form of an allowed IPv4 address is the same destination.
    netguard.check_url("http://[::ffff:127.0.0.1]/", policy)
    with pytest.raises(Refused):
        netguard.check_url("http://127.0.0.2/", policy)
    with pytest.raises(Refused):
        await netguard.resolve_checked("localhost", 80, OutboundPolicy.parse(["10.0.0.0/8"]))


async def test_an_allowed_host_name_skips_the_address_check() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["10.9.9.9"]

    policy = OutboundPolicy.parse(["hooks.internal"])
    assert await netguard.resolve_checked("hooks.internal", 443, policy, resolver) == ["10.9.9.9"]
    with pytest.raises(Refused):
        await netguard.resolve_checked("other.internal", 443, policy, resolver)


@pytest.mark.parametrize("junk", ["10.0.0.0/33", "http://x", "a b", "-bad", "x/y"])
def test_allow_list_junk_is_an_error(junk: str) -> None:
    with pytest.raises(ValueError, match="neither a CIDR nor a host name"):
        OutboundPolicy.parse([junk])


def test_public_addresses_pass() -> None:
    for address in ("93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"):
        assert netguard.refusal_reason(ipaddress.ip_address(address)) is None
    netguard.check_url("https://93.184.216.34:8443/hook?x=1", OutboundPolicy())
    netguard.check_url("https://hooks.example.com/x", OutboundPolicy())


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.2", "10.1.0.2"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("1.2.3.4.5", None),
        ("256.0.0.1", None),
        ("08.0.0.1", None),
        ("1.16777216", None),
        ("example.com", None),
        ("0x1g", None),
    ],
)
def test_literal_addresses_read_like_inet_aton(host: str, expected: str | None) -> None:
    found = netguard.literal_address(host)
    assert (None if found is None else str(found)) == expected


PRIVATE_V4 = st.sampled_from(
    [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "127.0.0.0/8", "172.16.0.0/12")]
    + [ipaddress.ip_network(n) for n in ("192.168.0.0/16", "169.254.0.0/16")]
)


@settings(max_examples=300, deadline=None)
@given(network=PRIVATE_V4, offset=st.integers(min_value=0), form=st.integers(0, 4))
def test_every_spelling_of_a_private_address_is_refused(
    network: ipaddress.IPv4Network, offset: int, form: int
) -> None:
    address = network.network_address + offset % network.num_addresses
    value = int(address)
    octets = str(address).split(".")
    spelled = [
        str(value),
        hex(value),
        ".".join(f"0{int(o):o}" for o in octets),
        ".".join(hex(int(o)) for o in octets),
        f"{octets[0]}.{value & 0xFFFFFF}",
    ][form]
    assert netguard.literal_address(spelled) == address
    with pytest.raises(Refused):
        netguard.check_url(f"http://{spelled}/", OutboundPolicy())
    with pytest.raises(Refused):
        netguard.check_url(f"http://[::ffff:{address}]/", OutboundPolicy())
