from __future__ import annotations

import pytest
from tests.unit.telephony.sipdata import INVITE, OPTIONS, RINGING, SDP_OFFER, crlf

from callwright.telephony.sip import (
    AbsoluteUri,
    Headers,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    TelUri,
    error_response,
    make_response,
    parse,
    parse_address,
    parse_uri,
)


def request(data: bytes) -> Request:
    msg = parse(data)
    assert isinstance(msg, Request)
    return msg


def test_invite_fields() -> None:
    req = request(INVITE)
    assert req.method == "INVITE"
    assert req.uri == SipUri("192.0.2.1", "agent", port=5060)
    via = req.top_via
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.10", 5062)
    assert via.branch == "z9hG4bK776asdhds" and via.has_rport and via.rport is None
    assert req.from_.display == "Alice" and req.from_.tag == "1928301774"
    assert req.to.tag is None
    assert req.call_id == "a84b4c76e66710@pc33.example.com"
    assert (req.cseq.number, req.cseq.method) == (314159, "INVITE")
    assert req.max_forwards == 70
    assert [str(r.uri) for r in req.record_route] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
    ]
    assert req.contacts[0].address is not None
    assert req.content_type == "application/sdp"
    assert req.body == SDP_OFFER


def test_response_fields() -> None:
    resp = parse(RINGING)
    assert isinstance(resp, Response)
    assert (resp.status, resp.reason) == (180, "Ringing")
    assert resp.top_via.received == "192.0.2.1"
    assert resp.to.tag == "theirs"


def test_compact_forms_and_folding() -> None:
    req = request(
        crlf(
            "BYE sip:b@h.example SIP/2.0\n"
            "v: SIP/2.0/UDP h1.example\n ;branch=z9hG4bKa\n"
            "f: <sip:a@h.example>;tag=1\n"
            "t: sip:b@h.example;tag=2\n"
            "i: abc\n"
            "CSeq: 2\n\tBYE\n"
            "m: <sip:a@h1.example>\n"
            "k: 100rel, timer\n"
            "l: 0\n"
            "\n"
        )
    )
    assert req.top_via.branch == "z9hG4bKa"
    assert req.call_id == "abc"
    assert req.cseq.number == 2
    assert req.to.tag == "2"
    assert req.headers.tokens("Supported") == ("100rel", "timer")
    assert ("Call-ID", "abc") in list(req.headers)
    assert req.headers.get("CALL-id") == "abc" and req.headers.get("i") == "abc"


def test_repeated_and_comma_separated_values() -> None:
    req = request(
        crlf(
            "OPTIONS sip:x@h.example SIP/2.0\n"
            "Via: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/TCP b.example:5070;branch=z9hG4bK2\n"
            "Via: SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK3;received=2001:db8::9\n"
            'Contact: "A, B" <sip:a@h.example>;q=0.5, sip:c@h.example;expires=60\n'
            "From: <sip:a@h.example>;tag=1\nTo: <sip:x@h.example>\nCall-ID: c\nCSeq: 1 OPTIONS\n"
            "\n"
        )
    )
    assert [(v.transport, v.host, v.port) for v in req.vias] == [
        ("UDP", "a.example", None),
        ("TCP", "b.example", 5070),
        ("TLS", "[2001:db8::1]", 5061),
    ]
    contacts = [c.address for c in req.contacts]
    assert contacts[0] is not None and contacts[0].display == "A, B"
    assert contacts[0].params == {"q": "0.5"}
    assert contacts[1] is not None and contacts[1].params == {"expires": "60"}


def test_name_addr_forms() -> None:
    escaped = parse_address(r'"J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98')
    assert escaped.display == 'J Rosenberg \\"'
    assert parse_address("caller<sip:caller@example.com>").display == "caller"
    assert parse_address("Bob  Smith <sip:b@h.example>").display == "Bob Smith"
    # Bare addr-spec: parameters belong to the header, not the URI (RFC 3261 §20.10).
    bare = parse_address("sip:+1972@gw.example;unknownparam")
    assert isinstance(bare.uri, SipUri) and bare.uri.params == {}
    assert bare.params == {"unknownparam": None}
    inner = parse_address("<sip:+1972@gw.example;unknownparam>")
    assert isinstance(inner.uri, SipUri) and inner.uri.params == {"unknownparam": None}
    assert str(parse_address('"A \\"B\\"" <sip:a@h>;tag=x')) == '"A \\"B\\"" <sip:a@h>;tag=x'
    for bad in (
        '"unterminated <sip:a@h>',
        "< sip:a@h>",
        "<sip:a@h >",
        "Bell, Alexander <sip:a@h>",
        "sip:a@h?Route=x",
        "<sip:a@h>;;",
        "<sip:a@h>;tag=1;tag=2",
        "<sip:a@h",
    ):
        with pytest.raises(SipParseError):
            parse_address(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip:alice@atlanta.com", SipUri("atlanta.com", "alice")),
        ("SIPS:Alice@Atlanta.com:5061", SipUri("Atlanta.com", "Alice", port=5061, scheme="sips")),
        ("sip:alice:secretword@atlanta.com;transport=tcp", None),
        ("sip:+1-212-555-1212:1234@gateway.com;user=phone", None),
        ("sip:alice@192.0.2.4", SipUri("192.0.2.4", "alice")),
        ("sip:[2001:db8::10]:5070", SipUri("[2001:db8::10]", port=5070)),
        ("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com", None),
        ("sip:alice;day=tuesday@atlanta.com", SipUri("atlanta.com", "alice;day=tuesday")),
        ("tel:+1-201-555-0123", TelUri("+1-201-555-0123")),
        ("tel:7042;phone-context=example.com", TelUri("7042", {"phone-context": "example.com"})),
        ("urn:service:sos", AbsoluteUri("urn", "service:sos")),
    ],
)
def test_uris_parse_and_round_trip(text: str, expected: object) -> None:
    uri = parse_uri(text)
    if expected is not None:
        assert uri == expected
    assert parse_uri(str(uri)) == uri


def test_sip_uri_parts() -> None:
    uri = parse_uri(
        "sip:alice:pw@atlanta.com:5070;transport=TCP;lr?subject=project&priority=urgent"
    )
    assert isinstance(uri, SipUri)
    assert (uri.user, uri.password, uri.host, uri.port) == ("alice", "pw", "atlanta.com", 5070)
    assert uri.transport == "tcp" and "lr" in uri.params
    assert uri.headers == (("subject", "project"), ("priority", "urgent"))
    assert parse_uri("sip:[::1]").host_port() == ("::1", 5060)  # type: ignore[union-attr]
    assert parse_uri("sips:h.example").host_port() == ("h.example", 5061)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@h.example",
        "sip:a@",
        "sip:a@h.example:",
        "sip:a@h.example:70000",
        "sip:a@h.example:5x",
        "sip:a@1.2.3.999",
        "sip:a@-bad.example",
        "sip:a@[2001:db8::zz]",
        "sip:a@[2001:db8::1",
        "sip:a@h.example;;",
        "sip:a@h.example;lr;lr",
        "sip:a b@h.example",
        "sip:a%4@h.example",
        "sip:a@h.example?noequals",
        "tel:12ab",
        "tel:",
        "<sip:a@h>",
        "1sip:a@h",
        "http:",
    ],
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_content_length_over_udp() -> None:
    extra = OPTIONS + b"trailing junk that is not a message"
    assert request(extra).body == b""
    no_length = OPTIONS.replace(b"Content-Length: 0\r\n", b"") + b"body"
    assert request(no_length).body == b"body"
    short = OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 5") + b"abc"
    with pytest.raises(SipParseError, match="larger"):
        parse(short)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"INVITE sip:a@h SIP/2.0\r\n", 400),
        (OPTIONS.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
        (OPTIONS.replace(b"SIP/2.0\r\n", b"HTTP/1.1\r\n", 1), 400),
        (OPTIONS.replace(b"OPTIONS sip", b"OPT IONS sip", 1), 400),
        (OPTIONS.replace(b"Max-Forwards: 70", b"Max-Forwards: 256"), 400),
        (OPTIONS.replace(b"Max-Forwards: 70", b"Max-Forwards: +7"), 400),
        (OPTIONS.replace(b"Max-Forwards: 70", b"Max-Forwards: \xd9\xa1"), 400),
        (OPTIONS.replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"), 400),
        (OPTIONS.replace(b"CSeq: 1 OPTIONS", b"CSeq: 4294967296 OPTIONS"), 400),
        (OPTIONS.replace(b"Call-ID: opt-1", b"Call-ID: opt 1"), 400),
        (OPTIONS.replace(b"Max-Forwards", b"Max Forwards"), 400),
        (OPTIONS.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\n"), 400),
        (OPTIONS.replace(b"Max-Forwards: 70", b"Max-Forwards: 7\x000"), 400),
        (OPTIONS.replace(b"alice", b"\xff\xfe"), 400),
        (b" " + OPTIONS, 400),
        (OPTIONS.replace(b"Via:", b" Via:"), 400),
        (OPTIONS.replace(b"branch=z9hG4bKopt1", b"branch"), 400),
        (OPTIONS.replace(b"branch=z9hG4bKopt1", b"received=example.com"), 400),
        (OPTIONS.replace(b"SIP/2.0/TCP 192.0.2.10:5062", b"SIP/2.0/TCP"), 400),
        (RINGING.replace(b"180 Ringing", b"1800 Ringing"), 400),
        (RINGING.replace(b"180 Ringing", b"099 Ringing"), 400),
        (RINGING.replace(b"180 Ringing", b"180"), 400),
        (RINGING.replace(b"SIP/2.0 180", b"SIP/2.1 180"), 505),
    ],
)
def test_malformed_messages(data: bytes, status: int) -> None:
    with pytest.raises(SipParseError) as info:
        parse(data)
    assert info.value.status == status


def test_empty_reason_and_utf8() -> None:
    resp = parse(RINGING.replace(b"180 Ringing", "200 Très bien".encode()))
    assert isinstance(resp, Response) and resp.reason == "Très bien"
    resp = parse(RINGING.replace(b"180 Ringing", b"100 "))
    assert isinstance(resp, Response) and resp.reason == ""


def test_missing_mandatory_fields_raise_on_access_only() -> None:
    req = request(OPTIONS.replace(b"Call-ID: opt-1@example.com\r\n", b""))
    with pytest.raises(SipParseError, match="missing Call-ID"):
        _ = req.call_id


def test_serialize_round_trip() -> None:
    for data in (INVITE, OPTIONS, RINGING):
        msg = parse(data)
        assert parse(msg.serialize()) == msg
    assert request(INVITE).serialize() == INVITE


def test_serialize_sets_content_length() -> None:
    req = request(OPTIONS)
    req.body = b"hello"
    assert b"\r\nContent-Length: 5\r\n\r\nhello" in req.serialize()
    req.headers.remove("Content-Length")
    assert req.serialize().endswith(b"Content-Length: 5\r\n\r\nhello")


def test_headers_container() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a.example;branch=z9hG4bK1"), ("X-Thing", "1")])
    headers.prepend("Via", "SIP/2.0/UDP b.example;branch=z9hG4bK2")
    assert [v for n, v in headers if n == "Via"][0].startswith("SIP/2.0/UDP b.")
    headers.set("x-thing", "2")
    assert headers.get("X-THING") == "2" and len(headers) == 3
    headers.add("X-Thing", "3")
    assert headers.get_all("x-thing") == ["2", "3"]
    headers.remove("X-Thing")
    assert "X-Thing" not in headers and "Via" in headers


def test_parsed_cache_follows_changes() -> None:
    req = request(OPTIONS)
    assert req.top_via.host == "192.0.2.10"
    req.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKnew")
    assert req.top_via.host == "192.0.2.99"


def test_make_response() -> None:
    req = request(INVITE)
    resp = make_response(req, 200, to_tag="as83kd9bs", body=b"v=0\r\n")
    assert resp.reason == "OK"
    assert resp.to.tag == "as83kd9bs"
    assert resp.vias == req.vias
    assert (resp.from_, resp.call_id, resp.cseq) == (req.from_, req.call_id, req.cseq)
    assert len(resp.record_route) == 2
    trying = make_response(req, 100)
    assert trying.to.tag is None and trying.record_route == ()
    again = parse(resp.serialize())
    assert isinstance(again, Response) and again.body == b"v=0\r\n"


def test_error_response_for_unparsable_request() -> None:
    bad = OPTIONS.replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
    answer = error_response(bad, 400)
    assert answer is not None
    resp = parse(answer)
    assert isinstance(resp, Response) and resp.status == 400
    assert resp.top_via.branch == "z9hG4bKopt1" and resp.call_id == "opt-1@example.com"
    assert error_response(RINGING) is None
    assert error_response(b"garbage") is None
    assert error_response(OPTIONS.replace(b"Via:", b"X-Via:")) is None


def test_stream_framer_cuts_by_content_length() -> None:
    framer = StreamFramer()
    stream = b"\r\n\r\n" + INVITE + OPTIONS + b"\r\n" + INVITE
    out: list[bytes] = []
    for i in range(0, len(stream), 7):
        out += framer.feed(stream[i : i + 7])
    assert out == [INVITE, OPTIONS, INVITE]
    assert framer.pending == 0
    assert [parse(m).headers.get("CSeq") for m in out] == [
        "314159 INVITE",
        "1 OPTIONS",
        "314159 INVITE",
    ]


@pytest.mark.parametrize(
    "data",
    [
        OPTIONS.replace(b"Content-Length: 0\r\n", b""),
        OPTIONS.replace(b"Content-Length: 0", b"Content-Length: -1"),
        OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 0"),
        OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 99999999999"),
    ],
)
def test_stream_framer_rejects_bad_framing(data: bytes) -> None:
    with pytest.raises(SipParseError):
        StreamFramer().feed(data)


def test_stream_framer_bounds_the_header_section() -> None:
    framer = StreamFramer(max_header_bytes=1000)
    with pytest.raises(SipParseError, match="too large"):
        for _ in range(100):
            framer.feed(b"X-Filler: " + b"a" * 50 + b"\r\n")


# ------------------------------------------------ memos of repeated text (message.py)


def _clear_memos() -> None:
    from callwright.telephony.sip import headers, message, uri

    for memo in (
        message._LINES,
        message._FIELD_NAMES,
        message._REQUEST_LINES,
        message._STATUS_LINES,
        headers._UNTAGGED,
        headers._SENT_BY,
        uri._MEMO,
    ):
        memo.clear()


def _fields(msg: Request | Response) -> tuple[object, ...]:
    return (
        list(msg.headers),
        repr(msg.vias),
        repr(msg.from_),
        repr(msg.to),
        msg.call_id,
        msg.cseq,
        repr(msg.contacts),
        repr(msg.record_route),
        msg.max_forwards,
        msg.content_type,
        msg.body,
    )


@pytest.mark.parametrize("data", [INVITE, OPTIONS, RINGING])
def test_remembered_text_parses_as_fresh_text(data: bytes) -> None:
    _clear_memos()
    fresh = parse(data)
    again = parse(data)  # every memo warm now
    assert _fields(again) == _fields(fresh)
    assert again.serialize() == fresh.serialize()


def test_tag_split_gives_the_whole_value_parse() -> None:
    _clear_memos()
    base = "BYE sip:b@h.example SIP/2.0\nVia: SIP/2.0/UDP h1.example;branch=z9hG4bKa\n"
    tail = "To: <sip:b@h.example>\nCall-ID: t1\nCSeq: 2 BYE\nContent-Length: 0\n\n"
    quoted = request(crlf(base + 'From: "a;tag=b" <sip:a@h.example>;tag=c\n' + tail))
    assert quoted.from_.display == "a;tag=b" and quoted.from_.tag == "c"
    # The untagged part is remembered from the first message; the second repeats the tag.
    request(crlf(base + "From: <sip:a@h.example>;x=1;tag=1\n" + tail))
    with pytest.raises(SipParseError, match="repeated"):
        parse(crlf(base + "From: <sip:a@h.example>;x=1;tag=1;tag=2\n" + tail))
    spaced = request(crlf(base + "From: <sip:a@h.example> ;tag=7\n" + tail))
    assert spaced.from_.tag == "7" and spaced.from_.params == {"tag": "7"}


def test_a_line_seen_clean_is_still_checked_for_bare_cr_and_controls() -> None:
    _clear_memos()
    request(INVITE)
    for bad in (b"Max-Forwards: 70\r", b"Max-Forwards: 7\n0", b"Max-Forwards: 7\x010"):
        with pytest.raises(SipParseError):
            parse(INVITE.replace(b"Max-Forwards: 70", bad))
    with pytest.raises(SipParseError):
        parse(
            INVITE.replace(b"INVITE sip:agent@192.0.2.1:5060 SIP/2.0", b"INVITE sip:a\rb SIP/2.0")
        )


def test_via_sent_by_remembered_but_parameters_checked_each_time() -> None:
    _clear_memos()
    request(INVITE)
    for params in (b";branch", b";branch=z9hG4bK1;received=nothost", b";rport=99999"):
        with pytest.raises(SipParseError):
            _ = request(INVITE.replace(b";branch=z9hG4bK776asdhds;rport", params)).top_via
    with pytest.raises(SipParseError):
        parse(INVITE.replace(b"192.0.2.10:5062;branch", b"192.0.2.10:5062x;branch"))
