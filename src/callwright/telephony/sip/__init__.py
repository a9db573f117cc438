"""callwright's SIP core, sans-I/O: messages, URIs, SDP, digest auth, transactions, dialogs.

Hand-written because no maintained asyncio SIP library fits (pjsua2 does not build
here; pyVoIP is unmaintained and thread-based). Nothing in this package opens a socket
or reads a clock: bytes and the current time are arguments, and the results are
messages or lists of effects for the transport to carry out. Malformed input from the
network raises ``SipParseError`` and nothing else.
"""

from callwright.telephony.sip.errors import SipParseError
from callwright.telephony.sip.headers import Contact, CSeq, Headers, NameAddr, Via
from callwright.telephony.sip.message import (
    Message,
    Request,
    Response,
    StreamFramer,
    error_response,
    make_response,
    parse,
    parse_address,
)
from callwright.telephony.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri

__all__ = [
    "AbsoluteUri",
    "CSeq",
    "Contact",
    "Headers",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "SipParseError",
    "SipUri",
    "StreamFramer",
    "TelUri",
    "Uri",
    "Via",
    "error_response",
    "make_response",
    "parse",
    "parse_address",
    "parse_uri",
]
