"""Fuzzing the SIP parser with mutated real messages: only ``SipParseError`` may escape.

Whatever parses must also survive everything the UA does next with it: semantic checks,
building a response, serializing and parsing that again.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.telephony.fuzzing import mutated, random_mutations
from tests.unit.telephony.sipdata import INVITE, OPTIONS, RINGING, TORTURE

from callwright.telephony.sip import (
    Request,
    SipParseError,
    StreamFramer,
    error_response,
    make_response,
    parse,
)
from callwright.telephony.sip.message import Message
from callwright.telephony.sip.transaction import (
    Deliver,
    ServerTransaction,
    State,
    TransactionLayer,
    make_cancel,
)
from callwright.telephony.sip.validate import check_request, check_response

SEEDS = [p.read_bytes() for p in sorted(TORTURE.glob("*.dat"))] + [INVITE, OPTIONS, RINGING]


def exercise(data: bytes) -> bool:
    """Run one input through the UA's receive path; True if it parsed."""
    try:
        msg = parse(data)
    except SipParseError as exc:
        assert exc.status in (400, 505)
        answer = error_response(data, exc.status)
        if answer is not None:
            parse(answer)
        return False
    check_round_trip(msg)
    if isinstance(msg, Request):
        if check_request(msg) is None:
            reply = make_response(msg, 200, to_tag="t1")
            check_round_trip(reply)
    else:
        check_response(msg)
    return True


def check_round_trip(msg: Message) -> None:
    again = parse(msg.serialize())
    assert again.body == msg.body
    assert list(again.headers)[: len(msg.headers)] == [
        (name, value if name != "Content-Length" else str(len(msg.body)))
        for name, value in msg.headers
    ]


def test_parser_fuzz_hypothesis(capsys: pytest.CaptureFixture[str]) -> None:
    runs = {"examples": 0, "parsed": 0}

    @settings(
        max_examples=1500,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(mutated(SEEDS))
    def run(data: bytes) -> None:
        runs["examples"] += 1
        runs["parsed"] += exercise(data)

    run()
    with capsys.disabled():
        print(
            f"\nSIP parser fuzz (hypothesis): {runs['examples']} examples, {runs['parsed']} parsed"
        )


def test_parser_fuzz_bulk(capsys: pytest.CaptureFixture[str]) -> None:
    inputs = random_mutations(SEEDS, 12000, seed=4475)
    parsed = sum(exercise(data) for data in inputs)
    with capsys.disabled():
        print(f"\nSIP parser fuzz (seeded bulk): {len(inputs)} inputs, {parsed} parsed")
    assert 0 < parsed < len(inputs)


def test_stream_framer_fuzz() -> None:
    stream = b"".join(random_mutations([INVITE, OPTIONS, RINGING], 300, seed=18))
    framer = StreamFramer()
    for i in range(0, len(stream), 97):
        try:
            frames = framer.feed(stream[i : i + 97])
        except SipParseError:
            framer = StreamFramer()
            continue
        for frame in frames:
            with contextlib.suppress(SipParseError):
                parse(frame)


def _txn_seeds() -> list[bytes]:
    invite = parse(INVITE)
    assert isinstance(invite, Request)
    out = [INVITE, OPTIONS, make_cancel(invite).serialize()]
    ack = Request("ACK", invite.uri, invite.headers.copy())
    ack.headers.set("CSeq", f"{invite.cseq.number} ACK")
    out.append(ack.serialize())
    for status in (100, 180, 200, 486):
        out.append(make_response(invite, status, to_tag="remote").serialize())
    return out


TXN_SEEDS = _txn_seeds()
_action = st.one_of(
    st.tuples(st.just("recv"), st.sampled_from(TXN_SEEDS) | mutated(TXN_SEEDS)),
    st.tuples(st.just("tick"), st.floats(0, 40)),
    st.tuples(st.just("respond"), st.sampled_from([100, 180, 200, 486, 603])),
    st.tuples(st.just("send"), st.sampled_from([INVITE, OPTIONS])),
)


def test_transaction_layer_fuzz(capsys: pytest.CaptureFixture[str]) -> None:
    runs = {"examples": 0, "steps": 0}

    @settings(
        max_examples=250,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(_action, max_size=30))
    def run(actions: list[tuple[str, object]]) -> None:
        runs["examples"] += 1
        layer = TransactionLayer()
        now = 0.0
        pending: list[ServerTransaction] = []
        for kind, arg in actions:
            runs["steps"] += 1
            if kind == "recv":
                assert isinstance(arg, bytes)
                try:
                    msg = parse(arg)
                    _ = msg.top_via, msg.cseq, msg.call_id, msg.from_, msg.to
                except SipParseError:
                    continue
                effects = layer.receive(msg, ("192.0.2.10", 5062), now)
                pending += [
                    e.transaction
                    for e in effects
                    if isinstance(e, Deliver) and isinstance(e.transaction, ServerTransaction)
                ]
            elif kind == "tick":
                assert isinstance(arg, float)
                now += arg
                layer.on_timer(now)
                deadline = layer.next_deadline()
                assert deadline is None or deadline > now
            elif kind == "respond":
                live = [t for t in pending if t.state in (State.TRYING, State.PROCEEDING)]
                if live:
                    assert isinstance(arg, int)
                    layer.respond(live[-1], make_response(live[-1].request, arg, to_tag="me"), now)
            else:
                assert isinstance(arg, bytes)
                request = parse(arg)
                assert isinstance(request, Request)
                layer.send_request(request, ("192.0.2.10", 5062), now)
        for txn in pending:
            if txn.state in (State.TRYING, State.PROCEEDING):
                layer.respond(txn, make_response(txn.request, 500, to_tag="me"), now)
        for _ in range(200):
            deadline = layer.next_deadline()
            if deadline is None:
                break
            layer.on_timer(deadline)
        assert len(layer) == 0

    run()
    with capsys.disabled():
        print(f"\nSIP transaction fuzz: {runs['examples']} examples, {runs['steps']} steps")
