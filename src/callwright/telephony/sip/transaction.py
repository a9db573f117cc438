"""SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state) as pure state machines.

Theory of operation
-------------------
A transaction is a request and its responses. It never touches a socket or a clock:
the caller feeds it messages and the current time (``now``, seconds on a monotonic
scale) and gets back a list of effects to carry out:

- ``Send(data, peer)``: put these bytes on the wire to ``peer``;
- ``Deliver(message, transaction)``: hand a message to the transaction user (the UA
  core): a new request, a response to our request, or an ACK for a 2xx;
- ``Timeout(transaction)``: no answer (client, Timer B/F) or no ACK (server, Timer H/L);
- ``Terminated(transaction)``: the transaction is over and forgotten.

``next_deadline()`` says when ``on_timer(now)`` must be called next. Rules:

1. Over an unreliable transport (UDP) a client retransmits: INVITE at T1, 2·T1,
   4·T1... (Timer A) until a provisional response or Timer B (64·T1); a non-INVITE
   request at T1 doubling up to T2 (Timer E), every T2 once a 1xx came, until Timer F
   (64·T1). Over TCP nothing is retransmitted and only B/F remain.
2. A client INVITE that gets a 300-699 answers it with an ACK it builds itself, and
   re-sends that ACK for each retransmission of the response until Timer D (32 s on
   UDP). A 2xx moves it to Accepted (RFC 6026) for Timer M (64·T1): each 2xx copy is
   delivered, because the ACK for a 2xx belongs to the dialog, not the transaction.
   While ringing (Proceeding) it waits at most Timer C (180 s, restarted by each 1xx),
   and 64·T1 once we sent a CANCEL (RFC 3261 §9.1), then times out.
3. A server INVITE sends 100 Trying at once, answers retransmitted INVITEs with its
   last response, and retransmits a 300-699 (Timer G: T1 doubling to T2) until the ACK
   comes (then Timer I, T4) or Timer H (64·T1) says it never will. After a 2xx it
   retransmits the 2xx the same way until ``TransactionLayer`` matches the ACK (by
   Call-ID and CSeq, RFC 3261 §13.3.1.4) or Timer L (64·T1) expires, which is a timeout.
4. A server non-INVITE re-sends its last response to each retransmission and lingers
   64·T1 after the final one (Timer J) to absorb late copies.
5. Matching (§17.1.3, §17.2.3): a response belongs to the client transaction with its
   top Via branch and CSeq method; a request to the server transaction with its branch,
   sent-by and method (ACK counts as INVITE). A branch without the ``z9hG4bK`` cookie
   comes from an RFC 2543 peer: then Request-URI, From tag, Call-ID, CSeq and top Via
   identify the transaction.
"""

from __future__ import annotations

import heapq
import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum

from callwright.telephony.sip.headers import BRANCH_COOKIE, Headers
from callwright.telephony.sip.message import Request, Response, make_response

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Timers:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0
    # How long a client INVITE may stay in Proceeding (ringing) without a final answer
    # before it gives up: RFC 3261 leaves this to the TU; we borrow the proxy's Timer C
    # (more than 3 minutes, restarted by each provisional response) as a safety net.
    timer_c: float = 180.0


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes
    peer: Address


@dataclass(frozen=True, slots=True)
class Deliver:
    message: Request | Response
    transaction: Transaction | None


@dataclass(frozen=True, slots=True)
class Timeout:
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class Terminated:
    transaction: Transaction


Effect = Send | Deliver | Timeout | Terminated


class State(Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


# The state machines name states through these module constants: on Python 3.11 each
# `State.X` lookup goes through EnumType's __getattr__ hook, several times the cost of a
# global, and the matching path compares states many times per message.
_CALLING = State.CALLING
_TRYING = State.TRYING
_PROCEEDING = State.PROCEEDING
_ACCEPTED = State.ACCEPTED
_COMPLETED = State.COMPLETED
_CONFIRMED = State.CONFIRMED
_TERMINATED = State.TERMINATED

TransactionKey = tuple[str, ...]


def server_key(request: Request) -> TransactionKey:
    """The key a request is matched by (RFC 3261 §17.2.3); ACK maps to its INVITE."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    sent_by = f"{via.host.lower()}:{via.port or ''}"
    branch = via.branch
    if branch is not None and branch.startswith(BRANCH_COOKIE):
        return (branch, sent_by, method)
    # RFC 2543 peers: no unique branch. The To tag is left out so that the ACK for
    # our non-2xx (which carries our tag) finds its INVITE.
    return (
        "2543",
        str(request.uri),
        request.from_.tag or "",
        request.call_id,
        str(request.cseq.number),
        f"{via.transport} {sent_by} {branch or ''}",
        method,
    )


class Transaction(ABC):
    """State shared by the four transaction kinds: the request, the peer, the timers."""

    def __init__(
        self, request: Request, peer: Address, reliable: bool, timers: Timers, key: TransactionKey
    ) -> None:
        self.request = request
        self.peer = peer
        self.reliable = reliable
        self.timers = timers
        self.key = key
        self.state = _TRYING
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self.scheduled: float | None = None  # the deadline TransactionLayer queued

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request.method} {self.state.value}>"

    @property
    def terminated(self) -> bool:
        return self.state is _TERMINATED

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values()) if self._deadlines else None

    def on_timer(self, now: float) -> list[Effect]:
        """Fire every timer due at ``now``, earliest first."""
        effects: list[Effect] = []
        deadlines = self._deadlines
        while deadlines and self.state is not _TERMINATED:
            name = min(deadlines, key=deadlines.__getitem__)
            if deadlines[name] > now:
                break
            del deadlines[name]
            effects += self._fire(name, now)
        return effects

    @abstractmethod
    def _fire(self, name: str, now: float) -> list[Effect]:
        """Act on the expiry of timer ``name``."""

    def _start(self, name: str, now: float, after: float) -> None:
        self._deadlines[name] = now + after
        self._intervals[name] = after

    def _stop(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _terminate(self) -> list[Effect]:
        self.state = _TERMINATED
        self._deadlines.clear()
        return [Terminated(self)]

    def _linger(self, name: str, now: float, after: float) -> list[Effect]:
        """Wait ``after`` seconds before terminating (at once when there is nothing to wait)."""
        if after <= 0:
            return self._terminate()
        self._start(name, now, after)
        return []


# ----------------------------------------------------------------------------- client


class ClientTransaction(Transaction):
    """Client INVITE (§17.1.1) or non-INVITE (§17.1.2) transaction."""

    def __init__(
        self, request: Request, peer: Address, reliable: bool = False, timers: Timers = Timers()
    ) -> None:
        branch = request.top_via.branch or ""
        super().__init__(request, peer, reliable, timers, (branch, request.cseq.method))
        self.invite = request.method == "INVITE"
        self._data = request.serialize()
        self._ack: bytes | None = None
        self.state = _CALLING if self.invite else _TRYING
        self.canceled = False

    def cancel_sent(self, now: float) -> None:
        """We sent a CANCEL for this INVITE: give the peer 64·T1 to send its final answer."""
        if self.invite and self.state in (_CALLING, _PROCEEDING):
            self.canceled = True
            self._start("C", now, 64 * self.timers.t1)

    def start(self, now: float) -> list[Effect]:
        """Send the request and arm the timers."""
        t1 = self.timers.t1
        if not self.reliable:
            self._start("A" if self.invite else "E", now, t1)
        self._start("B" if self.invite else "F", now, 64 * t1)
        return [Send(self._data, self.peer)]

    def on_response(self, response: Response, now: float) -> list[Effect]:
        status = response.status
        state = self.state
        if self.invite:
            if state in (_CALLING, _PROCEEDING):
                if status < 200:
                    self.state = _PROCEEDING
                    self._stop("A", "B")
                    if not self.canceled:
                        self._start("C", now, self.timers.timer_c)
                    return [Deliver(response, self)]
                self._stop("A", "B", "C")
                if status < 300:
                    self.state = _ACCEPTED
                    self._start("M", now, 64 * self.timers.t1)
                    return [Deliver(response, self)]
                self.state = _COMPLETED
                self._ack = make_ack(self.request, response).serialize()
                effects: list[Effect] = [Send(self._ack, self.peer), Deliver(response, self)]
                return effects + self._linger("D", now, 0 if self.reliable else self.timers.timer_d)
            if state is _ACCEPTED and 200 <= status < 300:
                return [Deliver(response, self)]
            if state is _COMPLETED and status >= 300 and self._ack is not None:
                return [Send(self._ack, self.peer)]
            return []
        if state in (_TRYING, _PROCEEDING):
            if status < 200:
                self.state = _PROCEEDING
                return [Deliver(response, self)]
            self.state = _COMPLETED
            self._stop("E", "F")
            linger = self._linger("K", now, 0 if self.reliable else self.timers.t4)
            return [Deliver(response, self), *linger]
        return []

    def _fire(self, name: str, now: float) -> list[Effect]:
        if name == "A":
            self._start("A", now, 2 * self._intervals["A"])
            return [Send(self._data, self.peer)]
        if name == "E":
            interval = self.timers.t2
            if self.state is _TRYING:
                interval = min(2 * self._intervals["E"], self.timers.t2)
            self._start("E", now, interval)
            return [Send(self._data, self.peer)]
        if name in ("B", "C", "F"):
            return [Timeout(self), *self._terminate()]
        return self._terminate()  # D, K, M


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK for a 300-699 answer to ``invite`` (RFC 3261 §17.1.1.3)."""
    items = [
        ("Via", str(invite.top_via)),
        ("Max-Forwards", "70"),
        ("From", invite.headers.get("From") or ""),
        ("To", response.headers.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.number} ACK"),
    ]
    items += [("Route", value) for value in invite.headers.get_all("Route")]
    return Request("ACK", invite.uri, Headers(items))


def make_cancel(invite: Request) -> Request:
    """A CANCEL for our pending ``invite`` (RFC 3261 §9.1): same branch, CSeq number."""
    headers = Headers(
        [
            ("Via", str(invite.top_via)),
            ("Max-Forwards", "70"),
            ("From", invite.headers.get("From") or ""),
            ("To", invite.headers.get("To") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq.number} CANCEL"),
        ]
        + [("Route", value) for value in invite.headers.get_all("Route")]
    )
    return Request("CANCEL", invite.uri, headers)


# ----------------------------------------------------------------------------- server


class ServerTransaction(Transaction):
    """Server INVITE (§17.2.1) or non-INVITE (§17.2.2) transaction."""

    def __init__(
        self,
        request: Request,
        peer: Address,
        reliable: bool = False,
        timers: Timers = Timers(),
        key: TransactionKey | None = None,
    ) -> None:
        super().__init__(request, peer, reliable, timers, key or server_key(request))
        self.invite = request.method == "INVITE"
        self.state = _PROCEEDING if self.invite else _TRYING
        self.last_status: int | None = None  # of the last response sent
        self._last: bytes | None = None
        self.acked = False
        # How the ACK for a 2xx finds us: it is a transaction of its own (§13.3.1.4).
        self.ack_key = (request.call_id, request.cseq.number)

    def start(self, now: float, trying: bool = True) -> list[Effect]:
        """Deliver the new request to the TU (and send 100 Trying for an INVITE)."""
        effects: list[Effect] = [Deliver(self.request, self)]
        if self.invite and trying:
            effects += self.respond(make_response(self.request, 100), now)
        return effects

    def on_request(self, request: Request, now: float) -> list[Effect]:
        """A retransmission of our request, or the ACK for our non-2xx final response."""
        if request.method == "ACK":
            if self.state is _COMPLETED:
                self.state = _CONFIRMED
                self._stop("G", "H")
                return self._linger("I", now, 0 if self.reliable else self.timers.t4)
            if self.state is _ACCEPTED:
                # Only an RFC 2543 peer's ACK for our 2xx can share the INVITE's key.
                self.ack_2xx(now)
                return [Deliver(request, self)]
            return []
        if self._last is not None and self.state in (
            _PROCEEDING,
            _COMPLETED,
        ):
            return [Send(self._last, self.peer)]
        return []

    def respond(self, response: Response, now: float) -> list[Effect]:
        """Send the TU's ``response`` through the transaction."""
        if self.state not in (_TRYING, _PROCEEDING):
            raise ValueError(f"cannot respond in state {self.state.value}")
        self.last_status = response.status
        self._last = data = response.serialize()
        effects: list[Effect] = [Send(data, self.peer)]
        status = response.status
        t1 = self.timers.t1
        if status < 200:
            self.state = _PROCEEDING
            return effects
        if not self.invite:
            self.state = _COMPLETED
            return effects + self._linger("J", now, 0 if self.reliable else 64 * t1)
        self.state = _ACCEPTED if status < 300 else _COMPLETED
        if not self.reliable:
            self._start("G", now, t1)
        self._start("L" if status < 300 else "H", now, 64 * t1)
        return effects

    def ack_2xx(self, now: float) -> list[Effect]:
        """The TU matched the ACK for our 2xx: stop retransmitting it."""
        self.acked = True
        self._stop("G")
        return []

    def _fire(self, name: str, now: float) -> list[Effect]:
        if name == "G":
            self._start("G", now, min(2 * self._intervals["G"], self.timers.t2))
            assert self._last is not None
            return [Send(self._last, self.peer)]
        if name == "H" or (name == "L" and not self.acked):
            return [Timeout(self), *self._terminate()]
        return self._terminate()  # I, J, L after the ACK


# ------------------------------------------------------------------------------ layer


@dataclass(slots=True)
class TransactionLayer:
    """Every live transaction of a UA, matched and timed together.

    ``send_request`` starts a client transaction, ``receive`` routes an incoming message
    (a new request starts a server transaction), ``respond`` sends a TU response,
    ``on_timer`` fires what is due, and ``next_deadline`` tells the transport when to
    call ``on_timer`` again. Terminated transactions are dropped.
    """

    timers: Timers = field(default_factory=Timers)
    clients: dict[TransactionKey, ClientTransaction] = field(default_factory=dict)
    servers: dict[TransactionKey, ServerTransaction] = field(default_factory=dict)
    # INVITE server transactions that sent a 2xx, by (Call-ID, CSeq number), so the
    # ACK (a separate transaction with its own branch) can stop the retransmissions.
    _accepted: dict[tuple[str, int], ServerTransaction] = field(default_factory=dict)
    _heap: list[tuple[float, int, Transaction]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def send_request(
        self, request: Request, peer: Address, now: float, reliable: bool = False
    ) -> tuple[ClientTransaction, list[Effect]]:
        txn = ClientTransaction(request, peer, reliable, self.timers)
        self.clients[txn.key] = txn
        effects = txn.start(now)
        self._after(txn, effects)
        return txn, effects

    def cancel(
        self, transaction: ClientTransaction, now: float
    ) -> tuple[ClientTransaction, list[Effect]]:
        """Send a CANCEL for our pending INVITE ``transaction`` (RFC 3261 §9.1)."""
        transaction.cancel_sent(now)
        self._after(transaction, [])
        return self.send_request(
            make_cancel(transaction.request), transaction.peer, now, transaction.reliable
        )

    def receive(
        self, message: Request | Response, peer: Address, now: float, reliable: bool = False
    ) -> list[Effect]:
        """Route one parsed message (raises ``SipParseError`` if it lacks Via or CSeq)."""
        if isinstance(message, Response):
            client = self.clients.get((message.top_via.branch or "", message.cseq.method))
            if client is None:
                return [Deliver(message, None)]  # stray: e.g. a 2xx from another fork
            effects = client.on_response(message, now)
            self._after(client, effects)
            return effects
        key: TransactionKey = server_key(message)
        server = self.servers.get(key)
        if server is not None:
            effects = server.on_request(message, now)
            self._after(server, effects)
            return effects
        if message.method == "ACK":
            accepted = self._accepted.get((message.call_id, message.cseq.number))
            if accepted is not None:
                accepted.ack_2xx(now)
                self._after(accepted, [])
            return [Deliver(message, accepted)]
        server = ServerTransaction(message, peer, reliable, self.timers, key)
        self.servers[key] = server
        effects = server.start(now)
        self._after(server, effects)
        return effects

    def respond(
        self, transaction: ServerTransaction, response: Response, now: float
    ) -> list[Effect]:
        effects = transaction.respond(response, now)
        if transaction.state is _ACCEPTED:
            self._accepted[transaction.ack_key] = transaction
        self._after(transaction, effects)
        return effects

    def find_invite(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL refers to (RFC 3261 §9.2)."""
        key = server_key(cancel)
        return self.servers.get((*key[:-1], "INVITE"))

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, txn = heap[0]
            if txn.next_deadline() == deadline and txn.state is not _TERMINATED:
                return deadline
            heapq.heappop(heap)
        return None

    def on_timer(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, txn = heapq.heappop(heap)
            if txn.state is _TERMINATED or txn.next_deadline() != deadline:
                continue
            txn.scheduled = None
            fired = txn.on_timer(now)
            self._after(txn, fired)
            effects += fired
        return effects

    def __len__(self) -> int:
        return len(self.clients) + len(self.servers)

    def _after(self, txn: Transaction, effects: list[Effect]) -> None:
        if txn.state is _TERMINATED:
            if isinstance(txn, ClientTransaction):
                self.clients.pop(txn.key, None)
            elif isinstance(txn, ServerTransaction):
                self.servers.pop(txn.key, None)
                if self._accepted.get(txn.ack_key) is txn:
                    del self._accepted[txn.ack_key]
            return
        deadline = txn.next_deadline()
        if deadline != txn.scheduled:
            txn.scheduled = deadline
            if deadline is not None:
                heapq.heappush(self._heap, (deadline, next(self._seq), txn))
