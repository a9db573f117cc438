"""RFC 3261 §25 lexical rules shared by the URI, header and message parsers.

Everything here works on text that is already unfolded (continuation lines joined
with a space), so "LWS" is just ``[ \\t]+`` and "SWS" ``[ \\t]*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from callwright.telephony.sip.errors import SipParseError

TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"  # noqa: S105 (a character class)
TOKEN = f"[{TOKEN_CHARS}]+"
TOKEN_RE = re.compile(TOKEN)
# qdtext is LWS, %x21, %x23-5B, %x5D-7E or UTF-8 non-ASCII; quoted-pair is "\" plus
# any ASCII octet except CR and LF.
QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\U0010ffff]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"'
QUOTED_RE = re.compile(QUOTED)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
# gen-value = token / host / quoted-string; a host adds ":" and "[ ]" for IPv6.
_GEN_VALUE = f"{QUOTED}|[{TOKEN_CHARS}:\\[\\]]+"
_PARAM_RE = re.compile(f"[ \\t]*;[ \\t]*({TOKEN})(?:[ \\t]*=[ \\t]*({_GEN_VALUE}))?")
_LIST_ITEM = re.compile(r'(?:[^,"<]+|"(?:[^"\\]|\\[\s\S])*"|<[^>]*>)*')
_DIGITS = re.compile(r"[0-9]+")
_TRAILING_WS = " \t"

MAX_UINT32 = 2**32 - 1

# Parameters are read-only once parsed: parsed values are shared (see message.py's memo).
Params = Mapping[str, str | None]
NO_PARAMS: Params = MappingProxyType({})


def no_params() -> Params:
    return NO_PARAMS


_SIMPLE_PARAMS = re.compile(f"(?:;{TOKEN}(?:=[{TOKEN_CHARS}:\\[\\]]+)?)*")


def parse_params(text: str, pos: int, what: str) -> Params:
    """Parse ``*( SEMI generic-param )`` from ``pos`` to the end of ``text``.

    Names are case-insensitive (RFC 3261 §7.3.1), so they are stored lower-cased; a
    quoted value keeps its quotes so it serializes back unchanged.
    """
    end = len(text)
    if pos == end:
        return NO_PARAMS
    params: dict[str, str | None] = {}
    if _SIMPLE_PARAMS.fullmatch(text, pos) is not None:
        # No spaces or quotes: plain splitting gives the same result, faster.
        for item in text[pos + 1 :].split(";"):
            name, eq, value = item.partition("=")
            name = name.lower()
            if name in params:
                raise SipParseError(f"repeated parameter {name!r} in {what}")
            params[name] = value if eq else None
        return MappingProxyType(params)
    match = _PARAM_RE.match
    while pos < end:
        m = match(text, pos)
        if m is None:
            raise SipParseError(f"bad parameter in {what}")
        name = m.group(1).lower()
        if name in params:
            raise SipParseError(f"repeated parameter {name!r} in {what}")
        params[name] = m.group(2)
        pos = m.end()
    return MappingProxyType(params)


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def split_list(value: str, what: str) -> list[str]:
    """Split a header value at the commas that separate list elements.

    Commas inside quoted strings and ``<...>`` do not count. An empty element (``a,,b``)
    or an unbalanced quote or bracket is an error.
    """
    if "," not in value:
        item = value.strip(_TRAILING_WS)
        if not item:
            raise SipParseError(f"empty {what}")
        return [item]
    items: list[str] = []
    pos = 0
    end = len(value)
    while True:
        m = _LIST_ITEM.match(value, pos)
        assert m is not None  # the pattern matches the empty string
        item = m.group().strip(_TRAILING_WS)
        if not item:
            raise SipParseError(f"empty element in {what}")
        items.append(item)
        pos = m.end()
        if pos == end:
            return items
        if value[pos] != ",":
            raise SipParseError(f"unbalanced quote or bracket in {what}")
        pos += 1


def unquote(quoted: str) -> str:
    """The text of a quoted-string (with its quotes), quoted-pairs resolved."""
    inner = quoted[1:-1]
    return _QUOTED_PAIR.sub(r"\1", inner) if "\\" in inner else inner


def quote(text: str) -> str:
    """A quoted-string for ``text``; raises ``ValueError`` for CR or LF (not quotable)."""
    if "\r" in text or "\n" in text:
        raise ValueError("CR and LF cannot appear in a quoted string")
    out = []
    for ch in text:
        if ch in '"\\' or (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def parse_uint(text: str, what: str, maximum: int = MAX_UINT32) -> int:
    """A decimal of ASCII digits only (``int()`` alone would take ``+1``, ``1_0``, ``١``)."""
    if _DIGITS.fullmatch(text) is None:
        raise SipParseError(f"bad {what}")
    # Leading zeros are legal ("0068"); strip them before the length guard so a huge
    # value never reaches int() (which limits digit strings anyway).
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        raise SipParseError(f"{what} out of range")
    return int(digits)
