"""Registering to a registrar as a client (RFC 3261 §10.2) as a pure state machine.

Theory of operation
-------------------
``Registration`` keeps one binding of our Contact to an address of record (AOR) alive.
It never touches a socket or a clock: the caller asks ``poll(now)`` for the request
that is due, sends it through a client transaction, and feeds back the final response
(``on_response``, which may return a request to send at once) or the transaction's
timeout (``on_timeout``). ``next_deadline()`` says when to poll again. ``close(now)``
returns the un-REGISTER (``expires=0``) to send on shutdown, if a binding may exist.

Rules:

1. Every REGISTER of a binding carries the same Call-ID and From tag, and each new
   request (retries, refreshes, the un-REGISTER) the CSeq of the previous one plus one
   (§10.2: the registrar orders requests by them). Only one REGISTER is outstanding at
   a time (§10.2: no new one before a final response or a timeout).
2. 401/407 are answered with digest credentials (``sip.digest``). A challenge to a
   request that already answered a challenge of this attempt is a refusal, unless it
   says ``stale=true``. The last challenge is remembered and answered up front in
   later requests (nonce count + 1), so a refresh usually costs one round trip.
3. 423 Interval Too Brief: the request is repeated at once with its ``Min-Expires``.
4. 2xx: the granted interval is the ``expires`` parameter of our Contact in the
   response (the registrar lists every binding of the AOR), else its ``Expires``
   field, else what we asked for. The refresh is sent ``min(granted / 2, margin)``
   before the binding lapses; the margin (40 s) lets a refresh lost on UDP time out
   (Timer F, 64·T1 = 32 s) and be retried once before the registrar drops us, and the
   half keeps short intervals (tests, aggressive registrars) from refreshing late.
5. Any other final response, or no response at all, is a failure: the next attempt
   comes after ``Retry-After`` when the response has one, else after an exponential
   backoff (5 s doubling up to 300 s, scaled by a random factor in [0.5, 1] so that
   many UAs restarted together do not retry in step, RFC 5626 §4.5's shape).
6. The binding counts as registered until its granted interval runs out, even while a
   refresh is failing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from callwright.telephony.sip.dialog import new_request
from callwright.telephony.sip.digest import (
    Challenge,
    Credentials,
    authorization,
    challenges,
    choose,
)
from callwright.telephony.sip.errors import SipParseError
from callwright.telephony.sip.headers import NameAddr, Via
from callwright.telephony.sip.message import Request, Response
from callwright.telephony.sip.uri import SipUri, Uri

REFRESH_MARGIN = 40.0
# More challenges than this in one attempt means a registrar that never accepts us.
MAX_CHALLENGES = 3
MAX_INTERVAL_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Account:
    """What to register: the AOR, where, with which credentials, for how long."""

    aor: SipUri  # To and From: sip:user@domain
    registrar: SipUri  # the Request-URI: sip:domain[:port] (no user part, §10.2)
    credentials: Credentials | None = None
    expires: int = 300


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 5.0
    cap: float = 300.0

    def delay(self, failures: int, draw: float) -> float:
        """Seconds before attempt ``failures + 1``; ``draw`` is uniform in [0, 1)."""
        ceiling = min(self.cap, self.base * 2.0 ** max(0, failures - 1))
        return ceiling * (0.5 + 0.5 * draw)


class Phase(Enum):
    IDLE = "idle"  # nothing sent yet
    REGISTERING = "registering"  # a REGISTER is outstanding
    REGISTERED = "registered"  # waiting to refresh
    RETRYING = "retrying"  # the last attempt failed; waiting to try again
    UNREGISTERING = "unregistering"  # the expires=0 REGISTER is outstanding
    CLOSED = "closed"


class Registration:
    """One binding's client state (see the module's rules)."""

    def __init__(
        self,
        account: Account,
        *,
        contact: NameAddr,
        via: Via,
        call_id: str,
        from_tag: str,
        backoff: Backoff = Backoff(),
        refresh_margin: float = REFRESH_MARGIN,
        rng: Callable[[], float] = random.random,
        cnonce: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.account = account
        self.contact = NameAddr(contact.uri, contact.display)
        self.via = via
        self.call_id = call_id
        self.from_tag = from_tag
        self.backoff = backoff
        self.refresh_margin = refresh_margin
        self._rng = rng
        self._cnonce = cnonce
        self.phase = Phase.IDLE
        self.expires = account.expires  # what we ask for (raised by a 423)
        self.granted: int | None = None
        self.expires_at: float | None = None  # when the registrar drops the binding
        self.last_status: int | None = None  # of the last final response (None: timeout)
        self.last_error: str | None = None
        self.failures = 0  # consecutive
        self.total_failures = 0
        self.successes = 0
        self._cseq = 0
        self._due: float | None = 0.0  # the first poll sends at once
        self._pending: Request | None = None
        self._challenge: Challenge | None = None
        self._nc = 0
        self._challenges = 0  # answered in the current attempt
        self._fresh_auth = False  # the pending request answers a challenge of this attempt
        self._interval_retries = 0
        self._closing = False
        self._maybe_bound = False  # a REGISTER timed out: the registrar may hold us

    # -- what the caller reads -----------------------------------------------------------
    @property
    def outstanding(self) -> Request | None:
        return self._pending

    def registered(self, now: float) -> bool:
        return self.expires_at is not None and now < self.expires_at

    def next_deadline(self) -> float | None:
        """When ``poll`` has a request to send (``None``: waiting for a response, or closed)."""
        if self._pending is not None or self.phase is Phase.CLOSED:
            return None
        return self._due

    # -- driving it ----------------------------------------------------------------------
    def poll(self, now: float) -> Request | None:
        """The REGISTER due at ``now`` (first, refresh or retry), if any."""
        if self._pending is not None or self._due is None or now < self._due:
            return None
        if self.phase is Phase.CLOSED or self._closing:
            return None
        self._challenges = 0
        self._interval_retries = 0
        self._fresh_auth = False
        self.phase = Phase.REGISTERING
        return self._send(self.expires)

    def on_response(self, response: Response, now: float) -> Request | None:
        """The final response to the outstanding request; a request to send at once
        (digest retry, 423 retry, or the un-REGISTER asked for while this one ran)."""
        pending = self._pending
        if (
            pending is None
            or response.status < 200
            or response.call_id != self.call_id
            or response.cseq.number != pending.cseq.number
        ):
            return None  # not the answer we wait for: a stray or late copy
        self._pending = None
        self.last_status = status = response.status
        if status in (401, 407):
            retry = self._answer(response)
            if retry is not None:
                return retry
            return self._failed(now, "credentials refused" if self._challenge else "unauthorized")
        if self.phase is Phase.UNREGISTERING:
            self._closed()
            return None
        if 200 <= status < 300:
            return self._registered(response, now)
        if status == 423 and self._interval_retries < MAX_INTERVAL_RETRIES:
            minimum = _delta_seconds(response.headers.get("Min-Expires"))
            if minimum is not None and minimum > self.expires:
                self._interval_retries += 1
                self.expires = minimum
                return self._send(self.expires)
        return self._failed(now, f"{status} {response.reason}", _retry_after(response))

    def on_timeout(self, now: float) -> Request | None:
        """The outstanding request got no final response (Timer F, or the transport failed)."""
        if self._pending is None:
            return None
        self._pending = None
        self.last_status = None
        if self.phase is Phase.UNREGISTERING:
            self._closed()
            return None
        self._maybe_bound = True
        return self._failed(now, "timeout")

    def close(self, now: float) -> Request | None:
        """Stop: the un-REGISTER to send if the registrar may hold a binding, else
        ``None`` (also while a request is outstanding: its answer brings it)."""
        if self.phase in (Phase.CLOSED, Phase.UNREGISTERING):
            return None
        self._closing = True
        self._due = None
        if self._pending is not None:
            return None
        return self._unregister_or_close(now)

    # -- internals -----------------------------------------------------------------------
    def _send(self, expires: int) -> Request:
        self._cseq += 1
        uri = self.account.registrar
        extra = [("Expires", str(expires))]
        if self._challenge is not None and self.account.credentials is not None:
            self._nc += 1
            extra.append(self._authorization(uri))
        request = new_request(
            "REGISTER",
            uri,
            from_=NameAddr(self.account.aor).with_tag(self.from_tag),
            to=NameAddr(self.account.aor),
            via=self.via,
            call_id=self.call_id,
            cseq=self._cseq,
            contact=NameAddr(self.contact.uri, self.contact.display, {"expires": str(expires)}),
            extra=extra,
        )
        self._pending = request
        return request

    def _authorization(self, uri: Uri) -> tuple[str, str]:
        challenge = self._challenge
        credentials = self.account.credentials
        assert challenge is not None and credentials is not None
        value = authorization(
            challenge,
            credentials,
            method="REGISTER",
            uri=str(uri),
            cnonce=self._cnonce(),
            nc=self._nc,
        )
        return ("Proxy-Authorization" if challenge.proxy else "Authorization"), value

    def _answer(self, response: Response) -> Request | None:
        """The request answering a 401/407, or ``None`` if we must not answer it."""
        challenge = choose(challenges(response))
        if self.account.credentials is None or challenge is None:
            return None
        if self._fresh_auth and not challenge.stale:
            return None  # our answer to this attempt's challenge was refused
        if self._challenges >= MAX_CHALLENGES:
            return None
        self._challenges += 1
        self._challenge = challenge
        self._nc = 0
        self._fresh_auth = True
        expires = 0 if self.phase is Phase.UNREGISTERING else self.expires
        return self._send(expires)

    def _registered(self, response: Response, now: float) -> Request | None:
        granted = self._granted(response)
        if granted <= 0:
            return self._failed(now, "the registrar kept no binding")
        self.granted = granted
        self.expires_at = now + granted
        self.failures = 0
        self.successes += 1
        self._maybe_bound = False
        self.phase = Phase.REGISTERED
        self._due = now + granted - min(granted / 2, self.refresh_margin)
        if self._closing:
            return self._unregister_or_close(now)
        return None

    def _granted(self, response: Response) -> int:
        """The interval the registrar granted our binding (rule 4)."""
        try:
            contacts = response.contacts
        except SipParseError:
            contacts = ()
        for contact in contacts:
            address = contact.address
            if address is not None and _same_binding(address.uri, self.contact.uri):
                found = _delta_seconds(address.params.get("expires"))
                if found is not None:
                    return found
        found = _delta_seconds(response.headers.get("Expires"))
        return found if found is not None else self.expires

    def _failed(self, now: float, reason: str, retry_after: int | None = None) -> Request | None:
        self.last_error = reason
        if self.phase is Phase.UNREGISTERING:
            self._closed()
            return None
        self.failures += 1
        self.total_failures += 1
        self._fresh_auth = False
        if self._closing:
            return self._unregister_or_close(now)
        self.phase = Phase.RETRYING
        delay = self.backoff.delay(self.failures, self._rng())
        if retry_after is not None:
            delay = float(retry_after)
        self._due = now + delay
        return None

    def _unregister_or_close(self, now: float) -> Request | None:
        if self.registered(now) or self._maybe_bound:
            self.phase = Phase.UNREGISTERING
            self._challenges = 0
            self._fresh_auth = False
            return self._send(0)
        self._closed()
        return None

    def _closed(self) -> None:
        self.phase = Phase.CLOSED
        self.expires_at = None
        self._due = None


def _same_binding(a: Uri, b: Uri) -> bool:
    """Whether a Contact in the 200 is ours: same user, host, port and transport
    (RFC 3261 §19.1.4 compares more, but registrars rewrite parameters freely)."""
    if not isinstance(a, SipUri) or not isinstance(b, SipUri):
        return False
    return (
        a.user == b.user
        and a.host.lower() == b.host.lower()
        and a.host_port()[1] == b.host_port()[1]
        and (a.transport or "udp") == (b.transport or "udp")
    )


def _delta_seconds(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 10:
        return None
    return int(text)


def _retry_after(response: Response) -> int | None:
    """The ``Retry-After`` delay (RFC 3261 §20.33: seconds, then optional comment and
    parameters), clamped to [1 s, 1 h]."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    head = value.split(";", 1)[0].split("(", 1)[0]
    seconds = _delta_seconds(head)
    return None if seconds is None else min(max(seconds, 1), 3600)
