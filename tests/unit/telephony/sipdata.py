"""Sample SIP messages shared by the telephony unit tests."""

from __future__ import annotations

from tests.conftest import EXTERNAL_DATA

TORTURE = EXTERNAL_DATA / "sip-torture" / "rfc4475"

SDP_OFFER = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 8 0 101\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)


def crlf(text: str) -> bytes:
    """Test messages are written with \\n line ends; the wire uses CRLF."""
    return text.replace("\n", "\r\n").encode()


INVITE = (
    crlf(
        "INVITE sip:agent@192.0.2.1:5060 SIP/2.0\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK776asdhds;rport\n"
        "Max-Forwards: 70\n"
        'From: "Alice" <sip:alice@example.com>;tag=1928301774\n'
        "To: <sip:agent@192.0.2.1>\n"
        "Call-ID: a84b4c76e66710@pc33.example.com\n"
        "CSeq: 314159 INVITE\n"
        "Contact: <sip:alice@192.0.2.10:5062>\n"
        "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\n"
        "Content-Type: application/sdp\n"
        f"Content-Length: {len(SDP_OFFER)}\n"
        "\n"
    )
    + SDP_OFFER
)

OPTIONS = crlf(
    "OPTIONS sip:agent@192.0.2.1 SIP/2.0\n"
    "Via: SIP/2.0/TCP 192.0.2.10:5062;branch=z9hG4bKopt1\n"
    "Max-Forwards: 70\n"
    "From: <sip:alice@example.com>;tag=77\n"
    "To: <sip:agent@192.0.2.1>\n"
    "Call-ID: opt-1@example.com\n"
    "CSeq: 1 OPTIONS\n"
    "Content-Length: 0\n"
    "\n"
)

RINGING = crlf(
    "SIP/2.0 180 Ringing\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKout1;received=192.0.2.1\n"
    "From: <sip:agent@192.0.2.1>;tag=ours\n"
    "To: <sip:bob@example.com>;tag=theirs\n"
    "Call-ID: out-1@192.0.2.1\n"
    "CSeq: 1 INVITE\n"
    "Contact: <sip:bob@192.0.2.20>\n"
    "Content-Length: 0\n"
    "\n"
)
