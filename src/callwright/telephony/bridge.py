"""Two live calls joined in process (a back-to-back user agent's media bridge).

``bridge(a, b)`` relays each side's media to the other until one side hangs up:
every caller frame of ``a`` is sent to ``b`` and every frame of ``b`` to ``a``; key
presses are passed on as key presses (RFC 4733 events or tones, whatever the receiving
side negotiated). When either side's stream ends, the other side is hung up (BYE) and
the bridge returns which side ended it, with the frame and digit counts.

Both sides are paced by their own RTP clocks (one frame in, one frame out per 20 ms on
each), so a relay never buffers more than the receiving session's outbox allows.
Key presses are sent from a side task per direction: ``send_digits`` returns once the
digits are on the wire, and waiting for that in the relay would stall the audio.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from callwright.media.frames import Int16Array
from callwright.telephony.rtp_session import CallEnded, CallerDigit, CallerFrame, MediaEvent

Side = Literal["a", "b", "stopped"]


class MediaPort(Protocol):
    """What the bridge needs of a call (``SipCall`` has this shape)."""

    def events(self) -> AsyncIterator[MediaEvent]: ...

    async def send(self, pcm: Int16Array) -> None: ...

    async def send_digits(self, digits: str) -> None: ...

    async def hang_up(self) -> None: ...


@dataclass(slots=True)
class Relayed:
    """What went one way across the bridge."""

    frames: int = 0
    digits: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BridgeResult:
    ended_by: Side  # the side whose line ended first ("stopped": ``stop`` was set)
    a_to_b: Relayed
    b_to_a: Relayed


async def _relay(source: MediaPort, sink: MediaPort, relayed: Relayed) -> None:
    """Source's media into the sink until the source's stream ends."""
    digits: asyncio.Queue[str] = asyncio.Queue()

    async def press() -> None:
        while True:
            await sink.send_digits(await digits.get())

    presser = asyncio.create_task(press(), name="bridge-digits")
    try:
        async for event in source.events():
            if isinstance(event, CallerFrame):
                await sink.send(event.pcm)
                relayed.frames += 1
            elif isinstance(event, CallerDigit):
                relayed.digits.append(event.digit)
                digits.put_nowait(event.digit)
            elif isinstance(event, CallEnded):
                return
    finally:
        presser.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await presser


async def bridge(a: MediaPort, b: MediaPort, *, stop: asyncio.Event | None = None) -> BridgeResult:
    """Relay ``a`` <-> ``b`` until one side hangs up (or ``stop`` is set: both are
    hung up); the other side is hung up too."""
    a_to_b, b_to_a = Relayed(), Relayed()
    forward = asyncio.create_task(_relay(a, b, a_to_b), name="bridge-a-b")
    backward = asyncio.create_task(_relay(b, a, b_to_a), name="bridge-b-a")
    waits: set[asyncio.Future[Any]] = {forward, backward}
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    if stopper is not None:
        waits.add(stopper)
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (forward, backward, stopper):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(forward, backward, return_exceptions=True)
        if stopper is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
    ended_by: Side = "a" if forward in done else "b" if backward in done else "stopped"
    # The side still up is left with nobody: end it too (both, when stopped).
    for side, port in (("a", a), ("b", b)):
        if ended_by != side:
            with contextlib.suppress(Exception):
                await port.hang_up()
    for task in (forward, backward):
        failure = task.exception() if task in done else None
        if failure is not None:
            raise failure
    return BridgeResult(ended_by, a_to_b, b_to_a)
