"""Outbound requests to user-given URLs (webhooks now, webhook nodes and tools later),
guarded against server-side request forgery.

Rules:
1. Only ``http`` and ``https``; a URL without a host is refused.
2. Every address a host stands for is checked before any connection: loopback, private,
   link-local, multicast, reserved, unspecified, cloud-metadata and other non-global
   addresses are refused. IPv6 forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``,
   compatible ``::a.b.c.d``, NAT64, 6to4, Teredo) are judged by that IPv4 address too.
3. Hosts written as numbers the way ``inet_aton`` reads them (``2130706433``,
   ``0x7f000001``, ``0177.0.0.1``, ``127.1``) are addresses, not names.
4. A name is resolved once per connection and the connection goes to an address that
   was checked: no second lookup for an attacker's DNS to answer differently (rebinding).
   TLS still verifies the original name (SNI) and the ``Host`` header is unchanged.
5. The check runs per connection, so every redirect hop is checked when a client
   follows redirects.
6. The operator's allow-list (``CALLWRIGHT_OUTBOUND_ALLOW``: CIDRs and host names) lets
   named receivers through, e.g. on-prem systems and tests on 127.0.0.1.

Theory: the check lives in an httpcore network backend, below the connection pool, so
the address checked is the address connected to, whatever httpx does above it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

ALLOWED_SCHEMES = frozenset({"http", "https"})

# Metadata services that clouds put on otherwise ordinary-looking addresses.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "168.63.129.16",  # Azure wire server (a public address)
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS over IPv6
    )
)
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_NUMBER_PART = re.compile(r"^(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$", re.IGNORECASE)


class Refused(httpx.TransportError):
    """The guard refused a destination; ``reason`` says why in words fit for a user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """What the operator allows besides public addresses."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> OutboundPolicy:
        """``10.1.0.0/16``, ``127.0.0.1``, ``hooks.internal``; raises ValueError on junk."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", entry):
                raise ValueError(f"outbound allow-list: {raw!r} is neither a CIDR nor a host name")
            hosts.add(entry.rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            a in net for a in candidates for net in self.networks if a.version == net.version
        )


def literal_address(host: str) -> IPAddress | None:
    """The address a URL host denotes by itself, in any form a resolver would accept."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    parts = bare.split(".")
    if ":" in bare or not 1 <= len(parts) <= 4 or not all(_NUMBER_PART.match(p) for p in parts):
        return None
    *head, last = [_inet_aton_number(p) for p in parts]
    # The last part fills every byte the earlier parts left: "127.1" is 127.0.0.1.
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number << 8 | v
    number = number << (8 * (4 - len(head))) | last
    return ipaddress.IPv4Address(number)


def _plain_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _inet_aton_number(part: str) -> int:
    if part.lower().startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found: list[ipaddress.IPv4Address] = []
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    packed = address.packed
    if packed[:12] == bytes(12) and int(address) > 1:  # IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(packed[12:]))
    if any(address in net for net in NAT64_NETWORKS):
        found.append(ipaddress.IPv4Address(packed[12:]))
    return found


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be reached from the server, or None if it is public."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # the IPv4 address itself, on a dual-stack socket
            why = refusal_reason(address.ipv4_mapped)
            return None if why is None else f"a form of {address.ipv4_mapped}, {why}"
        for inner in _embedded_ipv4(address):
            why = refusal_reason(inner)
            if why is not None:
                return f"an address that carries {inner}, {why}"
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    return next((why for hit, why in checks if hit), None)


def check_address(address: IPAddress, policy: OutboundPolicy, host: str) -> None:
    if policy.allows_address(address):
        return
    why = refusal_reason(address)
    if why is None:
        return
    if literal_address(host) is not None:
        written_as_is = _plain_address(host) == address
        raise Refused(f"{host if written_as_is else f'{host} ({address})'} is {why}")
    raise Refused(f"{host} resolves to {address}, {why}")


def check_url(url: str, policy: OutboundPolicy) -> None:
    """What can be judged without a lookup: scheme, host, and hosts that are addresses."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise Refused(f"invalid URL ({exc})") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise Refused(f"scheme {parts.scheme or '(none)'!r} is not allowed (only http and https)")
    if not host:
        raise Refused("the URL has no host")
    address = literal_address(host)
    if address is not None:
        check_address(address, policy, host)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_checked(
    host: str, port: int, policy: OutboundPolicy, resolver: Resolver = system_resolver
) -> list[str]:
    """The addresses to connect to for ``host``, every one checked; raises Refused."""
    literal = literal_address(host)
    if literal is not None:
        check_address(literal, policy, host)
        return [str(literal)]
    try:
        found = await resolver(host, port)
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
    if not policy.allows_host(host):
        for address in addresses:
            check_address(address, policy, host)
    return [str(a) for a in addresses]


class GuardedBackend(AsyncNetworkBackend):
    """httpcore's connect step with the check in front and the checked address pinned."""

    def __init__(self, policy: OutboundPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve_checked(host, port, self.policy, self.resolver)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        raise Refused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolver: Resolver = system_resolver,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(limits=limits, trust_env=False)
        self.policy = policy
        # httpx has no public hook for the connect step; httpcore's pool takes a network
        # backend, so this transport replaces the pool httpx built with one that has ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, resolver),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Runs for every hop of a redirect chain, so each new destination is judged.
        scheme = request.url.scheme
        if scheme not in ALLOWED_SCHEMES:
            raise Refused(f"scheme {scheme!r} is not allowed (only http and https)")
        if not request.url.host:
            raise Refused("the URL has no host")
        return await super().handle_async_request(request)


def guarded_client(
    policy: OutboundPolicy,
    *,
    timeout: float,
    follow_redirects: bool = False,
    max_redirects: int = 5,
    resolver: Resolver = system_resolver,
    limits: httpx.Limits = DEFAULT_LIMITS,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver=resolver, limits=limits),
        timeout=httpx.Timeout(timeout),
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        trust_env=False,
    )


async def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of a streamed body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False
