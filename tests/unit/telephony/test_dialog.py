from __future__ import annotations

import pytest
from tests.unit.telephony.sipdata import INVITE

from callwright.telephony.sip import (
    NameAddr,
    Request,
    Response,
    SipParseError,
    SipUri,
    Via,
    make_response,
    parse,
    parse_address,
)
from callwright.telephony.sip.dialog import (
    Dialog,
    Dialogs,
    DialogState,
    new_call_id,
    new_request,
    new_tag,
    retry_request,
)

OUR_VIA = Via("UDP", "192.0.2.1", 5060, {"rport": None})
OUR_CONTACT = parse_address("<sip:agent@192.0.2.1:5060>")


def wire(msg: Request | Response) -> Request | Response:
    return parse(msg.serialize())


def uas_dialog() -> tuple[Request, Response, Dialog]:
    invite = parse(INVITE)
    assert isinstance(invite, Request)
    ok = make_response(invite, 200, to_tag="ourtag", extra=[("Contact", str(OUR_CONTACT))])
    dialog = Dialog.as_uas(invite, ok, local_via=OUR_VIA, local_contact=OUR_CONTACT)
    return invite, ok, dialog


def test_uas_dialog_state() -> None:
    invite, _, dialog = uas_dialog()
    assert dialog.id == ("a84b4c76e66710@pc33.example.com", "ourtag", "1928301774")
    assert dialog.remote_target == SipUri("192.0.2.10", "alice", port=5062)
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
    ]
    assert dialog.remote_cseq == 314159 and dialog.state is DialogState.CONFIRMED


def test_uas_bye_follows_the_route_set() -> None:
    _, _, dialog = uas_dialog()
    bye = wire(dialog.request("BYE"))
    assert isinstance(bye, Request)
    assert bye.uri == dialog.remote_target  # loose routing: R-URI is the remote target
    assert [str(r.uri) for r in bye.route] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert bye.from_.tag == "ourtag" and bye.to.tag == "1928301774"
    assert str(bye.from_.uri) == "sip:agent@192.0.2.1" and bye.from_.display is None
    assert bye.to.display == "Alice"
    assert (bye.cseq.number, bye.cseq.method) == (1, "BYE")
    assert bye.top_via.rfc3261_branch and bye.top_via.has_rport
    assert bye.contacts == ()  # BYE is not a target refresh
    refer = dialog.request("REFER", extra=[("Refer-To", "<sip:human@example.com>")])
    assert refer.cseq.number == 2 and refer.contacts[0].address == OUR_CONTACT
    assert refer.headers.get("Refer-To") == "<sip:human@example.com>"
    assert refer.top_via.branch != bye.top_via.branch


def test_uac_dialog_ack_and_reinvite() -> None:
    via = Via("UDP", "192.0.2.1", 5060)
    invite = new_request(
        "INVITE",
        SipUri("example.com", "bob"),
        from_=parse_address("<sip:agent@192.0.2.1>").with_tag(new_tag()),
        to=parse_address("<sip:bob@example.com>"),
        via=via,
        call_id=new_call_id("192.0.2.1"),
        cseq=7,
        contact=OUR_CONTACT,
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    invite = wire(invite)  # type: ignore[assignment]
    assert isinstance(invite, Request) and invite.top_via.rfc3261_branch
    ok = make_response(
        invite,
        200,
        to_tag="bobtag",
        extra=[
            ("Contact", "<sip:bob@198.51.100.7:5070>"),
            ("Record-Route", "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>"),
        ],
    )
    dialog = Dialog.as_uac(invite, ok, local_via=via, local_contact=OUR_CONTACT)
    assert dialog.id == (invite.call_id, invite.from_.tag, "bobtag")
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
    ]
    ack = wire(dialog.ack())
    assert isinstance(ack, Request)
    assert (ack.method, ack.cseq.number, ack.cseq.method) == ("ACK", 7, "ACK")
    assert ack.uri == SipUri("198.51.100.7", "bob", port=5070)
    assert ack.top_via.branch != invite.top_via.branch
    reinvite = dialog.request("INVITE", body=b"v=0\r\n", content_type="application/sdp")
    assert reinvite.cseq.number == 8 and dialog.ack().cseq.number == 8
    assert reinvite.contacts[0].address == OUR_CONTACT
    with pytest.raises(ValueError):
        dialog.request("ACK")


def test_strict_route_puts_the_target_last() -> None:
    _, _, dialog = uas_dialog()
    dialog.route_set = [parse_address("<sip:strict.example.com;transport=udp>")]
    info = dialog.request(
        "INFO", body=b"Signal=5\r\nDuration=160\r\n", content_type="application/dtmf-relay"
    )
    assert info.uri == SipUri("strict.example.com", params={"transport": "udp"})
    assert [r.uri for r in info.route] == [dialog.remote_target]
    assert info.content_type == "application/dtmf-relay"


def test_incoming_in_dialog_requests() -> None:
    invite, ok, dialog = uas_dialog()
    dialogs = Dialogs()
    dialogs.add(dialog)
    # What the peer sends us inside the dialog: their tag in From, ours in To.
    peer = Dialog.as_uac(
        invite,
        parse(ok.serialize()),  # type: ignore[arg-type]
        local_via=Via("UDP", "192.0.2.10", 5062),
        local_contact=parse_address("<sip:alice@192.0.2.10:5062>"),
    )
    peer.local_cseq = 314159
    reinvite = wire(peer.request("INVITE"))
    assert isinstance(reinvite, Request)
    reinvite.headers.set("Contact", "<sip:alice@192.0.2.99:5062>")
    assert dialogs.for_request(reinvite) is dialog
    assert dialogs.unknown_dialog(reinvite) is None
    assert dialog.receive(reinvite) is None
    assert dialog.remote_cseq == 314160
    assert dialog.remote_target == SipUri("192.0.2.99", "alice", port=5062)
    stale = wire(peer.request("INFO"))
    assert isinstance(stale, Request)
    stale.headers.set("CSeq", "5 INFO")
    rejected = dialog.receive(stale)
    assert rejected is not None and rejected.status == 500
    bye = wire(peer.request("BYE"))
    assert isinstance(bye, Request) and dialog.receive(bye) is None
    assert dialog.state is DialogState.TERMINATED
    dialogs.remove(dialog)
    unknown = dialogs.unknown_dialog(bye)
    assert unknown is not None and unknown.status == 481
    assert dialogs.unknown_dialog(invite) is None  # no To tag: not mid-dialog


def test_response_matching_and_early_dialog_confirmation() -> None:
    via = Via("UDP", "192.0.2.1", 5060)
    invite = new_request(
        "INVITE",
        SipUri("example.com", "bob"),
        from_=NameAddr(SipUri("192.0.2.1", "agent")).with_tag("mytag"),
        to=NameAddr(SipUri("example.com", "bob")),
        via=via,
        call_id="c1",
        contact=OUR_CONTACT,
    )
    ringing = make_response(invite, 180, to_tag="b1", extra=[("Contact", "<sip:bob@10.0.0.1>")])
    early = Dialog.as_uac(invite, ringing, local_via=via, local_contact=OUR_CONTACT)
    assert early.state is DialogState.EARLY
    dialogs = Dialogs()
    dialogs.add(early)
    ok = make_response(invite, 200, to_tag="b1", extra=[("Contact", "<sip:bob@10.0.0.2>")])
    assert dialogs.for_response(ok) is early
    early.confirm(ok)
    assert early.state is DialogState.CONFIRMED and early.remote_target == SipUri("10.0.0.2", "bob")
    no_tag = make_response(invite, 180, extra=[("Contact", "<sip:bob@10.0.0.1>")])
    with pytest.raises(SipParseError):
        Dialog.as_uac(invite, no_tag, local_via=via, local_contact=OUR_CONTACT)


def test_retry_request_for_authentication() -> None:
    invite = parse(INVITE)
    assert isinstance(invite, Request)
    retried = retry_request(invite, [("Authorization", 'Digest username="a"')])
    assert retried.cseq.number == invite.cseq.number + 1
    assert retried.top_via.branch != invite.top_via.branch
    assert retried.call_id == invite.call_id and retried.body == invite.body
    assert retried.headers.get("Authorization") == 'Digest username="a"'
    assert invite.headers.get("Authorization") is None
