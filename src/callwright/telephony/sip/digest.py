"""Digest authentication as a client (RFC 2617, RFC 7616, used by SIP per RFC 3261 §22).

A trunk or PBX answers our INVITE or REGISTER with 401 (``WWW-Authenticate``) or 407
(``Proxy-Authenticate``). ``answer_challenge`` picks the best challenge (SHA-256 before
MD5; ``-sess`` variants and ``qop=auth``/``auth-int`` supported, and the RFC 2069 form
without qop) and returns the ``Authorization`` or ``Proxy-Authorization`` field to add
to the retried request (same Call-ID, CSeq + 1, new branch). The client nonce is an
argument so that tests are reproducible; ``None`` draws a random one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from callwright.telephony.sip._syntax import QUOTED, TOKEN, unquote
from callwright.telephony.sip.errors import SipParseError
from callwright.telephony.sip.message import Request, Response

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
# Preference when a server offers several challenges (RFC 7616 §3.7: strongest first).
_PREFERENCE = ("SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS")
_SCHEME = re.compile(f"[ \\t]*({TOKEN})[ \\t]+")
_AUTH_PARAM = re.compile(f"[ \\t]*({TOKEN})[ \\t]*=[ \\t]*({QUOTED}|{TOKEN})[ \\t]*(,|$)")


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"  # upper-cased: MD5, MD5-SESS, SHA-256, SHA-256-SESS
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False
    proxy: bool = False  # from Proxy-Authenticate (407)

    @property
    def supported(self) -> bool:
        if self.algorithm not in _PREFERENCE:
            return False
        return not self.qop or "auth" in self.qop or "auth-int" in self.qop


def parse_challenge(value: str, *, proxy: bool = False) -> Challenge | None:
    """A Digest challenge from one header value; ``None`` for another scheme.

    Raises ``SipParseError`` if the value is malformed.
    """
    m = _SCHEME.match(value)
    if m is None:
        raise SipParseError("bad authentication challenge")
    if m.group(1).lower() != "digest":
        return None
    params: dict[str, str] = {}
    pos = m.end()
    while pos < len(value):
        p = _AUTH_PARAM.match(value, pos)
        if p is None or p.end() == pos:
            raise SipParseError("bad authentication parameter")
        name = p.group(1).lower()
        if name in params:
            raise SipParseError(f"repeated authentication parameter {name!r}")
        raw = p.group(2)
        params[name] = unquote(raw) if raw.startswith('"') else raw
        pos = p.end()
    if "realm" not in params or "nonce" not in params:
        raise SipParseError("Digest challenge without realm or nonce")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
        userhash=params.get("userhash", "").lower() == "true",
        proxy=proxy,
    )


def challenges(response: Response) -> list[Challenge]:
    """Every well-formed Digest challenge of a 401 or 407, in order."""
    found = []
    for name, proxy in (("WWW-Authenticate", False), ("Proxy-Authenticate", True)):
        for value in response.headers.get_all(name):
            try:
                challenge = parse_challenge(value, proxy=proxy)
            except SipParseError:
                continue
            if challenge is not None:
                found.append(challenge)
    return found


def choose(found: list[Challenge]) -> Challenge | None:
    """The strongest challenge we can answer (SHA-256 before MD5)."""
    usable = [c for c in found if c.supported]
    if not usable:
        return None
    return min(usable, key=lambda c: _PREFERENCE.index(c.algorithm))


def authorization(
    challenge: Challenge,
    credentials: Credentials,
    *,
    method: str,
    uri: str,
    cnonce: str | None = None,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The ``Authorization`` (or ``Proxy-Authorization``) value answering ``challenge``."""
    if not challenge.supported:
        raise ValueError(f"cannot answer a {challenge.algorithm} challenge")
    base = challenge.algorithm.removesuffix("-SESS")
    hash_fn = _HASHES[base]

    def h(text: str | bytes) -> str:
        data = text.encode() if isinstance(text, str) else text
        return hash_fn(data).hexdigest()

    cnonce = cnonce if cnonce is not None else secrets.token_hex(12)
    qop = "auth" if "auth" in challenge.qop else ("auth-int" if challenge.qop else None)
    ha1 = h(f"{credentials.username}:{challenge.realm}:{credentials.password}")
    if challenge.algorithm.endswith("-SESS"):
        ha1 = h(f"{ha1}:{challenge.nonce}:{cnonce}")
    a2 = f"{method}:{uri}" if qop != "auth-int" else f"{method}:{uri}:{h(body)}"
    nc_text = f"{nc:08x}"
    if qop is None:
        response = h(f"{ha1}:{challenge.nonce}:{h(a2)}")
    else:
        response = h(f"{ha1}:{challenge.nonce}:{nc_text}:{cnonce}:{qop}:{h(a2)}")
    username = credentials.username
    if challenge.userhash:
        username = h(f"{username}:{challenge.realm}")
    parts = [
        f'username="{_escape(username)}"',
        f'realm="{_escape(challenge.realm)}"',
        f'nonce="{_escape(challenge.nonce)}"',
        f'uri="{_escape(uri)}"',
        f'response="{response}"',
        f"algorithm={challenge.algorithm if challenge.algorithm in _HASHES else _sess(challenge)}",
    ]
    if challenge.opaque is not None:
        parts.append(f'opaque="{_escape(challenge.opaque)}"')
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc_text}", f'cnonce="{_escape(cnonce)}"']
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


def _sess(challenge: Challenge) -> str:
    return challenge.algorithm.removesuffix("-SESS") + "-sess"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def answer_challenge(
    request: Request,
    response: Response,
    credentials: Credentials,
    *,
    cnonce: str | None = None,
    nc: int = 1,
) -> tuple[str, str] | None:
    """``(header name, value)`` to add to the retried ``request``, or ``None`` if the
    401/407 offers nothing we can answer."""
    challenge = choose(challenges(response))
    if challenge is None:
        return None
    value = authorization(
        challenge,
        credentials,
        method=request.method,
        uri=str(request.uri),
        cnonce=cnonce,
        nc=nc,
        body=request.body,
    )
    return ("Proxy-Authorization" if challenge.proxy else "Authorization"), value
