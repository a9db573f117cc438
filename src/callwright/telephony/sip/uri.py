"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), plus any other absolute URI.

Parsing is strict: a URI either matches the grammar or ``SipParseError`` is raised.
User parts, parameters and headers keep their %-escapes exactly as received, so a URI
serializes back to the same text (``value%41`` is never unescaped twice); ``unescape``
gives the decoded form when it is needed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import unquote_to_bytes

from callwright.telephony.sip._syntax import NO_PARAMS, Params, format_params, no_params
from callwright.telephony.sip.errors import SipParseError

_ESC = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER = re.compile(f"(?:[{_UNRESERVED}&=+$,;?/]|{_ESC})+")
_PASSWORD = re.compile(f"(?:[{_UNRESERVED}&=+$,]|{_ESC})*")
_PARAMCHARS = re.compile(f"(?:[{_UNRESERVED}\\[\\]/:&+$]|{_ESC})+")
_HNAME = re.compile(f"(?:[{_UNRESERVED}\\[\\]/?:+$]|{_ESC})+")
_HVALUE = re.compile(f"(?:[{_UNRESERVED}\\[\\]/?:+$]|{_ESC})*")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# IPv4address or hostname (RFC 3261 §25.1: the top label starts with a letter).
HOST = (
    f"{_OCTET}(?:\\.{_OCTET}){{3}}"
    r"|(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?"
)
_HOST = re.compile(HOST)
_SIMPLE_PARAM = r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+"
# The usual shape (sip:user@host:port;params, nothing escaped), validated in one match;
# anything else takes the general path below.
_FAST_SIP = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/]+)@)?"
    f"({HOST})(?::([0-9]{{1,5}}))?((?:;{_SIMPLE_PARAM}(?:={_SIMPLE_PARAM})?)*)"
)
_PORT = re.compile(r"[0-9]{1,5}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+\-.]*):")
_URIC = re.compile(f"(?:[{_UNRESERVED};/?:@&=+$,]|{_ESC})+")
_TEL_GLOBAL = re.compile(r"\+[0-9\-.()]*[0-9][0-9\-.()]*")
_TEL_LOCAL = re.compile(r"[0-9A-Fa-f*#\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*")
_TEL_PNAME = re.compile(r"[A-Za-z0-9\-]+")
_TEL_PVALUE = re.compile(f"(?:[{_UNRESERVED}\\[\\]/:&+$]|{_ESC})+")


def unescape(text: str) -> str:
    """Decode %-escapes once (UTF-8; an invalid sequence decodes with replacement)."""
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", "replace")


def check_host(host: str) -> None:
    """Raise ``SipParseError`` unless ``host`` is a hostname, IPv4 address or IPv6 reference."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise SipParseError("bad IPv6 reference")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SipParseError("bad IPv6 reference") from None
        return
    if _HOST.fullmatch(host) is None:
        raise SipParseError("bad host")


def parse_port(text: str) -> int:
    if _PORT.fullmatch(text) is None or int(text) > 65535:
        raise SipParseError("bad port")
    return int(text)


@dataclass(frozen=True, slots=True)
class SipUri:
    """``sip:`` or ``sips:`` URI. ``host`` keeps IPv6 brackets; text fields stay escaped."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = field(default_factory=no_params, hash=False)
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts += (":", self.password)
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts += (":", str(self.port))
        if self.params:
            parts.append(format_params(self.params))
        if self.headers:
            parts += ("?", "&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(parts)

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, if present."""
        value = self.params.get("transport")
        return value.lower() if value else None

    def host_port(self, default_port: int | None = None) -> tuple[str, int]:
        """Host without IPv6 brackets and the port (``5060``/``5061`` by default)."""
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        if self.port is not None:
            return host, self.port
        if default_port is not None:
            return host, default_port
        return host, 5061 if self.secure else 5060


@dataclass(frozen=True, slots=True)
class TelUri:
    """``tel:`` URI (RFC 3966): a global (``+...``) or local number with parameters."""

    number: str
    params: Params = field(default_factory=no_params, hash=False)

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"

    @property
    def scheme(self) -> str:
        return "tel"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other absolute URI (``http:``, ``urn:``, ...), kept opaque."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | TelUri | AbsoluteUri


# Parsed URIs by their text: the same few (a trunk's host, our own address) come back in
# every message. Parsing is pure and URIs are immutable, so sharing them is safe; the
# memo starts over when full, and long texts are not kept (a bound on its memory).
_MEMO: dict[str, Uri] = {}
_MEMO_SIZE = 4096


def parse_uri(text: str) -> Uri:
    """Parse one URI; the whole of ``text`` must be the URI (no surrounding spaces)."""
    uri = _MEMO.get(text)
    if uri is None:
        uri = _parse_uri(text)
        if len(text) <= 256:
            if len(_MEMO) >= _MEMO_SIZE:
                _MEMO.clear()
            _MEMO[text] = uri
    return uri


def _parse_uri(text: str) -> Uri:
    fast = _FAST_SIP.fullmatch(text)
    if fast is not None:
        scheme, user, host, port, raw_params = fast.groups()
        if port is not None and int(port) > 65535:
            raise SipParseError("bad port")
        params = _split_params(raw_params[1:].split(";")) if raw_params else NO_PARAMS
        return SipUri(host, user, None, None if port is None else int(port), params, (), scheme)
    m = _SCHEME.match(text)
    if m is None:
        raise SipParseError("bad URI scheme")
    scheme = m.group(1).lower()
    rest = text[m.end() :]
    if scheme == "sip" or scheme == "sips":
        return _parse_sip(scheme, rest)
    if scheme == "tel":
        return _parse_tel(rest)
    if _URIC.fullmatch(rest) is None:
        raise SipParseError("bad URI")
    return AbsoluteUri(scheme, rest)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if _USER.fullmatch(user) is None:
            raise SipParseError("bad URI user")
        if colon:
            if _PASSWORD.fullmatch(pw) is None:
                raise SipParseError("bad URI password")
            password = pw
    headers: tuple[tuple[str, str], ...] = ()
    q = rest.find("?")
    if q >= 0:
        headers = _parse_uri_headers(rest[q + 1 :])
        rest = rest[:q]
    hostport, *raw_params = rest.split(";")
    port = None
    if hostport.startswith("["):
        close = hostport.find("]")
        host, tail = hostport[: close + 1], hostport[close + 1 :]
        if close < 0 or (tail and not tail.startswith(":")):
            raise SipParseError("bad IPv6 reference")
        if tail:
            port = parse_port(tail[1:])
    else:
        host, colon, port_text = hostport.partition(":")
        if colon:
            port = parse_port(port_text)
    check_host(host)
    for raw in raw_params:
        name, eq, value = raw.partition("=")
        if _PARAMCHARS.fullmatch(name) is None or (eq and _PARAMCHARS.fullmatch(value) is None):
            raise SipParseError("bad URI parameter")
    return SipUri(host, user, password, port, _split_params(raw_params), headers, scheme)


def _split_params(raw_params: list[str]) -> Params:
    """``name[=value]`` items (already validated), read-only, names lower-cased."""
    params: dict[str, str | None] = {}
    for raw in raw_params:
        name, eq, value = raw.partition("=")
        name = name.lower()
        if name in params:
            raise SipParseError(f"repeated URI parameter {name!r}")
        params[name] = value if eq else None
    return MappingProxyType(params)


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers = []
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not eq or _HNAME.fullmatch(name) is None or _HVALUE.fullmatch(value) is None:
            raise SipParseError("bad URI header")
        headers.append((name, value))
    return tuple(headers)


def _parse_tel(rest: str) -> TelUri:
    number, *raw_params = rest.split(";")
    is_global = _TEL_GLOBAL.fullmatch(number) is not None
    if not is_global and _TEL_LOCAL.fullmatch(number) is None:
        raise SipParseError("bad tel number")
    params: dict[str, str | None] = {}
    for raw in raw_params:
        name, eq, value = raw.partition("=")
        if _TEL_PNAME.fullmatch(name) is None or (eq and _TEL_PVALUE.fullmatch(value) is None):
            raise SipParseError("bad tel parameter")
        name = name.lower()
        if name in params:
            raise SipParseError(f"repeated tel parameter {name!r}")
        params[name] = value if eq else None
    if not is_global and "phone-context" not in params:
        raise SipParseError("local tel number without phone-context")
    return TelUri(number, MappingProxyType(params))
