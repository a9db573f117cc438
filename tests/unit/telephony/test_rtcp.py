"""RTCP packets and receiver statistics (RFC 3550 §6, A.1, A.3, A.8): byte vectors
written out by hand, round trips, every malformation, fuzzing."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.telephony.rtcp import (
    Bye,
    OtherRtcp,
    ReceiverReport,
    ReportBlock,
    RtcpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    SourceStats,
    compound,
    middle32,
    ntp_timestamp,
    parse_rtcp,
    round_trip,
)

BLOCK = ReportBlock(0x55667788, 0x40, 3, 0x00010010, 0x20, 0xB7052000, 0x00054000)
RR_BYTES = bytes.fromhex(
    "81c90007 11223344 55667788 40000003 00010010 00000020 b7052000 00054000".replace(" ", "")
)


def test_receiver_report_bytes() -> None:
    assert ReceiverReport(0x11223344, (BLOCK,)).serialize() == RR_BYTES
    assert parse_rtcp(RR_BYTES) == [ReceiverReport(0x11223344, (BLOCK,))]


def test_sender_report_bytes() -> None:
    sr = SenderReport(0x11223344, 0x0102030405060708, 0xA0B0C0D0, 7, 1120)
    data = bytes.fromhex(
        "80c80006 11223344 0102030405060708 a0b0c0d0 00000007 00000460".replace(" ", "")
    )
    assert sr.serialize() == data
    assert parse_rtcp(data) == [sr]


@pytest.mark.parametrize(
    ("name", "hex_bytes"),
    [
        ("ab", "81ca0003 11223344 01026162 00000000"),  # item ends on a word: 4 nulls
        ("abc", "81ca0003 11223344 01036162 63000000"),
    ],
)
def test_sdes_cname_bytes(name: str, hex_bytes: str) -> None:
    data = bytes.fromhex(hex_bytes.replace(" ", ""))
    sdes = SourceDescription.cname(0x11223344, name)
    assert sdes.serialize() == data
    (parsed,) = parse_rtcp(data)
    assert isinstance(parsed, SourceDescription)
    assert parsed.chunks[0].ssrc == 0x11223344 and parsed.chunks[0].cname == name


def test_bye_bytes() -> None:
    data = bytes.fromhex("81cb0002 11223344 03627965".replace(" ", ""))
    assert Bye((0x11223344,), "bye").serialize() == data
    assert parse_rtcp(data) == [Bye((0x11223344,), "bye")]
    assert Bye((1, 2)).serialize() == bytes.fromhex("82cb0002 00000001 00000002".replace(" ", ""))


def test_negative_cumulative_loss_is_24_bit_twos_complement() -> None:
    block = ReportBlock(1, 0, -1, 0, 0)
    data = ReceiverReport(2, (block,)).serialize()
    assert data[12:16] == b"\x00\xff\xff\xff"
    (parsed,) = parse_rtcp(data)
    assert isinstance(parsed, ReceiverReport) and parsed.reports[0].cumulative_lost == -1
    clamped = ReportBlock(1, 0, 1 << 30, 0, 0).serialize()
    assert clamped[4:8] == b"\x00\x7f\xff\xff"


def test_compound_round_trip_with_padding_and_unknown_types() -> None:
    packets = [
        SenderReport(9, ntp_timestamp(1_700_000_000.25), 1234, 50, 8000, (BLOCK, BLOCK)),
        SourceDescription((SdesChunk(9, ((1, b"cw@host"), (6, b"callwright"))), SdesChunk(10, ()))),
        OtherRtcp(204, 3, b"name" + b"\x00" * 4),
        Bye((9,), "done"),
    ]
    data = compound(*packets)
    assert parse_rtcp(data) == packets
    # Padding on the last packet (P bit, count in the last octet) is removed.
    last = bytearray(Bye((9,)).serialize())
    last[0] |= 0x20
    last[3] += 1
    padded = bytes(data) + bytes(last) + b"\x00\x00\x00\x04"
    assert parse_rtcp(padded)[-1] == Bye((9,))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\xc9", "shorter than an RTCP header"),
        (b"\x40\xc9\x00\x01" + bytes(4), "version 1"),
        (b"\x80\xc9\x00\x02" + bytes(4), "length beyond the datagram"),
        (b"\x80\xc9\x00\x01" + bytes(4) + b"\x80", "trailing octets after the last packet"),
        (b"\x81\xc9\x00\x01" + bytes(4), "RR shorter than its report count"),
        (b"\x81\xc8\x00\x06" + bytes(24), "SR shorter than its report count"),
        (b"\xa0\xc9\x00\x01" + bytes(4) + RR_BYTES, "padding before the last packet"),
        (b"\xa0\xc9\x00\x01" + bytes(4), "bad padding"),
        (b"\xa0\xc9\x00\x01" + b"\x00\x00\x00\x09", "bad padding"),
        (b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x09ab", "SDES item beyond its packet"),
        (b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x02ab", "SDES items without their end"),
        (b"\x82\xca\x00\x02\x00\x00\x00\x01" + bytes(4), "SDES chunk cut short"),
        (b"\x82\xcb\x00\x01" + bytes(4), "BYE shorter than its source count"),
        (b"\x81\xcb\x00\x02" + bytes(4) + b"\x09abc", "BYE reason beyond its packet"),
        (b"\x80\x64\x00\x00", "packet type 100 is not RTCP"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpParseError) as caught:
        parse_rtcp(data)
    assert caught.value.reason == reason


def test_ntp_timestamp_and_middle_bits() -> None:
    assert ntp_timestamp(0.0) == 2_208_988_800 << 32
    assert ntp_timestamp(1.5) == (2_208_988_801 << 32) | 0x80000000
    assert middle32(0x0102030405060708) == 0x03040506


def test_round_trip_time_rfc3550_example() -> None:
    # §6.4.1: A = 0xb710:8000, LSR = 0xb705:2000, DLSR = 0x0005:4000 -> RTT 6.125 s.
    arrival = 0xB7108000 << 16
    assert round_trip(BLOCK, arrival) == 6.125
    assert round_trip(ReportBlock(1, 0, 0, 0, 0, lsr=0, dlsr=0), arrival) is None
    assert round_trip(ReportBlock(1, 0, 0, 0, 0, lsr=0xB7200000), arrival) is None


def feed(stats: SourceStats, seqs: list[int], arrival_step: float = 0.02) -> None:
    for index, seq in enumerate(seqs):
        stats.update(seq % 65536, (seq * 160) % (1 << 32), 1000.0 + index * arrival_step)


def test_sequence_stats_in_order_across_the_wrap() -> None:
    stats = SourceStats(65500, 8000)
    feed(stats, list(range(65500, 65600)))
    # Probation takes the first packet; the second one is the base (A.1).
    assert stats.received == 99 and stats.lost == 0 and stats.cycles == 65536
    block = stats.report(0xABC)
    assert block.highest_seq == 65599 and block.fraction_lost == 0
    assert block.cumulative_lost == 0 and block.jitter == 0


def test_loss_fraction_per_interval_and_cumulative() -> None:
    stats = SourceStats(1, 8000)
    feed(stats, [s for s in range(1, 102) if s % 10 != 5])  # 2..101 expected: 10 lost
    first = stats.report(1)
    assert (first.cumulative_lost, first.highest_seq) == (10, 101)
    assert first.fraction_lost == (10 << 8) // 100
    feed(stats, list(range(102, 202)))  # nothing lost in this interval
    second = stats.report(1)
    assert second.fraction_lost == 0 and second.cumulative_lost == 10


def test_duplicates_make_cumulative_loss_negative() -> None:
    stats = SourceStats(1, 8000)
    feed(stats, [1, 2, 3, 3, 3, 4])
    block = stats.report(1)
    assert block.cumulative_lost == -2 and block.fraction_lost == 0


def test_restarted_source_is_detected_by_two_in_sequence() -> None:
    stats = SourceStats(1, 8000)
    feed(stats, list(range(1, 11)))
    assert not stats.update(40000, 0, 2000.0)  # a jump: not yet believed
    assert stats.update(40001, 160, 2000.02)  # it goes on from there: restarted
    assert stats.base_seq == 40001 and stats.received == 1


def test_jitter_follows_a8() -> None:
    steady = SourceStats(1, 8000)
    feed(steady, list(range(1, 200)))
    assert steady.jitter == 0
    wobbly = SourceStats(1, 8000)
    for seq in range(1, 400):
        late = 0.01 if seq % 2 else 0.0  # every other packet 80 samples late
        wobbly.update(seq, seq * 160, seq * 0.02 + late)
    # J += (|D| - J) / 16 with |D| = 80 at every step converges to 80.
    assert 79 < wobbly.jitter <= 80
    events = SourceStats(1, 8000)
    for seq in range(1, 50):
        events.update(seq, None, seq * 0.05)  # RFC 4733 packets: no jitter
    assert events.jitter == 0 and events.received == 48


blocks = st.builds(
    ReportBlock,
    st.integers(0, 2**32 - 1),
    st.integers(0, 255),
    st.integers(-(2**23), 2**23 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)
reports = st.lists(blocks, max_size=4).map(tuple)
packets = st.one_of(
    st.builds(
        SenderReport,
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        reports,
    ),
    st.builds(ReceiverReport, st.integers(0, 2**32 - 1), reports),
    st.builds(
        lambda ssrc, names: SourceDescription(
            tuple(SdesChunk(ssrc + i, ((1, n),)) for i, n in enumerate(names))
        ),
        st.integers(0, 2**31),
        st.lists(st.binary(min_size=1, max_size=40), max_size=3),
    ),
    st.builds(
        Bye,
        st.lists(st.integers(0, 2**32 - 1), max_size=3).map(tuple),
        st.text(max_size=20).filter(lambda t: len(t.encode()) < 255),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(packets, min_size=1, max_size=4))
def test_round_trip_property(found: list[SenderReport | ReceiverReport]) -> None:
    assert parse_rtcp(compound(*found)) == found


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_parser_raises_only_its_error_on_random_bytes(data: bytes) -> None:
    with contextlib.suppress(RtcpParseError):
        parse_rtcp(data)


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(packets, min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 400),
)
def test_parser_survives_mutated_compounds(
    found: list[SenderReport], flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(compound(*found))
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    with contextlib.suppress(RtcpParseError):
        parse_rtcp(bytes(data[: max(cut, 1)]))


def test_sdes_item_longer_than_255_is_refused_on_build() -> None:
    with pytest.raises(ValueError):
        SourceDescription.cname(1, "x" * 256).serialize()
    with pytest.raises(ValueError):
        ReceiverReport(1, (BLOCK,) * 32).serialize()
    assert struct.calcsize("!I") == 4
