"""The asyncio edge of the SIP user agent: UDP and TCP sockets, nothing else.

``SipSockets`` listens where ``CALLWRIGHT_SIP_LISTEN`` says (``udp:0.0.0.0:5060,
tcp:0.0.0.0:5060``) and hands every message to one callback as bytes with the peer's
address and the transport it came on. Over UDP a datagram is a message; over TCP
``sip.StreamFramer`` cuts the stream by Content-Length, and a stream that cannot be
framed is closed (it cannot be resynchronised) and counted. ``send`` writes to the
peer over the transport the message belongs to: UDP from the listening socket (so
responses come back to it), TCP over the connection the peer opened or one we open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from callwright.telephony.sip.errors import SipParseError
from callwright.telephony.sip.message import StreamFramer

Address = tuple[str, int]
TransportName = Literal["udp", "tcp"]
MessageHandler = Callable[[bytes, Address, TransportName], None]


@dataclass(frozen=True, slots=True)
class ListenAddress:
    transport: TransportName
    host: str
    port: int


def parse_listen(text: str) -> list[ListenAddress]:
    """``"udp:0.0.0.0:5060,tcp:0.0.0.0:5060"`` -> listen addresses (``ValueError`` if bad)."""
    found: list[ListenAddress] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        transport, _, rest = item.partition(":")
        host, _, port = rest.rpartition(":")
        if transport not in ("udp", "tcp") or not host or not port.isdigit():
            raise ValueError(f"bad SIP listen address {item!r}: want udp|tcp:HOST:PORT")
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"bad SIP listen port in {item!r}")
        found.append(ListenAddress(transport, host.strip("[]"), int(port)))  # type: ignore[arg-type]
    if not found:
        raise ValueError("no SIP listen address")
    return found


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, handler: MessageHandler) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        # RFC 5626 keep-alives (CRLF) carry nothing to parse.
        if data.strip(b"\r\n"):
            self.handler(data, (str(addr[0]), int(addr[1])), "udp")

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable: the transaction layer's timers handle silence


class _Tcp(asyncio.Protocol):
    def __init__(self, sockets: SipSockets) -> None:
        self.sockets = sockets
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Address = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = (str(host), int(port))
        self.sockets.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except SipParseError:
            self.sockets.framing_errors += 1
            if self.transport is not None:
                self.transport.close()
            return
        for message in messages:
            self.sockets.handler(message, self.peer, "tcp")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sockets.connections.get(self.peer) is self:
            del self.sockets.connections[self.peer]

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class SipSockets:
    """Every socket of one user agent, UDP and TCP."""

    def __init__(self, handler: MessageHandler) -> None:
        self.handler = handler
        self.udp: asyncio.DatagramTransport | None = None
        self.udp_address: Address | None = None
        self.tcp_server: asyncio.Server | None = None
        self.tcp_address: Address | None = None
        self.connections: dict[Address, _Tcp] = {}
        self.framing_errors = 0

    async def start(self, listen: list[ListenAddress]) -> None:
        loop = asyncio.get_running_loop()
        for spec in listen:
            if spec.transport == "udp":
                if self.udp is not None:
                    raise ValueError("one UDP listen address per user agent")
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(self.handler), local_addr=(spec.host, spec.port)
                )
                self.udp = transport
                host, port = transport.get_extra_info("sockname")[:2]
                self.udp_address = (str(host), int(port))
            else:
                if self.tcp_server is not None:
                    raise ValueError("one TCP listen address per user agent")
                self.tcp_server = await loop.create_server(lambda: _Tcp(self), spec.host, spec.port)
                host, port = self.tcp_server.sockets[0].getsockname()[:2]
                self.tcp_address = (str(host), int(port))

    def send(self, data: bytes, peer: Address, transport: TransportName) -> None:
        if transport == "tcp":
            connection = self.connections.get(peer)
            if connection is not None:
                connection.write(data)
            return
        if self.udp is not None:
            self.udp.sendto(data, peer)

    async def connect(self, peer: Address) -> None:
        """Open a TCP connection to ``peer`` (if there is none) for our requests."""
        if peer in self.connections:
            return
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: _Tcp(self), peer[0], peer[1])
        # Keyed by the address we dialled, which is how requests name the peer.
        self.connections.pop(protocol.peer, None)
        protocol.peer = peer
        self.connections[peer] = protocol

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
            self.udp = None
        for connection in list(self.connections.values()):
            if connection.transport is not None:
                connection.transport.close()
        self.connections.clear()
        if self.tcp_server is not None:
            self.tcp_server.close()
            with contextlib.suppress(Exception):
                await self.tcp_server.wait_closed()
            self.tcp_server = None
