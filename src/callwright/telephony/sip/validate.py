"""What a user agent server must refuse in a request that parsed (RFC 3261 §8.2).

``parse`` checks syntax; these checks are the semantic rules a UAS applies next, in the
RFC's order: mandatory fields and the transaction identifier (400), method (405 for a
known method we do not serve, 501 for an unknown one), Request-URI scheme (416),
``Require`` (420), body type (415) and ``Accept`` (406). Each outcome is a
``Rejection`` to answer with, or ``None`` to go on. ``check_response`` says which
responses a UAC must drop (RFC 3261 §8.1.3.3).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from callwright.telephony.sip._syntax import split_list
from callwright.telephony.sip.errors import SipParseError
from callwright.telephony.sip.headers import BRANCH_COOKIE
from callwright.telephony.sip.message import Request, Response
from callwright.telephony.sip.uri import SipUri, TelUri

# Methods defined by RFC 3261 and its extensions: a request for one of these that we
# do not serve gets 405 (with Allow); anything else is unknown and gets 501.
KNOWN_METHODS = frozenset(
    {
        "ACK",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    }
)
UA_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REFER", "NOTIFY")
# Bodies we understand, per method; a method not listed has its body ignored.
UA_BODIES: Mapping[str, Collection[str]] = {
    "INVITE": ("application/sdp",),
    "ACK": ("application/sdp",),
    "INFO": ("application/dtmf-relay", "application/dtmf"),
    "NOTIFY": ("message/sipfrag",),
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """The response to send instead of processing the request."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


def check_request(
    request: Request,
    *,
    methods: Collection[str] = UA_METHODS,
    supported: Collection[str] = (),
    bodies: Mapping[str, Collection[str]] = UA_BODIES,
) -> Rejection | None:
    """The first rule ``request`` breaks, or ``None`` if a UAS may process it."""
    try:
        _ = request.from_, request.to, request.call_id, request.cseq
        via = request.top_via
    except SipParseError as exc:
        return Rejection(400, exc.reason)
    branch = via.branch
    if branch is not None and branch.startswith(BRANCH_COOKIE) and len(branch) == 7:
        return Rejection(400, "missing transaction identifier")
    method = request.method
    if method not in methods:
        allow = (("Allow", ", ".join(methods)),)
        if method in KNOWN_METHODS:
            return Rejection(405, f"{method} not allowed", allow)
        return Rejection(501, "unknown method", allow)
    if not isinstance(request.uri, SipUri | TelUri):
        return Rejection(416, "unsupported Request-URI scheme")
    if method not in ("ACK", "CANCEL"):
        wanted = {s.lower() for s in supported}
        try:
            required = request.headers.tokens("Require")
        except SipParseError as exc:
            return Rejection(400, exc.reason)
        missing = [opt for opt in required if opt.lower() not in wanted]
        if missing:
            return Rejection(420, "unsupported extension", (("Unsupported", ", ".join(missing)),))
    accepted = bodies.get(method)
    if accepted is not None and request.body:
        content_type = request.content_type
        encoding = request.headers.get("Content-Encoding")
        if content_type not in accepted or (encoding and encoding.lower() != "identity"):
            return Rejection(415, "unsupported body", (("Accept", ", ".join(accepted)),))
    if method == "INVITE" and not _accepts_sdp(request):
        return Rejection(406, "Accept does not allow application/sdp")
    return None


def _accepts_sdp(request: Request) -> bool:
    values = request.headers.get_all("Accept")
    if not values or not any(v.strip() for v in values):
        return True
    for value in values:
        try:
            items = split_list(value, "Accept")
        except SipParseError:
            return False
        for item in items:
            media = item.split(";", 1)[0].replace(" ", "").lower()
            if media in ("application/sdp", "application/*", "*/*"):
                return True
    return False


def check_response(response: Response) -> str | None:
    """Why a UAC must drop ``response`` (``None`` if it may be matched and processed)."""
    try:
        _ = response.from_, response.to, response.call_id, response.cseq
        vias = response.vias
    except SipParseError as exc:
        return exc.reason
    if len(vias) != 1:
        return "response with more than one Via"
    return None
