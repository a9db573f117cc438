"""What the dispatcher asks of a transport (SIP, Twilio, web, sandbox).

A transport knows signalling and audio, never the queue: it reports progress through
the ``CallHandle`` and returns an ``Outcome`` when the call is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

TerminalStatus = Literal["completed", "failed", "no-answer", "busy", "canceled"]


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_id: str
    org_id: str
    to_number: str
    from_number: str | None
    params: dict[str, Any]
    variables: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: TerminalStatus
    error_message: str | None = None
    call_ended_by: Literal["ASSISTANT", "USER"] | None = None
    answered_by: str | None = None
    message: str = ""


StatusSetter = Callable[[str, str], Awaitable[None]]
EventLogger = Callable[[str, str], Awaitable[None]]


@dataclass(slots=True)
class CallHandle:
    """The live side of one call, as the transport sees it."""

    info: CallInfo
    set_status: StatusSetter
    log: EventLogger
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class Transport(Protocol):
    name: str

    def serves(self, call: CallInfo) -> bool: ...

    async def run(self, call: CallHandle) -> Outcome: ...
