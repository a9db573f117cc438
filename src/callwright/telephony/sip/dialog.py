"""SIP dialogs (RFC 3261 §12) and the requests a user agent builds.

A dialog is the peer-to-peer relationship an INVITE and its 2xx establish, identified by
Call-ID, local tag and remote tag. It holds what every later request needs: the route
set (from Record-Route), the remote target (from Contact), and both CSeq counters.
``Dialog.request`` builds in-dialog requests (BYE, re-INVITE, REFER, INFO, NOTIFY...),
``Dialog.ack`` the ACK for a 2xx, and ``Dialog.receive`` checks an incoming in-dialog
request. ``Dialogs`` finds the dialog of a message; a request with a To tag that
matches none is answered 481 (``unknown_dialog``).

Identifiers (tags, branches, Call-IDs) come from ``secrets``: random, not clock-based.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from callwright.telephony.sip.errors import SipParseError
from callwright.telephony.sip.headers import BRANCH_COOKIE, Headers, NameAddr, Via
from callwright.telephony.sip.message import Request, Response, make_response
from callwright.telephony.sip.uri import SipUri, Uri

# Requests that carry our Contact because they set or refresh the remote target.
_CONTACT_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


def new_tag() -> str:
    return secrets.token_hex(8)


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(10)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"


def _with_branch(via: Via) -> Via:
    params: dict[str, str | None] = {"branch": new_branch()}
    params.update((k, v) for k, v in via.params.items() if k != "branch")
    return Via(via.transport, via.host, via.port, params, via.protocol)


def _bare(addr: NameAddr) -> NameAddr:
    """The address without the header parameters that belong to one request (tag...)."""
    return NameAddr(addr.uri, addr.display)


def new_request(
    method: str,
    uri: Uri,
    *,
    from_: NameAddr,
    to: NameAddr,
    via: Via,
    call_id: str,
    cseq: int = 1,
    contact: NameAddr | None = None,
    route: Iterable[NameAddr] = (),
    body: bytes = b"",
    content_type: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> Request:
    """A request outside any dialog (initial INVITE, OPTIONS, REGISTER): RFC 3261 §8.1.1.

    ``via`` gives our transport, host and port; a fresh branch is added. ``from_``
    should carry our tag (``new_tag()``).
    """
    items = [
        ("Via", str(_with_branch(via))),
        ("Max-Forwards", "70"),
        *(("Route", str(r)) for r in route),
        ("From", str(from_)),
        ("To", str(to)),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact is not None:
        items.append(("Contact", str(contact)))
    if content_type is not None:
        items.append(("Content-Type", content_type))
    items += extra
    return Request(method, uri, Headers(items), body)


def retry_request(request: Request, extra: Iterable[tuple[str, str]]) -> Request:
    """``request`` again with CSeq + 1, a new branch and ``extra`` fields set
    (e.g. the Authorization answering a 401, RFC 3261 §22.2)."""
    headers = request.headers.copy()
    headers.set("Via", str(_with_branch(request.top_via)))
    headers.set("CSeq", f"{request.cseq.number + 1} {request.method}")
    for name, value in extra:
        headers.set(name, value)
    return Request(request.method, request.uri, headers, request.body)


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


DialogId = tuple[str, str, str]  # Call-ID, local tag, remote tag


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr
    remote_uri: NameAddr
    remote_target: Uri
    route_set: list[NameAddr]
    local_cseq: int
    remote_cseq: int | None
    local_via: Via
    local_contact: NameAddr
    state: DialogState = DialogState.CONFIRMED
    secure: bool = False
    invite_cseq: int = 0  # CSeq of the last INVITE we sent, for its ACK

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uas(
        cls, request: Request, response: Response, *, local_via: Via, local_contact: NameAddr
    ) -> Dialog:
        """The dialog our 1xx/2xx (with our To tag) to ``request`` creates (§12.1.1)."""
        remote_tag = request.from_.tag
        local_tag = response.to.tag
        if local_tag is None:
            raise ValueError("a dialog-creating response needs our To tag")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag or "",
            local_uri=_bare(request.to),
            remote_uri=_bare(request.from_),
            remote_target=_contact_uri(request),
            route_set=list(request.record_route),
            local_cseq=0,
            remote_cseq=request.cseq.number,
            local_via=local_via,
            local_contact=local_contact,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            secure=isinstance(request.uri, SipUri) and request.uri.secure,
        )

    @classmethod
    def as_uac(
        cls, request: Request, response: Response, *, local_via: Via, local_contact: NameAddr
    ) -> Dialog:
        """The dialog the peer's 1xx/2xx (with its To tag) to our ``request`` creates
        (§12.1.2); the route set is the response's Record-Route reversed."""
        remote_tag = response.to.tag
        if remote_tag is None:
            raise SipParseError("dialog-creating response without a To tag")
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=remote_tag,
            local_uri=_bare(request.from_),
            remote_uri=_bare(request.to),
            remote_target=_contact_uri(response),
            route_set=list(reversed(response.record_route)),
            local_cseq=request.cseq.number,
            remote_cseq=None,
            local_via=local_via,
            local_contact=local_contact,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            secure=isinstance(request.uri, SipUri) and request.uri.secure,
            invite_cseq=request.cseq.number if request.method == "INVITE" else 0,
        )

    def confirm(self, response: Response) -> None:
        """A 2xx arrived for the dialog's INVITE: an early dialog becomes confirmed and
        the 2xx's Contact and Record-Route are authoritative (RFC 3261 §12.1.2, §13.2.2.4)."""
        if self.state is DialogState.EARLY:
            self.route_set = list(reversed(response.record_route))
        self.state = DialogState.CONFIRMED
        if response.contacts:
            self.remote_target = _contact_uri(response)

    def request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """A new in-dialog request (BYE, re-INVITE, REFER, INFO...) per §12.2.1.1."""
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} is not built by Dialog.request (see ack, make_cancel)")
        self.local_cseq += 1
        if method == "INVITE":
            self.invite_cseq = self.local_cseq
        return self._build(method, self.local_cseq, body, content_type, extra)

    def ack(self, *, body: bytes = b"", content_type: str | None = None) -> Request:
        """The ACK for the 2xx to our last INVITE (a new transaction, §13.2.2.4)."""
        return self._build("ACK", self.invite_cseq, body, content_type, ())

    def _build(
        self,
        method: str,
        cseq: int,
        body: bytes,
        content_type: str | None,
        extra: Iterable[tuple[str, str]],
    ) -> Request:
        uri, route = self._target()
        contact = self.local_contact if method in _CONTACT_METHODS else None
        return new_request(
            method,
            uri,
            from_=self.local_uri.with_tag(self.local_tag),
            to=self.remote_uri.with_tag(self.remote_tag) if self.remote_tag else self.remote_uri,
            via=self.local_via,
            call_id=self.call_id,
            cseq=cseq,
            contact=contact,
            route=route,
            body=body,
            content_type=content_type,
            extra=extra,
        )

    def _target(self) -> tuple[Uri, list[NameAddr]]:
        """Request-URI and Route set: loose routing, or strict routing when the first
        route lacks ``lr`` (§12.2.1.1)."""
        routes = self.route_set
        if not routes:
            return self.remote_target, []
        first = routes[0].uri
        if isinstance(first, SipUri) and "lr" not in first.params:
            strict_uri = SipUri(
                first.host,
                first.user,
                first.password,
                first.port,
                {k: v for k, v in first.params.items() if k not in ("method", "maddr", "ttl")},
                (),
                first.scheme,
            )
            return strict_uri, [*routes[1:], NameAddr(self.remote_target)]
        return self.remote_target, list(routes)

    def receive(self, request: Request) -> Response | None:
        """Check an incoming in-dialog request; a response to send instead of
        processing it, or ``None``. Updates the remote CSeq and, for a target refresh,
        the remote target."""
        if request.method in ("ACK", "CANCEL"):
            return None
        number = request.cseq.number
        if self.remote_cseq is not None and number <= self.remote_cseq:
            # Lower (or equal: a new request, not a retransmission, reusing the number)
            # is out of order: 500 (RFC 3261 §12.2.2).
            return make_response(request, 500, "Out of Order CSeq")
        self.remote_cseq = number
        if request.method in ("INVITE", "UPDATE") and request.contacts:
            self.remote_target = _contact_uri(request)
        if request.method == "BYE":
            self.state = DialogState.TERMINATED
        return None


def _contact_uri(message: Request | Response) -> Uri:
    contacts = message.contacts
    if len(contacts) != 1 or contacts[0].address is None:
        raise SipParseError("a dialog needs exactly one Contact URI")
    return contacts[0].address.uri


@dataclass(slots=True)
class Dialogs:
    """The live dialogs of a UA, found from incoming messages."""

    by_id: dict[DialogId, Dialog] = field(default_factory=dict)

    def add(self, dialog: Dialog) -> None:
        self.by_id[dialog.id] = dialog

    def remove(self, dialog: Dialog) -> None:
        self.by_id.pop(dialog.id, None)

    def __len__(self) -> int:
        return len(self.by_id)

    def for_request(self, request: Request) -> Dialog | None:
        """Our To tag is the local tag, their From tag the remote one."""
        return self.by_id.get((request.call_id, request.to.tag or "", request.from_.tag or ""))

    def for_response(self, response: Response) -> Dialog | None:
        return self.by_id.get((response.call_id, response.from_.tag or "", response.to.tag or ""))

    def unknown_dialog(self, request: Request) -> Response | None:
        """481 for a mid-dialog request (it has a To tag) that matches no dialog, or
        ``None`` (also for an ACK, which is never answered)."""
        if request.to.tag is None or request.method == "ACK":
            return None
        if self.for_request(request) is not None:
            return None
        return make_response(request, 481)
