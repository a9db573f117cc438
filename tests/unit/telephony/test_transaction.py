"""Transactions on an injected clock: every retransmission and timeout at its RFC time."""

from __future__ import annotations

import pytest
from tests.unit.telephony.sipdata import INVITE, OPTIONS, TORTURE

from callwright.telephony.sip import Request, Response, make_response, parse
from callwright.telephony.sip.transaction import (
    ClientTransaction,
    Deliver,
    Effect,
    Send,
    ServerTransaction,
    State,
    Terminated,
    Timeout,
    TransactionLayer,
    make_cancel,
)

PEER = ("192.0.2.10", 5062)


def req(data: bytes = INVITE) -> Request:
    msg = parse(data)
    assert isinstance(msg, Request)
    return msg


def answer(request: Request, status: int, tag: str | None = "callee") -> Response:
    """What the peer answers, through the wire (serialized and parsed back)."""
    msg = parse(make_response(request, status, to_tag=tag if status > 100 else None).serialize())
    assert isinstance(msg, Response)
    return msg


def run_until(txn: ClientTransaction | ServerTransaction, end: float) -> list[tuple[float, Effect]]:
    """Fire the transaction's timers up to ``end``; (time, effect) for each effect."""
    log: list[tuple[float, Effect]] = []
    while (deadline := txn.next_deadline()) is not None and deadline <= end:
        log += [(deadline, e) for e in txn.on_timer(deadline)]
    return log


def sends(log: list[tuple[float, Effect]]) -> list[float]:
    return [t for t, e in log if isinstance(e, Send)]


def test_client_invite_retransmits_at_timer_a_and_times_out_at_b() -> None:
    txn = ClientTransaction(req(), PEER)
    effects = txn.start(0.0)
    assert effects == [Send(INVITE, PEER)]
    log = run_until(txn, 100.0)
    assert sends(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert [(t, type(e)) for t, e in log if not isinstance(e, Send)] == [
        (32.0, Timeout),
        (32.0, Terminated),
    ]
    assert txn.terminated and txn.next_deadline() is None


def test_client_invite_over_tcp_does_not_retransmit() -> None:
    txn = ClientTransaction(req(), PEER, reliable=True)
    txn.start(10.0)
    log = run_until(txn, 100.0)
    assert sends(log) == [] and [t for t, _ in log] == [42.0, 42.0]


def test_client_invite_provisional_then_failure_acks() -> None:
    invite = req()
    txn = ClientTransaction(invite, PEER)
    txn.start(0.0)
    ringing = answer(invite, 180)
    assert txn.on_response(ringing, 0.2) == [Deliver(ringing, txn)]
    # A and B stopped; only the ringing limit (Timer C) is left.
    assert txn.state is State.PROCEEDING and txn.next_deadline() == 180.2
    busy = answer(invite, 486)
    effects = txn.on_response(busy, 5.0)
    assert isinstance(effects[0], Send) and effects[1] == Deliver(busy, txn)
    ack = parse(effects[0].data)
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.uri == invite.uri
    assert ack.to.tag == "callee" and ack.top_via == invite.top_via and len(ack.vias) == 1
    assert (ack.cseq.number, ack.cseq.method) == (invite.cseq.number, "ACK")
    assert ack.from_ == invite.from_ and ack.call_id == invite.call_id
    # A retransmitted 486 gets the same ACK again and is not delivered twice.
    assert txn.on_response(busy, 6.0) == [Send(effects[0].data, PEER)]
    assert [(t, type(e)) for t, e in run_until(txn, 100.0)] == [(37.0, Terminated)]


def test_client_invite_rings_until_timer_c_or_cancel() -> None:
    invite = req()
    layer = TransactionLayer()
    txn, _ = layer.send_request(invite, PEER, 0.0)
    layer.receive(answer(invite, 180), PEER, 1.0)
    layer.receive(answer(invite, 180), PEER, 100.0)  # each 1xx restarts Timer C
    assert layer.next_deadline() == 280.0
    assert layer.on_timer(280.0) == [Timeout(txn), Terminated(txn)]

    txn, _ = layer.send_request(invite, PEER, 300.0)
    layer.receive(answer(invite, 180), PEER, 301.0)
    cancel_txn, effects = layer.cancel(txn, 310.0)
    sent = parse(effects[0].data) if isinstance(effects[0], Send) else None
    assert isinstance(sent, Request) and sent.method == "CANCEL"
    assert layer.receive(answer(cancel_txn.request, 200), PEER, 310.1)[0] == Deliver(
        parse(answer(cancel_txn.request, 200).serialize()), cancel_txn
    )
    # The peer never sends its 487: the INVITE gives up 64·T1 after the CANCEL.
    assert layer.next_deadline() == 315.1  # the CANCEL's Timer K comes first
    layer.on_timer(315.1)
    assert layer.next_deadline() == 342.0
    assert layer.on_timer(342.0) == [Timeout(txn), Terminated(txn)]
    assert len(layer) == 0


def test_client_invite_2xx_goes_to_accepted_and_delivers_copies() -> None:
    invite = req()
    txn = ClientTransaction(invite, PEER)
    txn.start(0.0)
    ok = answer(invite, 200)
    assert txn.on_response(ok, 1.0) == [Deliver(ok, txn)]
    assert txn.state is State.ACCEPTED
    assert txn.on_response(ok, 2.0) == [Deliver(ok, txn)]
    assert txn.on_response(answer(invite, 180), 2.5) == []
    assert [(t, type(e)) for t, e in run_until(txn, 100.0)] == [(33.0, Terminated)]


def test_client_non_invite_timer_e_caps_at_t2() -> None:
    txn = ClientTransaction(req(OPTIONS), PEER)
    txn.start(0.0)
    log = run_until(txn, 100.0)
    assert sends(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(t, type(e)) for t, e in log if not isinstance(e, Send)] == [
        (32.0, Timeout),
        (32.0, Terminated),
    ]


def test_client_non_invite_after_provisional_retransmits_every_t2() -> None:
    options = req(OPTIONS)
    txn = ClientTransaction(options, PEER)
    txn.start(0.0)
    trying = answer(options, 100)
    assert txn.on_response(trying, 0.1) == [Deliver(trying, txn)]
    log = run_until(txn, 20.0)
    assert sends(log) == [0.5, 4.5, 8.5, 12.5, 16.5]
    ok = answer(options, 200)
    assert txn.on_response(ok, 20.0) == [Deliver(ok, txn)]
    assert txn.on_response(ok, 21.0) == []  # absorbed in Completed
    assert [(t, type(e)) for t, e in run_until(txn, 100.0)] == [(25.0, Terminated)]


def test_client_non_invite_over_tcp_terminates_on_final() -> None:
    options = req(OPTIONS)
    txn = ClientTransaction(options, PEER, reliable=True)
    txn.start(0.0)
    ok = answer(options, 200)
    assert txn.on_response(ok, 0.3) == [Deliver(ok, txn), Terminated(txn)]


def test_server_invite_failure_retransmits_until_ack() -> None:
    invite = req()
    txn = ServerTransaction(invite, PEER)
    start = txn.start(0.0)
    assert start[0] == Deliver(invite, txn)
    trying = parse(start[1].data) if isinstance(start[1], Send) else None
    assert isinstance(trying, Response) and trying.status == 100
    assert txn.on_request(invite, 0.1) == [start[1]]  # retransmission answered with the 100
    busy = make_response(invite, 486, to_tag="ours")
    assert txn.respond(busy, 1.0) == [Send(busy.serialize(), PEER)]
    log = run_until(txn, 13.0)
    assert sends(log) == [1.5, 2.5, 4.5, 8.5, 12.5]  # T1, 2·T1, 4·T1, then every T2
    assert txn.on_request(invite, 8.6) == [Send(busy.serialize(), PEER)]
    ack = Request("ACK", invite.uri, invite.headers.copy())
    ack.headers.set("CSeq", f"{invite.cseq.number} ACK")
    assert txn.on_request(ack, 9.0) == []
    assert txn.state is State.CONFIRMED
    assert [(t, type(e)) for t, e in run_until(txn, 100.0)] == [(14.0, Terminated)]


def test_server_invite_failure_times_out_at_timer_h() -> None:
    invite = req()
    txn = ServerTransaction(invite, PEER)
    txn.start(0.0)
    txn.respond(make_response(invite, 603, to_tag="ours"), 0.0)
    log = run_until(txn, 100.0)
    assert sends(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(t, type(e)) for t, e in log if not isinstance(e, Send)] == [
        (32.0, Timeout),
        (32.0, Terminated),
    ]


def test_server_responding_twice_with_a_final_is_a_local_error() -> None:
    invite = req()
    txn = ServerTransaction(invite, PEER)
    txn.start(0.0)
    txn.respond(make_response(invite, 486, to_tag="x"), 0.0)
    with pytest.raises(ValueError):
        txn.respond(make_response(invite, 200, to_tag="x"), 0.0)


def test_server_non_invite() -> None:
    options = req(OPTIONS)
    txn = ServerTransaction(options, PEER)
    assert txn.start(0.0) == [Deliver(options, txn)]
    assert txn.on_request(options, 0.1) == []  # Trying: absorbed
    ok = make_response(options, 200, to_tag="t")
    assert txn.respond(ok, 0.2) == [Send(ok.serialize(), PEER)]
    assert txn.on_request(options, 0.3) == [Send(ok.serialize(), PEER)]
    assert [(t, type(e)) for t, e in run_until(txn, 100.0)] == [(32.2, Terminated)]
    tcp = ServerTransaction(options, PEER, reliable=True)
    tcp.start(0.0)
    assert tcp.respond(ok, 0.0) == [Send(ok.serialize(), PEER), Terminated(tcp)]


def ack_for_2xx(invite: Request, ok: Response) -> Request:
    """The UAC's ACK for a 2xx: a new transaction (new branch) in the dialog."""
    headers = invite.headers.copy()
    headers.set("Via", "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKack2xx")
    headers.set("To", ok.headers.get("To") or "")
    headers.set("CSeq", f"{invite.cseq.number} ACK")
    headers.remove("Content-Length")
    return Request("ACK", invite.uri, headers)


def test_layer_server_invite_2xx_retransmitted_until_the_ack() -> None:
    layer = TransactionLayer()
    invite = req()
    effects = layer.receive(invite, PEER, 0.0)
    txn = effects[0].transaction if isinstance(effects[0], Deliver) else None
    assert isinstance(txn, ServerTransaction)
    ok = make_response(invite, 200, to_tag="ours")
    layer.respond(txn, ok, 0.0)
    assert layer.next_deadline() == 0.5
    assert layer.on_timer(0.5) == [Send(ok.serialize(), PEER)]
    assert layer.on_timer(1.0) == []
    assert layer.next_deadline() == 1.5
    assert layer.on_timer(1.5) == [Send(ok.serialize(), PEER)]
    assert layer.receive(invite, PEER, 1.6) == []  # INVITE copy absorbed in Accepted
    ack = ack_for_2xx(invite, ok)
    assert layer.receive(ack, PEER, 2.0) == [Deliver(ack, txn)]
    assert layer.next_deadline() == 32.0  # only Timer L is left
    assert layer.on_timer(32.0) == [Terminated(txn)]
    assert len(layer) == 0 and layer.next_deadline() is None


def test_layer_server_invite_2xx_without_ack_times_out() -> None:
    layer = TransactionLayer()
    invite = req()
    txn = layer.receive(invite, PEER, 0.0)[0].transaction  # type: ignore[union-attr]
    assert isinstance(txn, ServerTransaction)
    layer.respond(txn, make_response(invite, 200, to_tag="ours"), 0.0)
    log: list[tuple[float, Effect]] = []
    while (deadline := layer.next_deadline()) is not None:
        log += [(deadline, e) for e in layer.on_timer(deadline)]
    assert sends(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [type(e) for _, e in log[-2:]] == [Timeout, Terminated]


def test_layer_matches_responses_by_branch_and_method() -> None:
    layer = TransactionLayer()
    invite = req()
    client, _ = layer.send_request(invite, PEER, 0.0)
    cancel = make_cancel(invite)
    canceller, _ = layer.send_request(cancel, PEER, 1.0)
    assert len(layer) == 2
    ok_cancel = answer(cancel, 200)
    assert layer.receive(ok_cancel, PEER, 1.1) == [Deliver(ok_cancel, canceller)]
    terminated = answer(invite, 487)
    effects = layer.receive(terminated, PEER, 1.2)
    assert Deliver(terminated, client) in effects
    stray = answer(req(OPTIONS), 200)
    assert layer.receive(stray, PEER, 1.3) == [Deliver(stray, None)]


def test_make_cancel() -> None:
    invite = req()
    cancel = make_cancel(invite)
    assert cancel.method == "CANCEL" and cancel.uri == invite.uri
    assert cancel.top_via == invite.top_via
    assert (cancel.cseq.number, cancel.cseq.method) == (invite.cseq.number, "CANCEL")
    assert (cancel.from_, cancel.to, cancel.call_id) == (invite.from_, invite.to, invite.call_id)


def test_layer_matches_requests_and_finds_the_invite_to_cancel() -> None:
    layer = TransactionLayer()
    invite = req()
    layer.receive(invite, PEER, 0.0)
    assert len(layer) == 1
    # A request from another sent-by with the same branch is another transaction.
    other = req(INVITE.replace(b"192.0.2.10:5062;branch", b"192.0.2.11:5062;branch"))
    layer.receive(other, PEER, 0.1)
    assert len(layer) == 2
    cancel = make_cancel(invite)
    effects = layer.receive(cancel, PEER, 0.2)
    cancel_txn = effects[0].transaction  # type: ignore[union-attr]
    assert isinstance(cancel_txn, ServerTransaction) and cancel_txn.request.method == "CANCEL"
    found = layer.find_invite(cancel)
    assert found is not None and found.request is invite


def test_rfc2543_transactions_are_matched_without_a_cookie() -> None:
    layer = TransactionLayer()
    old = (TORTURE / "inv2543.dat").read_bytes()
    invite = req(old)
    first = layer.receive(invite, PEER, 0.0)
    txn = first[0].transaction  # type: ignore[union-attr]
    assert isinstance(txn, ServerTransaction)
    assert layer.receive(req(old), PEER, 0.1) == [first[1]]  # the 100 again
    busy = make_response(invite, 486, to_tag="ours")
    layer.respond(txn, busy, 0.2)
    ack = Request("ACK", invite.uri, invite.headers.copy())
    ack.headers.set("CSeq", f"{invite.cseq.number} ACK")
    ack.headers.set("To", busy.headers.get("To") or "")
    assert layer.receive(ack, PEER, 0.3) == []
    assert txn.state is State.CONFIRMED
