"""The REGISTER client state machine (RFC 3261 §10.2) against a scripted registrar, in
virtual time: requests built, digest answered and checked independently, 423, granted
expiry, refresh schedule, backoff, Retry-After, un-REGISTER."""

from __future__ import annotations

import hashlib

import pytest

from callwright.telephony.sip.digest import Credentials
from callwright.telephony.sip.headers import NameAddr, Via
from callwright.telephony.sip.message import Request, Response, make_response, parse
from callwright.telephony.sip.register import Account, Backoff, Phase, Registration
from callwright.telephony.sip.uri import SipUri

AOR = SipUri("pbx.example", "alice")
REGISTRAR = SipUri("pbx.example", port=5070)
CONTACT = NameAddr(SipUri("192.0.2.10", "+15550100", port=5062))
VIA = Via("UDP", "192.0.2.10", 5062, {"rport": None})
REALM = "pbx.example"
PASSWORD = "s3cret"
CHALLENGE = f'Digest realm="{REALM}", nonce="abc123", qop="auth", algorithm=MD5'


def make(expires: int = 300, *, credentials: bool = True, draw: float = 0.0) -> Registration:
    account = Account(
        AOR, REGISTRAR, Credentials("alice", PASSWORD) if credentials else None, expires
    )
    return Registration(
        account, contact=CONTACT, via=VIA, call_id="cid@192.0.2.10", from_tag="ft", rng=lambda: draw
    )


def wire(request: Request) -> Request:
    """What the registrar parses: the request serialized and parsed back."""
    parsed = parse(request.serialize())
    assert isinstance(parsed, Request)
    return parsed


def reply(request: Request, status: int, *extra: tuple[str, str]) -> Response:
    return make_response(wire(request), status, to_tag="reg", extra=extra)


def params(value: str) -> dict[str, str]:
    scheme, _, rest = value.partition(" ")
    assert scheme == "Digest"
    out = {}
    for part in rest.split(", "):
        name, _, raw = part.partition("=")
        out[name] = raw.strip('"')
    return out


def verify(request: Request, password: str = PASSWORD) -> dict[str, str]:
    """Check the Authorization as a registrar would (RFC 2617 §3.2.2, MD5, qop=auth)."""
    header = request.headers.get("Authorization")
    assert header is not None, "no Authorization"
    p = params(header)

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - the protocol's hash

    ha1 = md5(f"{p['username']}:{REALM}:{password}")
    ha2 = md5(f"REGISTER:{p['uri']}")
    expected = md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
    assert p["response"] == expected
    assert p["uri"] == str(request.uri)
    return p


def registered_at(reg: Registration, now: float, granted: str = "60") -> Request:
    """Run the first REGISTER through a 401 to a 200; the authorized request."""
    first = reg.poll(now)
    assert first is not None
    second = reg.on_response(reply(first, 401, ("WWW-Authenticate", CHALLENGE)), now)
    assert second is not None
    assert (
        reg.on_response(reply(second, 200, ("Contact", f"{CONTACT};expires={granted}")), now)
        is None
    )
    return second


def test_first_register_is_built_per_rfc3261_10_2() -> None:
    reg = make()
    assert reg.next_deadline() == 0.0
    request = wire(reg.poll(0.0))  # type: ignore[arg-type]
    assert request.method == "REGISTER"
    assert str(request.uri) == "sip:pbx.example:5070"
    assert str(request.to.uri) == str(request.from_.uri) == "sip:alice@pbx.example"
    assert request.from_.tag == "ft" and request.to.tag is None
    assert request.call_id == "cid@192.0.2.10"
    assert (request.cseq.number, request.cseq.method) == (1, "REGISTER")
    (contact,) = request.contacts
    assert contact.address is not None
    assert str(contact.address.uri) == "sip:+15550100@192.0.2.10:5062"
    assert contact.address.params == {"expires": "300"}
    assert request.headers.get("Expires") == "300"
    assert request.headers.get("Authorization") is None
    assert request.top_via.branch is not None and request.top_via.branch.startswith("z9hG4bK")
    # One request outstanding at a time (§10.2).
    assert reg.next_deadline() is None
    assert reg.poll(100.0) is None
    assert reg.phase is Phase.REGISTERING


def test_digest_challenge_answered_and_registered() -> None:
    reg = make()
    first = reg.poll(0.0)
    assert first is not None
    second = reg.on_response(reply(first, 401, ("WWW-Authenticate", CHALLENGE)), 0.1)
    assert second is not None
    parsed = wire(second)
    p = verify(parsed)
    assert (p["username"], p["realm"], p["nonce"], p["nc"]) == (
        "alice",
        REALM,
        "abc123",
        "00000001",
    )
    assert parsed.call_id == first.call_id
    assert parsed.cseq.number == 2
    assert parsed.top_via.branch != wire(first).top_via.branch
    ok = reply(second, 200, ("Contact", f"<{CONTACT.uri}>;expires=120"))
    assert reg.on_response(ok, 0.2) is None
    assert reg.phase is Phase.REGISTERED
    assert reg.registered(0.2) and reg.granted == 120
    assert reg.expires_at == pytest.approx(120.2)
    assert reg.successes == 1 and reg.failures == 0


def test_proxy_challenge_gets_proxy_authorization() -> None:
    reg = make()
    first = reg.poll(0.0)
    assert first is not None
    second = reg.on_response(reply(first, 407, ("Proxy-Authenticate", CHALLENGE)), 0.0)
    assert second is not None
    assert second.headers.get("Proxy-Authorization") is not None
    assert second.headers.get("Authorization") is None


@pytest.mark.parametrize(
    ("granted", "refresh_after"),
    [("3600", 3560.0), ("300", 260.0), ("60", 30.0), ("4", 2.0)],
)
def test_refresh_scheduled_before_expiry(granted: str, refresh_after: float) -> None:
    reg = make()
    registered_at(reg, 10.0, granted)
    assert reg.next_deadline() == pytest.approx(10.0 + refresh_after)
    assert reg.poll(10.0 + refresh_after - 0.01) is None
    refresh = reg.poll(10.0 + refresh_after)
    assert refresh is not None


def test_refresh_keeps_call_id_raises_cseq_and_reuses_the_challenge() -> None:
    reg = make()
    authorized = registered_at(reg, 0.0, "60")
    refresh = reg.poll(30.0)
    assert refresh is not None
    parsed = wire(refresh)
    assert parsed.call_id == authorized.call_id
    assert parsed.cseq.number == authorized.cseq.number + 1 == 3
    assert parsed.from_.tag == "ft"
    p = verify(parsed)
    assert p["nc"] == "00000002"  # the same nonce, counted up
    assert reg.on_response(reply(refresh, 200, ("Expires", "60")), 30.0) is None
    assert reg.successes == 2
    assert reg.next_deadline() == pytest.approx(60.0)


def test_stale_nonce_on_refresh_is_answered_again() -> None:
    reg = make()
    registered_at(reg, 0.0, "60")
    refresh = reg.poll(30.0)
    assert refresh is not None
    fresh = CHALLENGE.replace("abc123", "def456")
    again = reg.on_response(reply(refresh, 401, ("WWW-Authenticate", fresh)), 30.0)
    assert again is not None
    p = verify(wire(again))
    assert (p["nonce"], p["nc"]) == ("def456", "00000001")
    assert again.cseq.number == 4


def test_wrong_password_is_a_failure_not_a_loop() -> None:
    reg = make()
    first = reg.poll(0.0)
    assert first is not None
    second = reg.on_response(reply(first, 401, ("WWW-Authenticate", CHALLENGE)), 0.0)
    assert second is not None
    refused = CHALLENGE.replace("abc123", "zzz")
    assert reg.on_response(reply(second, 401, ("WWW-Authenticate", refused)), 0.0) is None
    assert reg.phase is Phase.RETRYING
    assert reg.failures == 1 and reg.last_error == "credentials refused"
    assert not reg.registered(0.0)


def test_stale_challenge_after_our_answer_is_answered() -> None:
    reg = make()
    first = reg.poll(0.0)
    assert first is not None
    second = reg.on_response(reply(first, 401, ("WWW-Authenticate", CHALLENGE)), 0.0)
    assert second is not None
    stale = CHALLENGE.replace("abc123", "n2") + ", stale=true"
    third = reg.on_response(reply(second, 401, ("WWW-Authenticate", stale)), 0.0)
    assert third is not None and third.cseq.number == 3


def test_challenge_without_credentials_fails() -> None:
    reg = make(credentials=False)
    first = reg.poll(0.0)
    assert first is not None
    assert reg.on_response(reply(first, 401, ("WWW-Authenticate", CHALLENGE)), 0.0) is None
    assert reg.phase is Phase.RETRYING and reg.last_error == "unauthorized"


def test_interval_too_brief_retries_with_min_expires() -> None:
    reg = make(expires=60)
    first = reg.poll(0.0)
    assert first is not None
    second = reg.on_response(reply(first, 423, ("Min-Expires", "600")), 0.0)
    assert second is not None
    parsed = wire(second)
    assert parsed.headers.get("Expires") == "600"
    assert parsed.contacts[0].address is not None
    assert parsed.contacts[0].address.params["expires"] == "600"
    assert parsed.cseq.number == 2
    assert reg.on_response(reply(second, 200), 0.0) is None
    assert reg.granted == 600  # no Contact, no Expires: what we asked for
    assert reg.failures == 0


def test_423_without_a_larger_minimum_is_a_failure() -> None:
    reg = make(expires=600)
    first = reg.poll(0.0)
    assert first is not None
    assert reg.on_response(reply(first, 423, ("Min-Expires", "300")), 0.0) is None
    assert reg.phase is Phase.RETRYING


def test_granted_expiry_prefers_our_contact_over_expires_header() -> None:
    reg = make()
    first = reg.poll(0.0)
    assert first is not None
    other = "<sip:bob@198.51.100.1>;expires=10"
    ours = f"<{CONTACT.uri}>;expires=45"
    ok = reply(first, 200, ("Contact", other), ("Contact", ours), ("Expires", "3600"))
    reg.on_response(ok, 0.0)
    assert reg.granted == 45


def test_backoff_doubles_to_a_cap_and_resets_on_success() -> None:
    reg = make(draw=1.0 - 1e-12)  # the top of the jitter range: the ceiling itself
    now = 0.0
    delays = []
    for _ in range(8):
        request = reg.poll(now)
        assert request is not None
        assert reg.on_timeout(now) is None
        deadline = reg.next_deadline()
        assert deadline is not None
        delays.append(round(deadline - now))
        now = deadline
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]
    assert reg.failures == reg.total_failures == 8
    registered_at(reg, now)
    assert reg.failures == 0 and reg.total_failures == 8


def test_backoff_jitter_is_half_to_full() -> None:
    assert Backoff().delay(1, 0.0) == 2.5
    assert Backoff().delay(3, 0.5) == 15.0


def test_retry_after_is_honoured() -> None:
    reg = make()
    first = reg.poll(0.0)
    assert first is not None
    reg.on_response(reply(first, 503, ("Retry-After", "120 (maintenance)")), 0.0)
    assert reg.next_deadline() == 120.0
    assert reg.last_error == "503 Service Unavailable"


def test_a_refresh_failing_keeps_the_binding_until_it_lapses() -> None:
    reg = make()
    registered_at(reg, 0.0, "60")
    refresh = reg.poll(30.0)
    assert refresh is not None
    reg.on_timeout(62.0)
    assert reg.phase is Phase.RETRYING
    assert reg.registered(59.0) and not reg.registered(60.0)


def test_stray_responses_are_ignored() -> None:
    reg = make()
    first = reg.poll(0.0)
    assert first is not None
    assert reg.on_response(reply(first, 100), 0.0) is None
    assert reg.outstanding is first
    late = make_response(wire(first), 200)
    late.headers.set("CSeq", "99 REGISTER")
    assert reg.on_response(late, 0.0) is None
    assert reg.outstanding is first
    assert reg.on_timeout(1.0) is None and reg.on_timeout(1.0) is None
    assert reg.failures == 1


def test_close_unregisters_with_expires_zero() -> None:
    reg = make()
    authorized = registered_at(reg, 0.0)
    bye = reg.close(5.0)
    assert bye is not None
    parsed = wire(bye)
    assert parsed.headers.get("Expires") == "0"
    assert parsed.contacts[0].address is not None
    assert parsed.contacts[0].address.params["expires"] == "0"
    assert parsed.cseq.number == authorized.cseq.number + 1
    assert parsed.call_id == authorized.call_id
    verify(parsed)
    assert reg.phase is Phase.UNREGISTERING and reg.next_deadline() is None
    assert reg.close(5.0) is None
    assert reg.on_response(reply(bye, 200), 5.0) is None
    assert reg.phase is Phase.CLOSED and not reg.registered(5.0)
    assert reg.poll(1000.0) is None


def test_unregister_answers_a_challenge_once() -> None:
    reg = make()
    registered_at(reg, 0.0)
    bye = reg.close(5.0)
    assert bye is not None
    again = reg.on_response(
        reply(bye, 401, ("WWW-Authenticate", CHALLENGE.replace("abc", "x"))), 5.0
    )
    assert again is not None and again.headers.get("Expires") == "0"
    assert reg.on_response(reply(again, 401, ("WWW-Authenticate", CHALLENGE)), 5.0) is None
    assert reg.phase is Phase.CLOSED


def test_close_while_registering_unregisters_after_the_answer() -> None:
    reg = make()
    first = reg.poll(0.0)
    assert first is not None
    assert reg.close(0.1) is None  # outstanding: wait for its answer
    bye = reg.on_response(reply(first, 200, ("Expires", "60")), 0.2)
    assert bye is not None and bye.headers.get("Expires") == "0"
    assert bye.cseq.number == 2


def test_close_without_a_binding_sends_nothing() -> None:
    reg = make()
    assert reg.close(0.0) is None
    assert reg.phase is Phase.CLOSED
    refused = make()
    first = refused.poll(0.0)
    assert first is not None
    refused.on_response(reply(first, 403), 0.0)
    assert refused.close(1.0) is None and refused.phase is Phase.CLOSED


def test_close_after_a_timeout_unregisters_in_case_the_registrar_holds_us() -> None:
    reg = make()
    first = reg.poll(0.0)
    assert first is not None
    reg.on_timeout(32.0)
    bye = reg.close(33.0)
    assert bye is not None and bye.headers.get("Expires") == "0"
    assert reg.on_timeout(40.0) is None
    assert reg.phase is Phase.CLOSED


def test_zero_granted_is_a_failure() -> None:
    reg = make()
    first = reg.poll(0.0)
    assert first is not None
    reg.on_response(reply(first, 200, ("Contact", f"<{CONTACT.uri}>;expires=0")), 0.0)
    assert reg.phase is Phase.RETRYING and not reg.registered(0.0)
