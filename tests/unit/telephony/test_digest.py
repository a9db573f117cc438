from __future__ import annotations

import hashlib

import pytest
from tests.unit.telephony.sipdata import INVITE, crlf

from callwright.telephony.sip import Request, Response, SipParseError, parse
from callwright.telephony.sip.digest import (
    Challenge,
    Credentials,
    answer_challenge,
    authorization,
    challenges,
    choose,
    parse_challenge,
)


def auth_params(value: str) -> dict[str, str]:
    scheme, _, rest = value.partition(" ")
    assert scheme == "Digest"
    out = {}
    for part in rest.split(", "):
        name, _, raw = part.partition("=")
        out[name] = raw.strip('"')
    return out


def test_rfc2617_section_3_5() -> None:
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert challenge is not None and challenge.qop == ("auth", "auth-int")
    value = authorization(
        challenge,
        Credentials("Mufasa", "Circle Of Life"),
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
    )
    params = auth_params(value)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert (params["qop"], params["nc"], params["cnonce"]) == ("auth", "00000001", "0a4f113b")
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1(algorithm: str, expected: str) -> None:
    challenge = parse_challenge(
        'Digest realm="http-auth@example.org", qop="auth, auth-int", '
        f"algorithm={algorithm}, "
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    assert challenge is not None
    value = authorization(
        challenge,
        Credentials("Mufasa", "Circle of Life"),
        method="GET",
        uri="/dir/index.html",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    params = auth_params(value)
    assert params["response"] == expected
    assert params["algorithm"] == algorithm


def test_legacy_challenge_without_qop() -> None:
    # RFC 2069 form: response = H(HA1:nonce:HA2).
    challenge = Challenge(realm="r", nonce="n")
    params = auth_params(
        authorization(challenge, Credentials("u", "p"), method="INVITE", uri="sip:x@h")
    )
    assert "qop" not in params and "cnonce" not in params
    ha1 = hashlib.md5(b"u:r:p").hexdigest()
    ha2 = hashlib.md5(b"INVITE:sip:x@h").hexdigest()
    assert params["response"] == hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()


def test_sess_and_nonce_count() -> None:
    challenge = Challenge(realm="r", nonce="n", algorithm="SHA-256-SESS", qop=("auth",))
    params = auth_params(
        authorization(
            challenge, Credentials("u", "p"), method="BYE", uri="sip:x@h", cnonce="c", nc=26
        )
    )
    assert params["nc"] == "0000001a" and params["algorithm"] == "SHA-256-sess"
    assert len(params["response"]) == 64


UNAUTHORIZED = crlf(
    "SIP/2.0 407 Proxy Authentication Required\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK776asdhds\n"
    "From: <sip:alice@example.com>;tag=1928301774\n"
    "To: <sip:agent@192.0.2.1>;tag=x\n"
    "Call-ID: a84b4c76e66710@pc33.example.com\n"
    "CSeq: 314159 INVITE\n"
    'Proxy-Authenticate: Digest realm="trunk", nonce="abc", algorithm=MD5, qop="auth"\n'
    'Proxy-Authenticate: Digest realm="trunk", nonce="def", algorithm=SHA-256, qop="auth"\n'
    'Proxy-Authenticate: Digest realm="trunk", nonce="ghi", algorithm=SHA-512-256, qop="auth"\n'
    "Proxy-Authenticate: Basic realm=trunk\n"
    "Proxy-Authenticate: Digest garbage\n"
    "Content-Length: 0\n\n"
)


def test_answer_prefers_sha256_and_uses_the_proxy_header() -> None:
    request = parse(INVITE)
    response = parse(UNAUTHORIZED)
    assert isinstance(request, Request) and isinstance(response, Response)
    assert [c.algorithm for c in challenges(response)] == ["MD5", "SHA-256", "SHA-512-256"]
    answer = answer_challenge(request, response, Credentials("alice", "pw"), cnonce="c0")
    assert answer is not None
    name, value = answer
    assert name == "Proxy-Authorization"
    params = auth_params(value)
    assert params["algorithm"] == "SHA-256" and params["nonce"] == "def"
    assert params["uri"] == "sip:agent@192.0.2.1:5060"


def test_nothing_to_answer() -> None:
    assert choose([Challenge("r", "n", algorithm="SHA-512-256")]) is None
    assert choose([Challenge("r", "n", qop=("auth-conf",))]) is None
    assert parse_challenge("Basic realm=x") is None
    with pytest.raises(ValueError):
        authorization(
            Challenge("r", "n", algorithm="X"), Credentials("u", "p"), method="A", uri="u"
        )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Digest",
        'Digest realm="r"',
        'Digest realm="r", nonce="n", nonce="m"',
        'Digest realm="r, nonce="n"',
        'Digest realm="r" nonce="n"',
    ],
)
def test_malformed_challenges(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_challenge(value)
