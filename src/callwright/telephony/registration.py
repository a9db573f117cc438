"""Keeping accounts registered to a PBX or carrier: ``sip.register`` driven by asyncio.

One task per account runs the pure ``Registration`` machine over the ``UserAgent``:
it sends the REGISTER that is due through a client transaction (``UserAgent.request``),
feeds the final response or the timeout back, and sleeps until the next deadline
(refresh or retry). ``close`` wakes every task to un-REGISTER and gives them a bounded
time (a registrar that does not answer must not hold the shutdown for Timer F's 32 s).

INVITEs the registrar forwards to our Contact arrive at the user agent like any other;
the Contact's user (``contact_user``, default the AOR's user) is the number the inbound
lookup sees in the Request-URI. Passwords are never logged: log records name the AOR.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from callwright.telephony.sip.dialog import new_call_id, new_tag
from callwright.telephony.sip.digest import Credentials
from callwright.telephony.sip.message import Request, Response
from callwright.telephony.sip.register import Account, Backoff, Phase, Registration
from callwright.telephony.sip.uri import SipUri
from callwright.telephony.sip_transport import TransportName
from callwright.telephony.sip_ua import UserAgent

log = logging.getLogger(__name__)

UNREGISTER_SECONDS = 4.0


@dataclass(frozen=True, slots=True)
class Target:
    """One account to register: ``user@host`` at the registrar ``host:port``."""

    user: str
    host: str
    port: int = 5060
    transport: TransportName = "udp"
    password: str | None = field(default=None, repr=False)
    auth_user: str | None = None
    expires: int = 300
    contact_user: str | None = None

    @property
    def aor(self) -> SipUri:
        return SipUri(self.host, self.user)

    def account(self) -> Account:
        params = {"transport": "tcp"} if self.transport == "tcp" else {}
        registrar = SipUri(self.host, None, None, None if self.port == 5060 else self.port, params)
        credentials = None
        if self.password is not None:
            credentials = Credentials(self.auth_user or self.user, self.password)
        return Account(self.aor, registrar, credentials, self.expires)


@dataclass(slots=True)
class _Entry:
    target: Target
    registration: Registration | None = None
    task: asyncio.Task[None] | None = None


class Registrations:
    """The registration clients of one user agent (see the module docstring)."""

    def __init__(
        self,
        ua: UserAgent,
        targets: Sequence[Target],
        *,
        backoff: Backoff = Backoff(),
        unregister_seconds: float = UNREGISTER_SECONDS,
    ) -> None:
        self.ua = ua
        self.backoff = backoff
        self.unregister_seconds = unregister_seconds
        self._entries = [_Entry(target) for target in targets]
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Register every account (the user agent must be started)."""
        self._loop = asyncio.get_running_loop()
        for entry in self._entries:
            if entry.task is None:
                entry.task = asyncio.create_task(
                    self._run(entry), name=f"sip-register-{entry.target.aor}"
                )

    async def close(self) -> None:
        """Un-REGISTER every account, waiting at most ``unregister_seconds``."""
        self._stopping.set()
        tasks = [entry.task for entry in self._entries if entry.task is not None]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self.unregister_seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Per AOR: ``registered`` (0/1), ``registrations`` (accepted REGISTERs) and
        ``failures`` (attempts that failed), for ``/metrics``."""
        # Read from the loop's clock (the one the machines run on), from any thread.
        now = self._loop.time() if self._loop is not None else 0.0
        found: dict[str, dict[str, int]] = {}
        for entry in self._entries:
            reg = entry.registration
            found[str(entry.target.aor)] = {
                "registered": int(reg is not None and reg.registered(now)),
                "registrations": reg.successes if reg is not None else 0,
                "failures": reg.total_failures if reg is not None else 0,
            }
        return found

    def registration(self, aor: str) -> Registration | None:
        for entry in self._entries:
            if str(entry.target.aor) == aor:
                return entry.registration
        return None

    # -- one account -----------------------------------------------------------------------
    async def _run(self, entry: _Entry) -> None:
        target = entry.target
        ua = self.ua
        reg = Registration(
            target.account(),
            contact=ua.local_contact(target.transport, target.contact_user or target.user),
            via=ua.local_via(target.transport),
            call_id=new_call_id(ua.advertise),
            from_tag=new_tag(),
            backoff=self.backoff,
        )
        entry.registration = reg
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            request = reg.close(now) if self._stopping.is_set() else reg.poll(now)
            while request is not None:
                request = await self._exchange(target, reg, request)
            if reg.phase is Phase.CLOSED:
                return
            deadline = reg.next_deadline()
            wait = None if deadline is None else max(0.0, deadline - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._stopping.wait()

    async def _exchange(
        self, target: Target, reg: Registration, request: Request
    ) -> Request | None:
        """Send one REGISTER, feed the outcome back; the request to send next, if any."""
        response: Response | None = None
        try:
            peer = await self.ua.resolve(target.host, target.port)
            response = await self.ua.request(request, peer, target.transport)
        except OSError as exc:
            log.warning(
                "sip.register_unreachable", extra={"aor": str(target.aor), "error": str(exc)}
            )
        now = asyncio.get_running_loop().time()
        before = (reg.successes, reg.total_failures, reg.failures)
        follow = reg.on_timeout(now) if response is None else reg.on_response(response, now)
        self._report(target, reg, before, request.headers.get("Expires"), now)
        return follow

    def _report(
        self,
        target: Target,
        reg: Registration,
        before: tuple[int, int, int],
        asked: str | None,
        now: float,
    ) -> None:
        aor = str(target.aor)
        successes, total_failures, failures = before
        if reg.successes > successes:
            # Refreshes log at debug: an info line every few minutes per account is noise.
            level = logging.INFO if successes == 0 or failures else logging.DEBUG
            log.log(
                level,
                "sip.registered",
                extra={"aor": aor, "expires": reg.granted, "registrations": reg.successes},
            )
        elif reg.total_failures > total_failures:
            deadline = reg.next_deadline()
            log.warning(
                "sip.register_failed",
                extra={
                    "aor": aor,
                    "status": reg.last_status,
                    "reason": reg.last_error,
                    "failures": reg.failures,
                    "retry_in": None if deadline is None else round(deadline - now, 1),
                    "registered": reg.registered(now),
                },
            )
        if reg.phase is Phase.CLOSED and asked == "0":
            log.info("sip.unregistered", extra={"aor": aor, "status": reg.last_status})
