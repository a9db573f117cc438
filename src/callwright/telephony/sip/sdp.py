"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for one G.711 audio stream.

We speak PCMU (payload type 0) and PCMA (8) at 8 kHz, plus RFC 4733
``telephone-event`` for DTMF. ``parse_sdp`` is strict like the SIP parser (malformed
input raises ``SipParseError``); ``answer_offer`` builds our answer to a remote offer
and ``accept_answer`` reads the remote answer to our offer. Both return the
``AudioSession`` to run: codec, DTMF payload type, where to send, packet time and
direction. Session ids and versions are arguments: this module reads no clock.

Rules the negotiation follows (RFC 3264 §6):

1. The answer has one m= line per offered m= line, in order. We accept the first audio
   stream over ``RTP/AVP`` that shares a codec with us; every other stream is refused
   with port 0, and a stream the offerer refused (port 0) stays refused.
2. The codec is the first of *our* preference order that the offer lists; the answer
   carries that codec and, if offered, telephone-event with the offer's payload type.
3. Direction is the intersection of what the offer allows and what we want: an offer
   ``sendonly`` (the peer holds us) is answered ``recvonly``, ``inactive`` with
   ``inactive``. A connection address of 0.0.0.0 (old-style hold) means inactive.
4. ``ptime`` in an SDP is what its author wants to receive: we send with the peer's
   ptime (20 ms if absent) and ask for ours.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

from callwright.telephony.sip.errors import SipParseError

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
STATIC_PAYLOADS = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
_LINE = re.compile(r"([a-z])=(.*)")
_DIGITS = re.compile(r"[0-9]{1,20}")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_RTPMAP = re.compile(r"([0-9]{1,3}) ([A-Za-z0-9\-_.]+)/([0-9]{1,6})(?:/([0-9]{1,2}))?")
_FMTP = re.compile(r"([0-9]{1,3}) (.+)")
_HOSTNAME = re.compile(r"[A-Za-z0-9\-.]+")
_SESSION_TYPES = set("vosiuepcbtrzka")
_MEDIA_TYPES = set("icbka")


@dataclass(frozen=True, slots=True)
class Connection:
    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Origin:
    username: str
    session_id: str
    session_version: str
    connection: Connection

    def __str__(self) -> str:
        return f"{self.username} {self.session_id} {self.session_version} {self.connection}"


@dataclass(slots=True)
class Media:
    """One m= section; attributes are ``(name, value)`` in order (value None for flags)."""

    media: str
    port: int
    proto: str
    formats: list[str]
    connection: Connection | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)
    port_count: int | None = None

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value
        return None

    @property
    def direction(self) -> str:
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return "sendrecv"

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        if value is None:
            return None
        try:
            return _ptime(value)
        except SipParseError:
            return None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """Payload type -> (encoding name, clock rate), static types filled in."""
        result: dict[int, tuple[str, int]] = {}
        for fmt in self.formats:
            if _is_num(fmt, 3) and int(fmt) in STATIC_PAYLOADS:
                result[int(fmt)] = STATIC_PAYLOADS[int(fmt)]
        for key, value in self.attributes:
            if key == "rtpmap" and value is not None:
                m = _RTPMAP.fullmatch(value)
                if m is not None:
                    result[int(m.group(1))] = (m.group(2), int(m.group(3)))
        return result

    def fmtp(self, payload_type: int) -> str | None:
        for key, value in self.attributes:
            if key == "fmtp" and value is not None:
                m = _FMTP.fullmatch(value)
                if m is not None and int(m.group(1)) == payload_type:
                    return m.group(2)
        return None


@dataclass(slots=True)
class SessionDescription:
    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    times: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    def serialize(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        lines += [f"{t}={v}" for t, v in self.other_lines if t in "iuep"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"{t}={v}" for t, v in self.other_lines if t == "b"]
        lines += [f"t={t}" for t in self.times]
        lines += [f"{t}={v}" for t, v in self.other_lines if t in "rzk"]
        lines += [_attr(k, v) for k, v in self.attributes]
        for m in self.media:
            port = str(m.port) if m.port_count is None else f"{m.port}/{m.port_count}"
            lines.append(f"m={m.media} {port} {m.proto} {' '.join(m.formats)}")
            lines += [f"{t}={v}" for t, v in m.other_lines if t == "i"]
            if m.connection is not None:
                lines.append(f"c={m.connection}")
            lines += [f"{t}={v}" for t, v in m.other_lines if t in "bk"]
            lines += [_attr(k, v) for k, v in m.attributes]
        return ("\r\n".join(lines) + "\r\n").encode()

    def connection_for(self, media: Media) -> Connection | None:
        return media.connection or self.connection


def _is_num(text: str, digits: int) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes "²", which ``int`` refuses."""
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


def _attr(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


def _ptime(value: str) -> int:
    # ptime may carry a fraction ("20.0"); we use whole milliseconds.
    whole = value.split(".", 1)[0]
    if not _is_num(whole, 4) or not 1 <= int(whole) <= 1000:
        raise SipParseError("bad ptime")
    return int(whole)


def parse_sdp(data: bytes) -> SessionDescription:
    """Parse an SDP body; raise ``SipParseError`` if it is malformed."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("SDP is not UTF-8") from None
    lines = text.split("\n")
    # Trailing blank lines are common (multi01.dat has one) and harmless.
    while lines and lines[-1] in ("", "\r"):
        lines.pop()
    parsed: list[tuple[str, str]] = []
    for line in lines:
        line = line.removesuffix("\r")
        m = _LINE.fullmatch(line)
        if m is None or "\r" in line or "\x00" in line:
            raise SipParseError("bad SDP line")
        parsed.append((m.group(1), m.group(2)))
    if not parsed or parsed[0] != ("v", "0"):
        raise SipParseError("SDP must start with v=0")
    origin: Origin | None = None
    name: str | None = None
    session = _Partial()
    current: Media | None = None
    for kind, value in parsed[1:]:
        if kind == "m":
            current = _parse_m(value)
            session.media.append(current)
        elif current is not None:
            if kind not in _MEDIA_TYPES:
                raise SipParseError(f"SDP {kind}= line inside a media section")
            if kind == "c":
                if current.connection is not None:
                    raise SipParseError("repeated c= line")
                current.connection = _parse_c(value)
            elif kind == "a":
                current.attributes.append(_parse_a(value))
            else:
                current.other_lines.append((kind, value))
        elif kind not in _SESSION_TYPES or kind == "v":
            raise SipParseError(f"unexpected SDP {kind}= line")
        elif kind == "o":
            if origin is not None:
                raise SipParseError("repeated o= line")
            origin = _parse_o(value)
        elif kind == "s":
            if name is not None:
                raise SipParseError("repeated s= line")
            name = value
        elif kind == "c":
            if session.connection is not None:
                raise SipParseError("repeated c= line")
            session.connection = _parse_c(value)
        elif kind == "t":
            parts = value.split(" ")
            if len(parts) != 2 or not all(_DIGITS.fullmatch(p) for p in parts):
                raise SipParseError("bad t= line")
            session.times.append(value)
        elif kind == "a":
            session.attributes.append(_parse_a(value))
        else:
            session.other_lines.append((kind, value))
    if origin is None or name is None or not session.times:
        raise SipParseError("SDP without o=, s= or t=")
    for media in session.media:
        if media.port != 0 and (media.connection or session.connection) is None:
            raise SipParseError("SDP media without a connection address")
    return SessionDescription(
        origin,
        name,
        session.connection,
        session.times,
        session.attributes,
        session.media,
        session.other_lines,
    )


@dataclass(slots=True)
class _Partial:
    """Session-level fields while parsing, before o= and s= are known."""

    connection: Connection | None = None
    times: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)


def _parse_o(value: str) -> Origin:
    parts = value.split(" ")
    if len(parts) != 6 or not _DIGITS.fullmatch(parts[1]) or not _DIGITS.fullmatch(parts[2]):
        raise SipParseError("bad o= line")
    if not parts[0] or any(c.isspace() for c in parts[0]):
        raise SipParseError("bad o= username")
    return Origin(parts[0], parts[1], parts[2], _parse_c(" ".join(parts[3:])))


def _parse_c(value: str) -> Connection:
    parts = value.split(" ")
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SipParseError("bad c= line")
    address = parts[2]
    base = address.split("/", 1)[0]  # multicast ttl / count suffix
    try:
        ip = ipaddress.ip_address(base)
    except ValueError:
        if _HOSTNAME.fullmatch(base) is None or base.replace(".", "").isdigit():
            raise SipParseError("bad c= address") from None
    else:
        if (ip.version == 4) != (parts[1] == "IP4"):
            raise SipParseError("c= address does not match its type")
    return Connection(address, parts[1], parts[0])


def _parse_m(value: str) -> Media:
    parts = value.split(" ")
    if len(parts) < 4 or not _TOKEN.fullmatch(parts[0]) or not parts[2]:
        raise SipParseError("bad m= line")
    port_text, slash, count_text = parts[1].partition("/")
    if not _is_num(port_text, 5) or int(port_text) > 65535:
        raise SipParseError("bad m= port")
    count = None
    if slash:
        if not _is_num(count_text, 5):
            raise SipParseError("bad m= port count")
        count = int(count_text)
    formats = parts[3:]
    if any(not f for f in formats):
        raise SipParseError("bad m= format list")
    if parts[2].upper().startswith("RTP/") and any(
        not _is_num(f, 3) or int(f) > 127 for f in formats
    ):
        raise SipParseError("bad RTP payload type")
    return Media(parts[0], int(port_text), parts[2], formats, port_count=count)


def _parse_a(value: str) -> tuple[str, str | None]:
    name, colon, rest = value.partition(":")
    if not _TOKEN.fullmatch(name):
        raise SipParseError("bad a= line")
    # Attribute values are checked where they are used: an rtpmap we cannot read
    # (RFC 4475's "a=rtpmap:31 LPC" has no clock rate) maps nothing, and a bad ptime
    # counts as absent, rather than costing the whole call.
    return name, rest if colon else None


# ------------------------------------------------------------------------ offer/answer


@dataclass(frozen=True, slots=True)
class LocalAudio:
    """What we offer or accept: our RTP address and port, codec preference, ptime."""

    address: str
    port: int
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    telephone_event: int | None = 101
    ptime: int = 20
    username: str = "callwright"


@dataclass(frozen=True, slots=True)
class AudioSession:
    """The negotiated stream: what the media layer needs to run it."""

    codec: str
    payload_type: int
    clock_rate: int
    remote_address: str
    remote_port: int
    telephone_event: int | None
    ptime: int
    direction: str  # ours: "sendrecv", "sendonly" (we send only), "recvonly", "inactive"

    @property
    def sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


_REVERSE = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


def _intersect(ours: str, allowed: str) -> str:
    send = ours in ("sendrecv", "sendonly") and allowed in ("sendrecv", "sendonly")
    recv = ours in ("sendrecv", "recvonly") and allowed in ("sendrecv", "recvonly")
    return {
        (True, True): "sendrecv",
        (True, False): "sendonly",
        (False, True): "recvonly",
        (False, False): "inactive",
    }[(send, recv)]


# A connection address of all zeros is RFC 2543's way to put a call on hold.
_HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})  # noqa: S104


def _allowed(media: Media, remote: Connection) -> str:
    """What the remote side lets us do on ``media`` (the mirror of its direction)."""
    if remote.address.split("/", 1)[0] in _HOLD_ADDRESSES:
        return "inactive"
    return _REVERSE[media.direction]


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def make_offer(
    local: LocalAudio, session_id: int, version: int, direction: str = "sendrecv"
) -> SessionDescription:
    """Our offer: one audio stream with our codecs (and telephone-event)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    by_name = {name: pt for pt, (name, _) in STATIC_PAYLOADS.items()}
    formats = [str(by_name[c]) for c in local.codecs]
    attributes: list[tuple[str, str | None]] = [
        ("rtpmap", f"{by_name[c]} {c}/8000") for c in local.codecs
    ]
    if local.telephone_event is not None:
        formats.append(str(local.telephone_event))
        attributes += [
            ("rtpmap", f"{local.telephone_event} telephone-event/8000"),
            ("fmtp", f"{local.telephone_event} 0-16"),
        ]
    attributes += [("ptime", str(local.ptime)), (direction, None)]
    conn = Connection(local.address, _addrtype(local.address))
    return SessionDescription(
        Origin(local.username, str(session_id), str(version), conn),
        connection=conn,
        media=[Media("audio", local.port, "RTP/AVP", formats, attributes=attributes)],
    )


def _choose(media: Media, local: LocalAudio) -> tuple[str, int, int] | None:
    offered = media.rtpmap()
    for wanted in local.codecs:
        for fmt in media.formats:
            name, rate = offered.get(int(fmt) if _is_num(fmt, 3) else -1, ("", 0))
            pt = int(fmt) if name else -1
            if name.upper() == wanted and rate == 8000:
                return wanted, pt, rate
    return None


def _telephone_event(media: Media) -> int | None:
    for pt, (name, rate) in media.rtpmap().items():
        if name.lower() == "telephone-event" and rate == 8000 and str(pt) in media.formats:
            return pt
    return None


def _usable(media: Media) -> bool:
    return media.media == "audio" and media.proto.upper() == "RTP/AVP" and media.port != 0


def answer_offer(
    offer: SessionDescription,
    local: LocalAudio,
    session_id: int,
    version: int,
    direction: str = "sendrecv",
) -> tuple[SessionDescription, AudioSession] | None:
    """Our answer to ``offer`` and the stream it sets up; ``None`` if nothing is
    acceptable (answer the INVITE with 488 Not Acceptable Here)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    conn = Connection(local.address, _addrtype(local.address))
    answer = SessionDescription(
        Origin(local.username, str(session_id), str(version), conn), connection=conn
    )
    session: AudioSession | None = None
    for media in offer.media:
        choice = _choose(media, local) if session is None and _usable(media) else None
        remote = offer.connection_for(media)
        if choice is None or remote is None:
            answer.media.append(Media(media.media, 0, media.proto, list(media.formats)))
            continue
        codec, pt, rate = choice
        event = _telephone_event(media) if local.telephone_event is not None else None
        ours = _intersect(direction, _allowed(media, remote))
        formats = [str(pt)]
        attributes: list[tuple[str, str | None]] = [("rtpmap", f"{pt} {codec}/{rate}")]
        if event is not None:
            formats.append(str(event))
            attributes += [
                ("rtpmap", f"{event} telephone-event/8000"),
                ("fmtp", f"{event} {media.fmtp(event) or '0-15'}"),
            ]
        attributes += [("ptime", str(local.ptime)), (ours, None)]
        answer.media.append(Media("audio", local.port, "RTP/AVP", formats, attributes=attributes))
        session = AudioSession(
            codec,
            pt,
            rate,
            remote.address.split("/", 1)[0],
            media.port,
            event,
            media.ptime or 20,
            ours,
        )
    if session is None:
        return None
    return answer, session


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> AudioSession | None:
    """The stream set up by the remote ``answer`` to our ``offer``; ``None`` if the
    answer refused our audio stream or picked nothing we offered."""
    for index, ours in enumerate(offer.media):
        if ours.media != "audio" or ours.port == 0:
            continue
        if index >= len(answer.media):
            return None
        media = answer.media[index]
        remote = answer.connection_for(media)
        if media.port == 0 or remote is None or media.media != "audio":
            return None
        our_map = ours.rtpmap()
        their_map = media.rtpmap()
        for fmt in media.formats:
            pt = int(fmt) if _is_num(fmt, 3) else -1
            name, rate = their_map.get(pt, our_map.get(pt, ("", 0)))
            if pt in our_map and name.upper() in ("PCMU", "PCMA") and rate == 8000:
                event = _telephone_event(media)
                return AudioSession(
                    name.upper(),
                    pt,
                    rate,
                    remote.address.split("/", 1)[0],
                    media.port,
                    event if event is not None and str(event) in ours.formats else None,
                    media.ptime or 20,
                    _intersect(ours.direction, _allowed(media, remote)),
                )
        return None
    return None


def with_direction(sdp: SessionDescription, direction: str, version: int) -> SessionDescription:
    """The same session with every live stream set to ``direction`` (hold / unhold) and
    the origin version bumped, as a re-INVITE offer must (RFC 3264 §8)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    media = []
    for m in sdp.media:
        attributes = [(k, v) for k, v in m.attributes if k not in DIRECTIONS]
        if m.port != 0:
            attributes.append((direction, None))
        media.append(replace(m, attributes=attributes))
    origin = replace(sdp.origin, session_version=str(version))
    return replace(sdp, origin=origin, media=media)
