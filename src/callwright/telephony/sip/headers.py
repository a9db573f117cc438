"""SIP header fields: the ordered header list and the structured values we rely on.

``Headers`` keeps every field as ``(name, value)`` text in wire order: names in their
long canonical form (compact forms such as ``v`` or ``i`` are expanded on input),
values exactly as received after unfolding. Structured views (``Via``, ``NameAddr``,
``CSeq``...) are parsed from that text by the functions below and cached until the
list changes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, cast

from callwright.telephony.sip._syntax import (
    QUOTED_RE,
    TOKEN,
    Params,
    format_params,
    no_params,
    parse_params,
    parse_uint,
    quote,
    split_list,
    unquote,
)
from callwright.telephony.sip.errors import SipParseError
from callwright.telephony.sip.uri import HOST, Uri, check_host, parse_port, parse_uri

T = TypeVar("T")

COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}
_CANONICAL = [
    *COMPACT_FORMS.values(),
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Authentication-Info",
    "Authorization",
    "Call-Info",
    "Content-Disposition",
    "Content-Language",
    "CSeq",
    "Date",
    "Error-Info",
    "Expires",
    "In-Reply-To",
    "Max-Forwards",
    "Min-Expires",
    "Min-SE",
    "MIME-Version",
    "Organization",
    "P-Asserted-Identity",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Replaces",
    "Reply-To",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Subscription-State",
    "Timestamp",
    "Unsupported",
    "User-Agent",
    "Warning",
    "WWW-Authenticate",
]
_NAMES: dict[str, str] = {name.lower(): name for name in _CANONICAL}
_NAMES.update(COMPACT_FORMS)
_TOKEN_FULL = re.compile(TOKEN)


# lower-cased name as received -> (lookup key, canonical name), for the parser's hot loop
NAME_TABLE: dict[str, tuple[str, str]] = {
    low: (canon.lower(), canon) for low, canon in _NAMES.items()
}


def canonical_name(name: str) -> str:
    """The long, conventionally capitalised form of a header name (unknown names as given)."""
    return _NAMES.get(name.lower(), name)


def _key(name: str) -> str:
    return _NAMES.get(name.lower(), name).lower()


class Headers:
    """Ordered header fields with case-insensitive, compact-form-aware lookup."""

    __slots__ = ("_cache", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str, str]] = [
            (_key(n), canonical_name(n), v.strip(" \t")) for n, v in items
        ]
        self._cache: dict[str, Any] = {}

    @classmethod
    def _trusted(cls, items: list[tuple[str, str, str]], cache: dict[str, Any]) -> Headers:
        """Build from ``(key, name, value)`` triples the parser already canonicalised."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._cache = cache
        return headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for _, name, value in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(k == key for k, _, _ in self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def get(self, name: str) -> str | None:
        """The first value of ``name``, or ``None``."""
        key = _key(name)
        for k, _, value in self._items:
            if k == key:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order (one per header line, not split at commas)."""
        key = _key(name)
        return [value for k, _, value in self._items if k == key]

    def add(self, name: str, value: str) -> None:
        self._items.append((_key(name), canonical_name(name), value.strip(" \t")))
        self._cache.clear()

    def prepend(self, name: str, value: str) -> None:
        """Insert before every other field (a proxy's or client's new top Via)."""
        self._items.insert(0, (_key(name), canonical_name(name), value.strip(" \t")))
        self._cache.clear()

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` field by one, kept where the first one was."""
        key = _key(name)
        new = (key, canonical_name(name), value.strip(" \t"))
        items: list[tuple[str, str, str]] = []
        placed = False
        for item in self._items:
            if item[0] != key:
                items.append(item)
            elif not placed:
                items.append(new)
                placed = True
        if not placed:
            items.append(new)
        self._items = items
        self._cache.clear()

    def remove(self, name: str) -> None:
        key = _key(name)
        self._items = [item for item in self._items if item[0] != key]
        self._cache.clear()

    def copy(self) -> Headers:
        return Headers._trusted(list(self._items), dict(self._cache))

    def parsed(self, name: str, parser: Callable[[str], tuple[T, ...]]) -> tuple[T, ...]:
        """Every element of ``name`` parsed by ``parser`` (which splits lists), cached."""
        return self.parsed_key(_key(name), parser)

    def parsed_key(self, key: str, parser: Callable[[str], tuple[T, ...]]) -> tuple[T, ...]:
        """``parsed`` for a lookup key (the lower-cased long name, e.g. ``"call-id"``)."""
        cached = self._cache.get(key)
        if cached is None:
            cached = tuple(elem for k, _, v in self._items if k == key for elem in parser(v))
            self._cache[key] = cached
        return cast(tuple[T, ...], cached)

    def tokens(self, name: str) -> tuple[str, ...]:
        """A comma-separated token list (Require, Supported, Allow...), as written."""
        return self.parsed(name, parse_token_list)


def parse_token_list(value: str) -> tuple[str, ...]:
    if not value.strip():
        return ()
    out = []
    for item in split_list(value, "token list"):
        if _TOKEN_FULL.fullmatch(item) is None:
            raise SipParseError("bad token in list")
        out.append(item)
    return tuple(out)


# ---------------------------------------------------------------- name-addr / addr-spec

_DISPLAY_TOKENS = re.compile(f"((?:{TOKEN})(?:[ \\t]+{TOKEN})*)?[ \\t]*<")
_ADDR_SPEC_END = re.compile(r"[ \t;]")


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``[display-name] <uri> *(;param)`` as in From, To, Contact, Route, Refer-To."""

    uri: Uri
    display: str | None = None
    params: Params = field(default_factory=no_params, hash=False)

    def __str__(self) -> str:
        display = "" if self.display is None else quote(self.display) + " "
        return f"{display}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return NameAddr(self.uri, self.display, {**self.params, "tag": tag})


def parse_name_addr(value: str, *, require_brackets: bool = False) -> NameAddr:
    """Parse a name-addr or (unless ``require_brackets``) an addr-spec, with params.

    In the bare addr-spec form everything after the first ``;`` is a header parameter
    (RFC 3261 §20.10), and a URI containing ``?`` or ``,`` must have been bracketed.
    """
    display: str | None = None
    if value.startswith('"'):
        m = QUOTED_RE.match(value)
        if m is None:
            raise SipParseError("bad quoted display name")
        display = unquote(m.group())
        lt = value.find("<", m.end())
        if lt < 0 or value[m.end() : lt].strip(" \t"):
            raise SipParseError("display name without <URI>")
    else:
        m = _DISPLAY_TOKENS.match(value)
        if m is None:
            lt = -1
        else:
            tokens = m.group(1)
            display = " ".join(tokens.split()) if tokens else None
            lt = m.end() - 1
    if lt >= 0:
        gt = value.find(">", lt)
        if gt < 0:
            raise SipParseError("unterminated <URI>")
        uri = parse_uri(value[lt + 1 : gt])
        return NameAddr(uri, display, parse_params(value, gt + 1, "name-addr"))
    if require_brackets:
        raise SipParseError("URI must be enclosed in <>")
    m2 = _ADDR_SPEC_END.search(value)
    end = len(value) if m2 is None else m2.start()
    text = value[:end]
    if "?" in text or "," in text:
        raise SipParseError("URI with ? or , must be enclosed in <>")
    return NameAddr(parse_uri(text), None, parse_params(value, end, "addr-spec"))


def parse_name_addr_list(value: str) -> tuple[NameAddr, ...]:
    return tuple(parse_name_addr(item) for item in split_list(value, "address list"))


def parse_route_list(value: str) -> tuple[NameAddr, ...]:
    return tuple(
        parse_name_addr(item, require_brackets=True) for item in split_list(value, "route list")
    )


# From and To of one peer differ only by their tag from call to call: the part before
# the tag is parsed once and remembered (parsed values are immutable, so sharing them is
# safe; the memo starts over when full).
_UNTAGGED: dict[str, NameAddr] = {}
_UNTAGGED_SIZE = 2048
_TAG_PARAM = ";tag="


def parse_single_name_addr(value: str) -> tuple[NameAddr]:
    """A From or To value.

    A value ending in ``;tag=<token>`` is parsed as the text before it plus that tag:
    the same result, since a trailing token cannot close a quote or bracket opened
    earlier, so in any value that parses those last characters are the last parameter.
    """
    head, sep, tag = value.rpartition(_TAG_PARAM)
    if not sep or not head or head[-1] in " \t" or _TOKEN_FULL.fullmatch(tag) is None:
        return (parse_name_addr(value),)
    base = _UNTAGGED.get(head)
    if base is None:
        base = parse_name_addr(head)
        if len(head) <= 256:
            if len(_UNTAGGED) >= _UNTAGGED_SIZE:
                _UNTAGGED.clear()
            _UNTAGGED[head] = base
    if "tag" in base.params:
        raise SipParseError("repeated parameter 'tag'")
    return (NameAddr(base.uri, base.display, MappingProxyType({**base.params, "tag": tag})),)


# ------------------------------------------------------------------------------ Contact

_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


@dataclass(frozen=True, slots=True)
class Contact:
    """One Contact value: an address, or the ``*`` wildcard of a REGISTER."""

    address: NameAddr | None

    def __str__(self) -> str:
        return "*" if self.address is None else str(self.address)

    @property
    def is_wildcard(self) -> bool:
        return self.address is None


def parse_contact_list(value: str) -> tuple[Contact, ...]:
    if value == "*":
        return (Contact(None),)
    contacts = []
    for item in split_list(value, "Contact"):
        addr = parse_name_addr(item)
        expires = addr.params.get("expires")
        if expires is not None:
            parse_uint(expires, "Contact expires")
        q = addr.params.get("q")
        if q is not None and _QVALUE.fullmatch(q) is None:
            raise SipParseError("bad Contact q-value")
        contacts.append(Contact(addr))
    return tuple(contacts)


# ---------------------------------------------------------------------------------- Via

_VIA = re.compile(
    f"({TOKEN})[ \\t]*/[ \\t]*({TOKEN})[ \\t]*/[ \\t]*({TOKEN})[ \\t]+"
    f"(\\[[0-9A-Fa-f:.]+\\]|{HOST})(?:[ \\t]*:[ \\t]*([0-9]+))?"
)
BRANCH_COOKIE = "z9hG4bK"


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;received=...;rport``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=no_params, hash=False)
    protocol: str = "SIP/2.0"

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The port filled in by the server (RFC 3581); ``None`` if absent or empty."""
        value = self.params.get("rport")
        return None if value is None else int(value)

    @property
    def has_rport(self) -> bool:
        return "rport" in self.params

    @property
    def rfc3261_branch(self) -> bool:
        """Whether the branch carries the magic cookie and something after it."""
        branch = self.branch
        return branch is not None and branch.startswith(BRANCH_COOKIE) and len(branch) > 7


def parse_via_list(value: str) -> tuple[Via, ...]:
    if "," not in value:
        return (_parse_via(value),)
    return tuple(_parse_via(item) for item in split_list(value, "Via"))


# A peer's Vias differ only by their parameters (the branch) from one request to the
# next: what comes before them is parsed once and remembered, bounded like the others.
_SENT_BY: dict[str, tuple[str, str, int | None, str, int]] = {}
_SENT_BY_SIZE = 1024


def _parse_via(item: str) -> Via:
    semi = item.find(";")
    head = item if semi < 0 else item[:semi]
    sent = _SENT_BY.get(head)
    if sent is None:
        sent = _parse_sent_by(head)
        if len(head) <= 256:
            if len(_SENT_BY) >= _SENT_BY_SIZE:
                _SENT_BY.clear()
            _SENT_BY[head] = sent
    transport, host, port, protocol, end = sent
    params = parse_params(item, end, "Via")
    # get(key, "") tells "absent" ("") from "present without a value" (None).
    branch = params.get("branch", "")
    if branch is None or (branch and _TOKEN_FULL.fullmatch(branch) is None):
        raise SipParseError("bad Via branch")
    _check_via_params(params)
    return Via(transport, host, port, params, protocol)


def _parse_sent_by(head: str) -> tuple[str, str, int | None, str, int]:
    """``protocol/transport host[:port]``, the text before the first ``;`` of a Via,
    with where the parameters start (only whitespace may follow the port)."""
    m = _VIA.match(head)
    if m is None or head[m.end() :].strip(" \t"):
        raise SipParseError("bad Via")
    name, version, transport, host, port_text = m.groups()
    if host[0] == "[":
        check_host(host)
    port = None if port_text is None else parse_port(port_text)
    protocol = "SIP/2.0" if name == "SIP" and version == "2.0" else f"{name.upper()}/{version}"
    return transport.upper(), host, port, protocol, m.end()


def _check_via_params(params: Params) -> None:
    received = params.get("received", "")
    if received != "":
        _check_ip(received)
    rport = params.get("rport")
    if rport is not None:
        parse_port(rport)
    ttl = params.get("ttl", "")
    if ttl != "":
        parse_uint(ttl or "", "Via ttl", 255)
    if params.get("maddr", "") is None:
        raise SipParseError("Via maddr without a value")


def _check_ip(text: str | None) -> None:
    if not text:
        raise SipParseError("Via received without a value")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise SipParseError("Via received is not an IP address") from None


# --------------------------------------------------------------------- CSeq and scalars

_CSEQ = re.compile(f"([0-9]+)[ \\t]+({TOKEN})")
_CALL_ID = re.compile(
    r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+)?"
)


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(value: str) -> tuple[CSeq]:
    m = _CSEQ.fullmatch(value)
    if m is None:
        raise SipParseError("bad CSeq")
    return (CSeq(parse_uint(m.group(1), "CSeq number"), m.group(2)),)


def parse_call_id(value: str) -> tuple[str]:
    if _CALL_ID.fullmatch(value) is None:
        raise SipParseError("bad Call-ID")
    return (value,)


def parse_max_forwards(value: str) -> tuple[int]:
    return (parse_uint(value, "Max-Forwards", 255),)


def parse_delta_seconds(value: str) -> tuple[int]:
    return (parse_uint(value, "delta-seconds"),)


def parse_content_length(value: str) -> tuple[int]:
    return (parse_uint(value, "Content-Length"),)


def parse_media_type(value: str) -> tuple[str]:
    """``type/subtype`` lower-cased, parameters dropped (``application/sdp``)."""
    m = _MEDIA_TYPE.match(value)
    if m is None:
        raise SipParseError("bad Content-Type")
    parse_params(value, m.end(), "Content-Type")
    return (f"{m.group(1)}/{m.group(2)}".lower(),)


_MEDIA_TYPE = re.compile(f"[ \\t]*({TOKEN})[ \\t]*/[ \\t]*({TOKEN})")

# Each parser takes a value already stripped of surrounding whitespace. The fields
# parse() checks up front, so a message that parses has well-formed values
# for everything the transaction and dialog layers read.
CHECKED_PARSERS: dict[str, Callable[[str], tuple[Any, ...]]] = {
    "via": parse_via_list,
    "from": parse_single_name_addr,
    "to": parse_single_name_addr,
    "call-id": parse_call_id,
    "cseq": parse_cseq,
    "contact": parse_contact_list,
    "route": parse_route_list,
    "record-route": parse_route_list,
    "max-forwards": parse_max_forwards,
    "expires": parse_delta_seconds,
    "content-length": parse_content_length,
    "content-type": parse_media_type,
}
