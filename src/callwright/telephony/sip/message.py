"""SIP requests and responses: strict parsing, serialization and response building.

``parse(data)`` takes one message (a UDP datagram, or a frame cut by ``StreamFramer``)
and returns a ``Request`` or ``Response``, or raises ``SipParseError``: nothing else
escapes, whatever the bytes. It checks the start line, the framing and every field the
transaction and dialog layers read (Via, From, To, Call-ID, CSeq, Contact, Route,
Record-Route, Max-Forwards, Expires, Content-Length, Content-Type). Other fields are
kept as text. Missing or repeated mandatory fields are not a parse error (RFC 4475
treats them as semantic): the accessors raise ``SipParseError`` and
``validate.check_request`` turns them into a 400. Text that repeats from message to
message (most header lines, start lines, a peer's Via sent-by and untagged From/To) is
parsed once and remembered in bounded memos: the results are the same, only cheaper.

Framing (RFC 3261 §18.3): over UDP, Content-Length wins and octets after the body are
ignored; a missing Content-Length means the body is the rest of the datagram. Over a
stream, Content-Length is mandatory and ``StreamFramer`` cuts messages by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from callwright.telephony.sip._syntax import TOKEN
from callwright.telephony.sip.errors import SipParseError
from callwright.telephony.sip.headers import (
    CHECKED_PARSERS,
    NAME_TABLE,
    Contact,
    CSeq,
    Headers,
    NameAddr,
    Via,
    parse_call_id,
    parse_contact_list,
    parse_cseq,
    parse_max_forwards,
    parse_media_type,
    parse_route_list,
    parse_single_name_addr,
    parse_via_list,
)
from callwright.telephony.sip.uri import SipUri, Uri, parse_uri

SIP_VERSION = "SIP/2.0"

REASON_PHRASES = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

T = TypeVar("T")
_TOKEN_RE = re.compile(TOKEN)
_VERSION = re.compile(r"[Ss][Ii][Pp]/[0-9]+\.[0-9]+")
_STATUS_LINE = re.compile(
    r"([Ss][Ii][Pp]/[0-9]+\.[0-9]+) ([1-6][0-9][0-9]) ([^\x00-\x08\x0a-\x1f\x7f]*)"
)
# Control characters are only legal inside a quoted-pair (intmeth.dat quotes a NUL);
# CR and LF only as the CRLF pairs that end lines.
_BAD_CTL = re.compile(r"(?<!\\)[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")
_FOLD = re.compile(r"[ \t]*\r\n[ \t]+")
# Memos of what repeats from message to message, keyed by text. Parsing is a pure
# function of that text and parsed values are immutable, so sharing them is safe; a
# memo starts over when full. Header lines are remembered whole (name and parsed value
# at once) unless they name this one call or transaction: Via, Call-ID, and a From or
# To with a tag. The From and To parser has a memo of its own for the part before the
# tag (headers.parse_single_name_addr).
_LINES: dict[str, tuple[tuple[str, str, str], tuple[Any, ...] | None]] = {}
_LINES_SIZE = 4096
_PER_CALL = frozenset({"via", "call-id"})
_Parser = Callable[[str], tuple[Any, ...]]
_FIELD_NAMES: dict[str, tuple[str, str, _Parser | None]] = {}
_TAGGED = frozenset({"from", "to"})
_REQUEST_LINES: dict[str, tuple[str, Uri]] = {}
_STATUS_LINES: dict[str, tuple[int, str]] = {}
_START_LINES_SIZE = 1024
_MEMO_TEXT_MAX = 256  # longer texts are parsed each time rather than held


class _Fields:
    """Typed views of the fields every message has; shared by Request and Response."""

    __slots__ = ()
    headers: Headers
    body: bytes

    @property
    def vias(self) -> tuple[Via, ...]:
        return self.headers.parsed_key("via", parse_via_list)

    @property
    def top_via(self) -> Via:
        return _first(self.headers, "via", parse_via_list, "Via")

    @property
    def from_(self) -> NameAddr:
        return _single(self.headers, "from", parse_single_name_addr, "From")

    @property
    def to(self) -> NameAddr:
        return _single(self.headers, "to", parse_single_name_addr, "To")

    @property
    def call_id(self) -> str:
        return _single(self.headers, "call-id", parse_call_id, "Call-ID")

    @property
    def cseq(self) -> CSeq:
        return _single(self.headers, "cseq", parse_cseq, "CSeq")

    @property
    def contacts(self) -> tuple[Contact, ...]:
        return self.headers.parsed_key("contact", parse_contact_list)

    @property
    def record_route(self) -> tuple[NameAddr, ...]:
        return self.headers.parsed_key("record-route", parse_route_list)

    @property
    def route(self) -> tuple[NameAddr, ...]:
        return self.headers.parsed_key("route", parse_route_list)

    @property
    def max_forwards(self) -> int | None:
        values = self.headers.parsed_key("max-forwards", parse_max_forwards)
        return values[0] if values else None

    @property
    def content_type(self) -> str | None:
        """``type/subtype``, lower-cased, without parameters."""
        values = self.headers.parsed_key("content-type", parse_media_type)
        return values[0] if values else None


# The accessors the transaction layer calls for every message: the parsed value is
# almost always in the cache already (parse() put it there).
def _first(headers: Headers, key: str, parser: Callable[[str], tuple[T, ...]], name: str) -> T:
    values = headers._cache.get(key)
    if values is None:
        values = headers.parsed_key(key, parser)
    if not values:
        raise SipParseError(f"missing {name}")
    return cast(T, values[0])


def _single(headers: Headers, key: str, parser: Callable[[str], tuple[T, ...]], name: str) -> T:
    values = headers._cache.get(key)
    if values is None:
        values = headers.parsed_key(key, parser)
    if len(values) != 1:
        raise SipParseError(f"{'missing' if not values else 'repeated'} {name}")
    return cast(T, values[0])


@dataclass(slots=True)
class Request(_Fields):
    method: str
    uri: Uri
    headers: Headers
    body: bytes = b""

    def serialize(self) -> bytes:
        return _serialize(f"{self.method} {self.uri} {SIP_VERSION}", self.headers, self.body)


@dataclass(slots=True)
class Response(_Fields):
    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    def serialize(self) -> bytes:
        return _serialize(f"{SIP_VERSION} {self.status} {self.reason}", self.headers, self.body)

    @property
    def is_provisional(self) -> bool:
        return self.status < 200


Message = Request | Response


def _serialize(start: str, headers: Headers, body: bytes) -> bytes:
    """Wire form; Content-Length always states the real body size."""
    length = f"Content-Length: {len(body)}"
    lines = [start]
    placed = False
    for key, name, value in headers._items:
        if key != "content-length":
            lines.append(f"{name}: {value}")
        elif not placed:  # where it was, and only once
            lines.append(length)
            placed = True
    if not placed:
        lines.append(length)
    lines.append("\r\n")
    return "\r\n".join(lines).encode() + body


def parse(data: bytes) -> Request | Response:
    """Parse one SIP message; raise ``SipParseError`` if it is malformed."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipParseError("no empty line after the header fields")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not UTF-8") from None
    first, _, fields = head.partition("\r\n")
    request_line = _REQUEST_LINES.get(first)
    status_line = None if request_line is not None else _STATUS_LINES.get(first)
    if request_line is None and status_line is None:
        _check_controls(first)
    items, cache = _parse_fields(fields)
    headers = Headers._trusted(items, cache)

    lengths = cache.get("content-length", ())
    body_start = end + 4
    if len(lengths) > 1:
        raise SipParseError("repeated Content-Length")
    if lengths:
        body_end = body_start + lengths[0]
        if body_end > len(data):
            raise SipParseError("Content-Length larger than the message")
        body = data[body_start:body_end]
    else:
        body = data[body_start:]

    if request_line is None and status_line is None:
        if first[:4].upper() == "SIP/":
            status_line = _parse_status_line(first)
        else:
            request_line = _parse_request_line(first)
    if status_line is not None:
        return Response(status_line[0], status_line[1], headers, body)
    assert request_line is not None
    method, uri = request_line
    for cseq in cache.get("cseq", ()):
        if cseq.method != method:
            raise SipParseError("CSeq method does not match the request method")
    return Request(method, uri, headers, body)


def _check_controls(line: str) -> None:
    """Refuse a control character outside a quoted-pair, or a CR or LF, in one line
    (a start line, or a header line cut at CRLF: any CR or LF left in it is bare)."""
    # Printable text has none (the cheap test); the exact rule only when it fails.
    if not line.isprintable() and _BAD_CTL.search(line) is not None:
        raise SipParseError("control character in the header section")


def _parse_status_line(line: str) -> tuple[int, str]:
    sm = _STATUS_LINE.fullmatch(line)
    if sm is None:
        raise SipParseError("bad Status-Line")
    _check_version(sm.group(1))
    parsed = (int(sm.group(2)), sm.group(3))
    _remember(_STATUS_LINES, line, parsed, _START_LINES_SIZE)
    return parsed


def _parse_request_line(line: str) -> tuple[str, Uri]:
    parts = line.split(" ")
    if len(parts) != 3:
        raise SipParseError("bad Request-Line")
    method, uri_text, version = parts
    if _TOKEN_RE.fullmatch(method) is None:
        raise SipParseError("bad method")
    if _VERSION.fullmatch(version) is None:
        raise SipParseError("bad SIP-Version")
    _check_version(version)
    uri = parse_uri(uri_text)
    if isinstance(uri, SipUri) and uri.headers:
        raise SipParseError("headers in the Request-URI")
    parsed = (method, uri)
    _remember(_REQUEST_LINES, line, parsed, _START_LINES_SIZE)
    return parsed


def _remember(memo: dict[str, T], text: str, value: T, size: int) -> None:
    """Keep ``value`` for ``text`` unless the text is long (a bound on the memory)."""
    if len(text) <= _MEMO_TEXT_MAX:
        if len(memo) >= size:
            memo.clear()
        memo[text] = value


def _check_version(version: str) -> None:
    if version.upper() != SIP_VERSION:
        raise SipParseError(f"unsupported version {version}", status=505)


def _parse_fields(
    fields: str,
) -> tuple[list[tuple[str, str, str]], dict[str, tuple[Any, ...]]]:
    """Header fields (the text after the start line) as ``(key, name, value)`` triples,
    with the checked fields parsed into a cache by key (absent fields have no entry)."""
    items: list[tuple[str, str, str]] = []
    cache: dict[str, tuple[Any, ...]] = {}
    if not fields:
        return items, cache
    if fields[0] in " \t":
        raise SipParseError("continuation line before any header field")
    if "\r\n " in fields or "\r\n\t" in fields:
        fields = _FOLD.sub(" ", fields)  # folded lines: CRLF + whitespace is one space
    # A remembered line passed _check_controls (bare CR or LF included) when first seen.
    remembered = _LINES
    for line in fields.split("\r\n"):
        known = remembered.get(line)
        if known is None:
            known = _parse_line(line)
        item, parsed = known
        items.append(item)
        if parsed is not None:
            key = item[0]
            previous = cache.get(key)
            cache[key] = previous + parsed if previous else parsed
    return items, cache


def _parse_line(line: str) -> tuple[tuple[str, str, str], tuple[Any, ...] | None]:
    """One unfolded header line: its ``(key, name, value)`` triple and, for a checked
    field, its parsed value. Remembered in ``_LINES`` unless it names this call."""
    _check_controls(line)
    name, colon, value = line.partition(":")
    if not colon:
        raise SipParseError("header field without a colon")
    key, canonical, parser = _FIELD_NAMES.get(name) or _field_name(name)
    value = value.strip(" \t")
    parsed = None if parser is None else parser(value)
    result = ((key, canonical, value), parsed)
    if key not in _PER_CALL and (
        key not in _TAGGED or parsed is None or cast(NameAddr, parsed[0]).tag is None
    ):
        _remember(_LINES, line, result, _LINES_SIZE)
    return result


def _field_name(name: str) -> tuple[str, str, _Parser | None]:
    """A field name as received: lookup key, canonical name and the checking parser."""
    trimmed = name.rstrip(" \t")
    known = NAME_TABLE.get(trimmed.lower())
    if known is None:
        if _TOKEN_RE.fullmatch(trimmed) is None:
            raise SipParseError("bad header field name")
        known = (trimmed.lower(), trimmed)
    field = (known[0], known[1], CHECKED_PARSERS.get(known[0]))
    _remember(_FIELD_NAMES, name, field, _LINES_SIZE)
    return field


class StreamFramer:
    """Cut a TCP/TLS byte stream into messages by Content-Length (RFC 3261 §18.3).

    ``feed`` returns the complete messages received so far, each to be given to
    ``parse``. CRLFs between messages (RFC 5626 keep-alives) are skipped. Framing errors
    (no or bad Content-Length, oversized headers or body) raise ``SipParseError``: the
    stream cannot be resynchronised, so the connection should be closed.
    """

    _LENGTH = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$")

    def __init__(self, max_header_bytes: int = 65536, max_body_bytes: int = 1 << 20) -> None:
        self._buffer = bytearray()
        self._max_header = max_header_bytes
        self._max_body = max_body_bytes

    @property
    def pending(self) -> int:
        """Bytes held for a message not complete yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages: list[bytes] = []
        buf = self._buffer
        while True:
            start = 0
            while buf[start : start + 2] == b"\r\n":
                start += 2
            if start:
                del buf[:start]
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self._max_header:
                    raise SipParseError("header section too large")
                return messages
            if end > self._max_header:
                raise SipParseError("header section too large")
            head = bytes(buf[:end]) + b"\r\n"
            found = self._LENGTH.findall(head)
            if not found:
                raise SipParseError("no Content-Length on a stream transport")
            if len(found) > 1:
                raise SipParseError("repeated Content-Length")
            text = found[0]
            if not text.isdigit() or len(text) > 10 or int(text) > self._max_body:
                raise SipParseError("bad Content-Length")
            total = end + 4 + int(text)
            if len(buf) < total:
                return messages
            messages.append(bytes(buf[:total]))
            del buf[:total]


_COPIED = frozenset({"via", "from", "to", "call-id", "cseq"})
_COPIED_DIALOG = _COPIED | {"record-route"}
_COPIED_TRYING = _COPIED | {"timestamp"}


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to ``request`` per RFC 3261 §8.2.6: Via, From, To, Call-ID and CSeq
    copied, the To tag added when given (and not already there), Record-Route copied
    for dialog-creating responses, Timestamp echoed in a 100.
    """
    if status == 100:
        wanted = _COPIED_TRYING
    elif status < 300:
        wanted = _COPIED_DIALOG
    else:
        wanted = _COPIED
    copied = [item for item in request.headers._items if item[0] in wanted]
    for index, (key, name, value) in enumerate(copied):
        if key == "to":
            if to_tag is not None and request.to.tag is None:
                copied[index] = (key, name, f"{value};tag={to_tag}")
            break
    else:
        raise SipParseError("missing To")
    headers = Headers._trusted(copied, {})
    for name, value in extra:
        headers.add(name, value)
    return Response(status, reason or REASON_PHRASES.get(status, "Unknown"), headers, body)


_ECHOED = {"via", "from", "to", "call-id", "cseq"}


def error_response(data: bytes, status: int = 400, reason: str | None = None) -> bytes | None:
    """A stateless answer to a request that ``parse`` refused, or ``None``.

    RFC 3261 §8.2 has the UAS answer with the request's Via, From, To, Call-ID and
    CSeq. Only the ones that are themselves well-formed are copied, so the error is
    never propagated into what we send. ``None`` when the input does not look like a
    request (a response is never answered) or has no well-formed Via.
    """
    head = data.partition(b"\r\n\r\n")[0].decode("utf-8", "replace")
    if _BAD_CTL.search(head) is not None:
        return None
    lines = head.split("\r\n")
    if not lines[0] or lines[0][:4].upper() == "SIP/" or " " not in lines[0]:
        return None
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip(" \t")
        else:
            unfolded.append(line)
    echoed = []
    has_via = False
    for line in unfolded:
        name, colon, value = line.partition(":")
        known = NAME_TABLE.get(name.strip(" \t").lower())
        if not colon or known is None or known[0] not in _ECHOED:
            continue
        value = value.strip(" \t")
        try:
            CHECKED_PARSERS[known[0]](value)
        except SipParseError:
            continue
        echoed.append(f"{known[1]}: {value}")
        has_via = has_via or known[0] == "via"
    if not has_via:
        return None
    phrase = reason or REASON_PHRASES.get(status, "Error")
    return "\r\n".join(
        [f"SIP/2.0 {status} {phrase}", *echoed, "Content-Length: 0", "", ""]
    ).encode()


def parse_address(text: str) -> NameAddr:
    """A name-addr or addr-spec from configuration or the API (``"Bob" <sip:b@h>``)."""
    return parse_single_name_addr(text.strip())[0]


__all__ = [
    "REASON_PHRASES",
    "SIP_VERSION",
    "Message",
    "Request",
    "Response",
    "StreamFramer",
    "error_response",
    "make_response",
    "parse",
    "parse_address",
    "parse_uri",
]
