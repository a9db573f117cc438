from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.telephony.rtp import (
    DtmfReceiver,
    RtpExtension,
    RtpPacket,
    RtpParseError,
    TelephoneEvent,
    digit_event,
    dtmf_payloads,
    looks_like_rtcp,
    parse_rtp,
    parse_telephone_event,
)

# A PCMU packet as on the wire: V=2, M=1, PT=0, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304.
WIRE = bytes.fromhex("80801234deadbeef01020304") + b"\xff" * 160


def test_parse_wire_packet() -> None:
    packet = parse_rtp(WIRE)
    assert packet == RtpPacket(0, 0x1234, 0xDEADBEEF, 0x01020304, b"\xff" * 160, marker=True)
    assert packet.serialize() == WIRE


def test_csrc_extension_and_padding_round_trip() -> None:
    packet = RtpPacket(
        101,
        65535,
        2**32 - 1,
        7,
        b"\x05\x0a\x00\xa0",
        csrc=(1, 2, 3),
        extension=RtpExtension(0xBEDE, b"\x10\xff\x00\x00"),
        padding=4,
    )
    data = packet.serialize()
    assert data[0] == 0x80 | 0x20 | 0x10 | 3 and data[-1] == 4 and len(data) == 12 + 12 + 8 + 4 + 4
    assert parse_rtp(data) == packet


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter"),
        (WIRE[:11], "shorter"),
        (b"\x40" + WIRE[1:], "version"),
        (b"\x85" + WIRE[1:20], "CSRC"),
        (b"\x90" + WIRE[1:12] + b"\x00\x00", "extension"),
        (b"\x90" + WIRE[1:12] + b"\x00\x00\x00\x09" + b"\x00" * 8, "extension"),
        (b"\xa0" + WIRE[1:12] + b"\x00\x00\x00", "padding"),
        (b"\xa0" + WIRE[1:12] + b"\x00\x00\x00\x09", "padding"),
    ],
)
def test_malformed_packets(data: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError, match=reason):
        parse_rtp(data)


def test_rtcp_detection() -> None:
    assert looks_like_rtcp(bytes([0x81, 200]) + b"\x00" * 26)
    assert not looks_like_rtcp(WIRE)


def test_telephone_event_payload() -> None:
    # RFC 4733 figure: event 5, E=1, volume 10, duration 1280.
    event = parse_telephone_event(b"\x05\x8a\x05\x00")
    assert event == TelephoneEvent(5, True, 10, 1280) and event.digit == "5"
    assert event.serialize() == b"\x05\x8a\x05\x00"
    assert TelephoneEvent(16).digit is None
    assert [digit_event(d) for d in "0*#d"] == [0, 10, 11, 15]
    with pytest.raises(ValueError):
        digit_event("x")
    with pytest.raises(RtpParseError):
        parse_telephone_event(b"\x05\x8a\x05")


def test_dtmf_packet_sequence() -> None:
    packets = dtmf_payloads("#", duration_ms=100)
    events = [parse_telephone_event(p) for p, _ in packets]
    assert [m for _, m in packets] == [True, False, False, False, False, False, False]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {11}


def test_dtmf_receiver_reports_each_press_once() -> None:
    receiver = DtmfReceiver()
    got = []
    for ts, digit in ((1000, "1"), (3000, "1"), (5000, "9")):
        for seq, (payload, marker) in enumerate(dtmf_payloads(digit)):
            packet = RtpPacket(101, seq, ts, 42, payload, marker)
            got.append(receiver.feed(parse_rtp(packet.serialize())))
    assert [g for g in got if g] == ["1", "1", "9"]
    assert receiver.feed(RtpPacket(101, 1, 9999, 42, b"\x00")) is None


def check(data: bytes) -> bool:
    try:
        packet = parse_rtp(data)
    except RtpParseError:
        return False
    assert parse_rtp(packet.serialize()) == packet
    with contextlib.suppress(RtpParseError):
        parse_telephone_event(packet.payload)
    return True


@settings(max_examples=500, deadline=None, database=None)
@given(st.binary(max_size=80))
def test_rtp_fuzz_random_bytes(data: bytes) -> None:
    check(data)


def test_rtp_fuzz_mutations(capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(3550)
    seeds = [WIRE, RtpPacket(101, 1, 2, 3, b"\x01\x02\x03\x04", csrc=(9,), padding=3).serialize()]
    parsed = total = 0
    for _ in range(20000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(3)
            pos = rng.randrange(len(data)) if data else 0
            if op == 0 and data:
                data[pos] ^= 1 << rng.randrange(8)
            elif op == 1:
                del data[pos:]
            else:
                data[pos:pos] = rng.randbytes(rng.randint(1, 4))
        total += 1
        parsed += check(bytes(data))
    with capsys.disabled():
        print(f"\nRTP fuzz: {total} mutated packets, {parsed} parsed, 0 crashes")
