from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from tests.unit.telephony.fuzzing import mutated, random_mutations
from tests.unit.telephony.sipdata import SDP_OFFER, TORTURE

from callwright.telephony.sip import SipParseError, parse
from callwright.telephony.sip.sdp import (
    AudioSession,
    LocalAudio,
    SessionDescription,
    accept_answer,
    answer_offer,
    make_offer,
    parse_sdp,
    with_direction,
)

LOCAL = LocalAudio("203.0.113.5", 40000)


def sdp(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def offer_with(*media_lines: str, session_c: str = "c=IN IP4 192.0.2.10") -> SessionDescription:
    head = ["v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-"]
    if session_c:
        head.append(session_c)
    return parse_sdp(sdp(*head, "t=0 0", *media_lines))


def negotiate(
    offer: SessionDescription, **kwargs: object
) -> tuple[SessionDescription, AudioSession]:
    result = answer_offer(offer, LOCAL, 7, 1, **kwargs)  # type: ignore[arg-type]
    assert result is not None
    return result


def test_parse_offer() -> None:
    offer = parse_sdp(SDP_OFFER)
    assert offer.origin.username == "alice" and offer.origin.session_version == "2890844526"
    assert offer.connection is not None and offer.connection.address == "192.0.2.10"
    (audio,) = offer.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == (
        "audio",
        49170,
        "RTP/AVP",
        ["8", "0", "101"],
    )
    assert audio.rtpmap() == {8: ("PCMA", 8000), 0: ("PCMU", 8000), 101: ("telephone-event", 8000)}
    assert audio.fmtp(101) == "0-16" and audio.ptime == 20 and audio.direction == "sendrecv"
    assert parse_sdp(offer.serialize()) == offer


def test_answer_uses_our_preference_and_the_offered_event_type() -> None:
    answer, session = negotiate(parse_sdp(SDP_OFFER))
    assert session == AudioSession("PCMU", 0, 8000, "192.0.2.10", 49170, 101, 20, "sendrecv")
    (media,) = answer.media
    assert media.port == 40000 and media.formats == ["0", "101"]
    assert media.fmtp(101) == "0-16" and media.ptime == 20
    assert answer.connection is not None and answer.connection.address == "203.0.113.5"
    text = answer.serialize().decode()
    assert "m=audio 40000 RTP/AVP 0 101\r\n" in text and "a=sendrecv\r\n" in text

    pcma_first = answer_offer(
        parse_sdp(SDP_OFFER), LocalAudio("203.0.113.5", 40000, ("PCMA",)), 7, 1
    )
    assert (
        pcma_first is not None and pcma_first[1].codec == "PCMA" and pcma_first[1].payload_type == 8
    )


def test_dynamic_payload_type_and_static_without_rtpmap() -> None:
    _, session = negotiate(offer_with("m=audio 5004 RTP/AVP 96 8", "a=rtpmap:96 pcmu/8000"))
    assert (session.codec, session.payload_type, session.telephone_event) == ("PCMU", 96, None)
    _, session = negotiate(offer_with("m=audio 5004 RTP/AVP 8"))
    assert (session.codec, session.payload_type) == ("PCMA", 8)


def test_unreadable_attributes_are_ignored() -> None:
    offer = offer_with("m=audio 5004 RTP/AVP 0 31", "a=rtpmap:31 LPC", "a=ptime:0")
    assert offer.media[0].rtpmap() == {0: ("PCMU", 8000)} and offer.media[0].ptime is None
    assert negotiate(offer)[1].ptime == 20


def test_no_common_codec_is_refused() -> None:
    assert (
        answer_offer(offer_with("m=audio 5004 RTP/AVP 18", "a=rtpmap:18 G729/8000"), LOCAL, 1, 1)
        is None
    )
    assert answer_offer(offer_with("m=audio 5004 RTP/SAVP 0"), LOCAL, 1, 1) is None
    assert (
        answer_offer(offer_with("m=audio 5004 RTP/AVP 96", "a=rtpmap:96 PCMU/16000"), LOCAL, 1, 1)
        is None
    )


def test_streams_are_answered_in_order_and_extras_refused() -> None:
    offer = offer_with(
        "m=video 5006 RTP/AVP 31",
        "m=audio 0 RTP/AVP 0",
        "m=audio 5004 RTP/AVP 0",
        "m=audio 5008 RTP/AVP 8",
    )
    answer, session = negotiate(offer)
    assert [(m.media, m.port) for m in answer.media] == [
        ("video", 0),
        ("audio", 0),
        ("audio", 40000),
        ("audio", 0),
    ]
    assert answer.media[0].formats == ["31"]
    assert session.remote_port == 5004
    assert parse_sdp(answer.serialize()) == answer


@pytest.mark.parametrize(
    ("offered", "ours", "expected"),
    [
        ("a=sendrecv", "sendrecv", "sendrecv"),
        ("a=sendonly", "sendrecv", "recvonly"),
        ("a=recvonly", "sendrecv", "sendonly"),
        ("a=inactive", "sendrecv", "inactive"),
        ("a=sendrecv", "sendonly", "sendonly"),
        ("a=sendonly", "sendonly", "inactive"),
        ("a=ptime:30", "inactive", "inactive"),
    ],
)
def test_direction(offered: str, ours: str, expected: str) -> None:
    answer, session = negotiate(offer_with("m=audio 5004 RTP/AVP 0", offered), direction=ours)
    assert session.direction == expected == answer.media[0].direction
    assert session.sends == (expected in ("sendrecv", "sendonly"))


def test_old_style_hold_and_media_level_connection() -> None:
    _, held = negotiate(offer_with("m=audio 5004 RTP/AVP 0", session_c="c=IN IP4 0.0.0.0"))
    assert held.direction == "inactive"
    _, session = negotiate(
        offer_with("m=audio 5004 RTP/AVP 0", "c=IN IP6 2001:db8::7", "a=ptime:30", session_c="")
    )
    assert (session.remote_address, session.ptime) == ("2001:db8::7", 30)


def test_offer_and_accept_answer() -> None:
    offer = make_offer(LOCAL, 99, 1)
    assert offer.media[0].formats == ["0", "8", "101"]
    assert parse_sdp(offer.serialize()) == offer
    remote = LocalAudio("198.51.100.2", 6000, ("PCMA", "PCMU"), telephone_event=None)
    result = answer_offer(parse_sdp(offer.serialize()), remote, 5, 5)
    assert result is not None
    answer, theirs = result
    ours = accept_answer(offer, parse_sdp(answer.serialize()))
    assert ours == AudioSession("PCMA", 8, 8000, "198.51.100.2", 6000, None, 20, "sendrecv")
    assert (theirs.codec, theirs.remote_port) == ("PCMA", 40000)
    refused = parse_sdp(answer.serialize().replace(b"m=audio 6000", b"m=audio 0"))
    assert accept_answer(offer, refused) is None


def test_hold_reoffer() -> None:
    offer = make_offer(LOCAL, 99, 1)
    held = with_direction(offer, "sendonly", 2)
    assert held.origin.session_version == "2" and held.media[0].direction == "sendonly"
    assert offer.media[0].direction == "sendrecv"
    result = answer_offer(held, LocalAudio("198.51.100.2", 6000), 5, 5)
    assert result is not None and result[1].direction == "recvonly"
    ours = accept_answer(held, result[0])
    assert ours is not None and ours.direction == "sendonly"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"o=- 1 1 IN IP4 h\r\n",
        sdp("v=1", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0"),
        sdp("v=0", "s=-", "t=0 0"),
        sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-"),
        sdp("v=0", "o=- x 1 IN IP4 192.0.2.1", "s=-", "t=0 0"),
        sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "m=audio 5004 RTP/AVP 0"),
        sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 1.2.3.4.5", "t=0 0"),
        sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP6 192.0.2.1", "t=0 0"),
        sdp(
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 h",
            "t=0 0",
            "m=audio 70000 RTP/AVP 0",
        ),
        sdp(
            "v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 h", "t=0 0", "m=audio 5 RTP/AVP 128"
        ),
        sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 h", "t=0 0", "m=audio 5 RTP/AVP ²"),
        sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "c=IN IP4 h", "c=IN IP4 h"),
        sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "x=unknown"),
        sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "m=audio 5 RTP/AVP 0", "o=again"),
        sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "a =sendrecv"),
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=\xff\r\nt=0 0\r\n",
    ],
)
def test_malformed_sdp(body: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_sdp(body)


def test_torture_sdp_bodies() -> None:
    bodies = 0
    for path in sorted(TORTURE.glob("*.dat")):
        try:
            msg = parse(path.read_bytes())
        except SipParseError:
            continue
        if msg.content_type == "application/sdp" and msg.body:
            session = parse_sdp(msg.body)
            assert session.media
            bodies += 1
    assert bodies >= 8


SDP_SEEDS = [
    SDP_OFFER,
    make_offer(LOCAL, 1, 1).serialize(),
    sdp(
        "v=0",
        "o=- 1 1 IN IP6 2001:db8::1",
        "s=x",
        "c=IN IP6 2001:db8::1",
        "t=0 0",
        "m=video 5006 RTP/AVP 31",
        "m=audio 5004 RTP/AVP 96 0",
        "a=rtpmap:96 telephone-event/8000",
        "a=sendonly",
    ),
]


def exercise_sdp(data: bytes) -> bool:
    try:
        session = parse_sdp(data)
    except SipParseError:
        return False
    assert parse_sdp(session.serialize()) == session
    result = answer_offer(session, LOCAL, 1, 1)
    if result is not None:
        assert parse_sdp(result[0].serialize()) == result[0]
    accept_answer(make_offer(LOCAL, 1, 1), session)
    return True


def test_sdp_fuzz(capsys: pytest.CaptureFixture[str]) -> None:
    runs = {"examples": 0, "parsed": 0}

    @settings(
        max_examples=600,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(mutated(SDP_SEEDS))
    def run(data: bytes) -> None:
        runs["examples"] += 1
        runs["parsed"] += exercise_sdp(data)

    run()
    bulk = random_mutations(SDP_SEEDS, 5000, seed=4566)
    parsed = sum(exercise_sdp(data) for data in bulk)
    with capsys.disabled():
        print(
            f"\nSDP fuzz: {runs['examples']} hypothesis examples ({runs['parsed']} parsed), "
            f"{len(bulk)} seeded mutations ({parsed} parsed)"
        )
