"""The in-process media bridge: frames and key presses both ways, hang-up propagation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from callwright.media.frames import Int16Array
from callwright.telephony.bridge import bridge
from callwright.telephony.rtp_session import CallEnded, CallerDigit, CallerFrame, MediaEvent

FRAME = 160


class FakeCall:
    """A call that delivers ``frames`` frames of ``level`` (and ``digits`` after the
    first frame), then ends unless ``stays``; it records what it was sent."""

    def __init__(self, level: int, frames: int, digits: str = "", stays: bool = False) -> None:
        self.level = level
        self.frames = frames
        self.digits = digits
        self.stays = stays
        self.received: list[int] = []  # the level of each frame sent to us
        self.pressed: list[str] = []
        self.hung_up = False
        self._hangup = asyncio.Event()

    async def events(self) -> AsyncIterator[MediaEvent]:
        for index in range(self.frames):
            await asyncio.sleep(0)
            yield CallerFrame(np.full(FRAME, self.level, dtype=np.int16))
            if index == 0:
                for digit in self.digits:
                    yield CallerDigit(digit)
        if self.stays:
            await self._hangup.wait()
        yield CallEnded()

    async def send(self, pcm: Int16Array) -> None:
        self.received.append(int(pcm[0]))

    async def send_digits(self, digits: str) -> None:
        await asyncio.sleep(0)
        self.pressed.append(digits)

    async def hang_up(self) -> None:
        self.hung_up = True
        self._hangup.set()


async def test_frames_and_digits_cross_both_ways_until_one_side_hangs_up() -> None:
    caller = FakeCall(level=1000, frames=50, digits="12", stays=True)
    target = FakeCall(level=-2000, frames=30, digits="#")
    result = await asyncio.wait_for(bridge(caller, target), 5)
    assert result.ended_by == "b"
    # Everything the target said reached the caller, frame for frame.
    assert caller.received == [-2000] * 30
    assert result.b_to_a.frames == 30 and result.b_to_a.digits == ["#"]
    # The caller's frames went to the target until the target left.
    assert target.received and set(target.received) == {1000}
    assert result.a_to_b.frames == len(target.received)
    assert result.a_to_b.digits == ["1", "2"]
    await asyncio.sleep(0.01)
    assert target.pressed == ["1", "2"] and caller.pressed == ["#"]
    # The side still up was hung up; the side that left was not.
    assert caller.hung_up and not target.hung_up


async def test_the_caller_leaving_hangs_up_the_target() -> None:
    caller = FakeCall(level=7, frames=10)
    target = FakeCall(level=9, frames=0, stays=True)
    result = await asyncio.wait_for(bridge(caller, target), 5)
    assert result.ended_by == "a" and result.a_to_b.frames == 10
    assert target.received == [7] * 10
    assert target.hung_up and not caller.hung_up


async def test_stop_hangs_up_both() -> None:
    caller = FakeCall(level=1, frames=3, stays=True)
    target = FakeCall(level=2, frames=3, stays=True)
    stop = asyncio.Event()
    running = asyncio.create_task(bridge(caller, target, stop=stop))
    for _ in range(50):
        await asyncio.sleep(0)
    assert not running.done()
    stop.set()
    result = await asyncio.wait_for(running, 5)
    assert result.ended_by == "stopped"
    assert caller.hung_up and target.hung_up
    assert caller.received == [2] * 3 and target.received == [1] * 3
