"""Call transfers end to end: a real ``callwright serve`` with SIP, real peers on loopback.

- Blind transfer by REFER: baresip calls a number whose pathway transfers to a second
  user agent; baresip (the transferee) calls the target itself, the agent leaves once
  the NOTIFY reports 200, and the call record says where it went.
- Cold transfer: the caller refuses REFER (our own user agent as a plain softphone
  answers REFER 403), so the agent calls the target through the org's trunk and bridges
  the two calls: tones and a key press cross both ways, and the target hanging up ends
  the caller's call.
- Warm transfer: the caller is held, the target called through the trunk and briefed
  (the embedded Whisper hears the brief in what the target received), then the calls are
  merged: the caller's tone reaches the target and the target's the caller;
  ``warm_transfer_call`` ends MERGED.

Tones tell the parties apart: the caller plays 1000 Hz, the target 600 Hz; a frame
"carries" a tone when that frequency holds most of its energy.
"""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callwright.providers.speech import WhisperSTT
from callwright.telephony.rtp_session import CallEnded, CallerDigit, CallerFrame
from callwright.telephony.sip_call import DialTarget, InboundCall, SipCall
from callwright.telephony.sip_ua import UserAgent
from tests.conftest import free_port
from tests.e2e import test_sip_calls
from tests.e2e.test_sip_calls import (
    CALLER,
    RATE,
    TEST_RTP,
    Baresip,
    Server,
    make_ua,
    stop,
    wait_for,
    words,
)

pytestmark = pytest.mark.e2e
# The module's server (one for this module, started like test_sip_calls's) and Whisper.
server = test_sip_calls.server
whisper = test_sip_calls.whisper

REFER_NUMBER = "+15550201"
COLD_NUMBER = "+15550202"
WARM_NUMBER = "+15550203"
COLD_TARGET = "+15550288"
WARM_TARGET = "+15550289"
CALLER_TONE = 1000.0
TARGET_TONE = 600.0
FRAME = 160
ENOUGH = 25  # tone frames (0.5 s) that prove audio flows
BRIEF = "Hello. A caller needs help with a billing question about their last invoice."


def tone(freq: float, frames: int, amplitude: int = 8000) -> np.ndarray[Any, np.dtype[np.int16]]:
    t = np.arange(frames * FRAME) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def carries(pcm: np.ndarray[Any, np.dtype[np.int16]], freq: float) -> bool:
    """Most of this frame's energy is at ``freq`` (and it is not near silence)."""
    samples = pcm.astype(np.float64)
    if np.sqrt(np.mean(samples**2)) < 300:
        return False
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    band = int(round(freq * len(samples) / RATE))
    return bool(spectrum[band - 1 : band + 2].sum() > 0.6 * spectrum.sum())


@dataclass
class Party:
    """One side of a call in the test: answers every frame it gets with a frame of its
    own tone (or silence), keeps what it heard, notes key presses and the hang-up."""

    send_tone: float | None = None
    heard: list[np.ndarray[Any, np.dtype[np.int16]]] = field(default_factory=list)
    digits: list[str] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    info: InboundCall | None = None
    call: SipCall | None = None

    def frames_with(self, freq: float) -> int:
        return sum(carries(pcm, freq) for pcm in self.heard)

    def first_with(self, freq: float) -> int | None:
        return next((i for i, pcm in enumerate(self.heard) if carries(pcm, freq)), None)

    async def run(self, call: SipCall) -> None:
        self.call = call
        own = tone(self.send_tone, 1) if self.send_tone is not None else None
        silence = np.zeros(FRAME, dtype=np.int16)
        phase = 0
        try:
            async for event in call.events():
                if isinstance(event, CallerFrame):
                    self.heard.append(event.pcm.copy())
                    if own is None:
                        await call.send(silence)
                    else:
                        # A continuous tone: 1000 and 600 Hz repeat every 20 ms frame.
                        await call.send(np.roll(own, -phase))
                elif isinstance(event, CallerDigit):
                    self.digits.append(event.digit)
                elif isinstance(event, CallEnded):
                    break
        finally:
            self.ended.set()

    async def wait(self, what: str, probe: Any, timeout: float = 40.0) -> None:
        async with asyncio.timeout(timeout):
            while not probe():
                if self.ended.is_set() and not probe():
                    raise AssertionError(f"the call ended before {what}")
                await asyncio.sleep(0.05)


class TargetPhone:
    """A user agent that answers whatever calls it with a ``Party``."""

    def __init__(self, send_tone: float | None) -> None:
        self.send_tone = send_tone
        self.parties: list[Party] = []
        self.answered = asyncio.Event()
        self.ua = UserAgent(
            listen=f"udp:127.0.0.1:{free_port()}",
            advertise="127.0.0.1",
            rtp_host="127.0.0.1",
            rtp_ports=TEST_RTP,
            on_call=self._on_call,
        )

    async def _on_call(self, call: SipCall, info: InboundCall) -> None:
        party = Party(send_tone=self.send_tone, info=info)
        self.parties.append(party)
        self.answered.set()
        await party.run(call)

    @property
    def party(self) -> Party:
        assert self.parties, "the target was never called"
        return self.parties[0]

    async def __aenter__(self) -> TargetPhone:
        await self.ua.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ua.close()


def transfer_pathway(name: str, number: str, warm: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Transfer",
        "isStart": True,
        "text": "Let me put you through.",
        "transferNumber": number,
    }
    if warm is not None:
        data["warmTransferFields"] = warm
    return {
        "name": name,
        "nodes": [{"id": "t", "type": "Transfer Call", "data": data}],
        "edges": [],
    }


def configure(server: Server, number: str, pathway: dict[str, Any]) -> None:
    created = server.api.post("/v1/pathway/create", json=pathway)
    assert created.status_code == 200, created.text
    server.configure(number, pathway_id=created.json()["pathway_id"])


@contextlib.contextmanager
def trunk_to(server: Server, port: int) -> Iterator[None]:
    made = server.api.post(
        "/v1/sip/trunks", json={"name": "target", "host": "127.0.0.1", "port": port}
    )
    assert made.status_code == 200, made.text
    try:
        yield
    finally:
        server.api.delete(f"/v1/sip/trunks/{made.json()['data']['trunk_id']}")


@contextlib.asynccontextmanager
async def connected(
    server: Server, target: TargetPhone, number: str
) -> AsyncIterator[tuple[SipCall, Party, Party, asyncio.Task[None]]]:
    """A caller (``CALLER_TONE``) dials ``number``, whose pathway transfers to ``target``
    through a trunk, until each side hears the other's tone: the call, the caller, the
    target's party and the caller's running task."""
    caller_ua = await make_ua()
    with trunk_to(server, target.ua.port):
        try:
            call = await caller_ua.dial(
                DialTarget("127.0.0.1", server.sip_port, caller_id=CALLER), number
            )
            caller = Party(send_tone=CALLER_TONE)
            talking = asyncio.create_task(caller.run(call))
            async with asyncio.timeout(40):
                await target.answered.wait()
            party = target.party
            await party.wait("the caller's tone", lambda: party.frames_with(CALLER_TONE) > ENOUGH)
            await caller.wait("the target's tone", lambda: caller.frames_with(TARGET_TONE) > ENOUGH)
            yield call, caller, party, talking
        finally:
            await caller_ua.close()


def the_call(server: Server, number: str) -> str:
    found = wait_for("the inbound call", lambda: server.inbound_calls(number))
    assert len(found) == 1, found
    return str(found[0]["call_id"])


def event_types(server: Server, call_id: str) -> list[str]:
    return [e["type"] for e in server.events(call_id)]


# -- blind transfer by REFER --------------------------------------------------------------
@pytest.mark.peer
@pytest.mark.slow
async def test_refer_hands_the_caller_to_a_second_user_agent(
    server: Server, tmp_path: Path
) -> None:
    source = tmp_path / "tone.wav"
    with wave.open(str(source), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(tone(CALLER_TONE, 50 * 30).astype("<i2").tobytes())
    async with TargetPhone(send_tone=None) as target:
        uri = f"sip:transfer-desk@127.0.0.1:{target.ua.port}"
        configure(server, REFER_NUMBER, transfer_pathway("REFER", uri))
        baresip = Baresip(tmp_path, source, CALLER)
        process = await baresip.start(
            f"/dial sip:{REFER_NUMBER}@127.0.0.1:{server.sip_port}", seconds=40
        )
        try:
            async with asyncio.timeout(40):
                await target.answered.wait()
            party = target.party
            await party.wait(
                "the transferee's audio", lambda: party.frames_with(CALLER_TONE) > ENOUGH
            )
            call_id = await asyncio.to_thread(the_call, server, REFER_NUMBER)
            call = await asyncio.to_thread(
                wait_for, "the transferred call to end", lambda: server.finished(call_id)
            )
            assert party.call is not None
            await party.call.hang_up()
        finally:
            await stop(process)
    # The INVITE came from the transferee (baresip, as the caller), not from the agent.
    assert party.info is not None, baresip.log()
    assert party.info.from_number == CALLER and party.info.to_number == "transfer-desk"
    assert party.info.remote[1] == baresip.port
    assert call["status"] == "completed", call
    assert call["transferred_to"] == uri and call["transferred_at"], call
    assert call["call_ended_by"] == "ASSISTANT"
    # baresip's view: the target's call came up (its NOTIFY 200 to us), then the agent
    # ended the original call (our BYE).
    log = baresip.log()
    established = log.find("Call established: sip:transfer-desk@")
    assert established >= 0, log
    assert log.find(f"Call with sip:{REFER_NUMBER}@", established) > established, log
    types = event_types(server, call_id)
    assert "call.transfer" in types and "call.transfer_failed" not in types, types
    assert "call.transfer_fallback" not in types


# -- cold transfer: REFER refused, the agent bridges ---------------------------------------
@pytest.mark.peer
@pytest.mark.slow
async def test_refused_refer_falls_back_to_a_bridged_call(server: Server) -> None:
    async with TargetPhone(send_tone=TARGET_TONE) as target:
        configure(server, COLD_NUMBER, transfer_pathway("Cold", COLD_TARGET))
        async with connected(server, target, COLD_NUMBER) as (call, caller, party, talking):
            await call.send_digits("5")
            await party.wait("the key press", lambda: party.digits)
            assert party.call is not None
            await party.call.hang_up()  # the target leaves: the caller is hung up
            async with asyncio.timeout(10):
                await talking
    assert party.info is not None and party.info.to_number == COLD_TARGET
    assert party.digits == ["5"]
    assert call.ended_by == "remote"
    call_id = await asyncio.to_thread(the_call, server, COLD_NUMBER)
    record = await asyncio.to_thread(wait_for, "the record", lambda: server.finished(call_id))
    assert record["status"] == "completed", record
    assert record["transferred_to"] == COLD_TARGET and record["transferred_at"]
    events = server.events(call_id)
    types = [e["type"] for e in events]
    for expected in ("call.transfer_failed", "call.transfer_fallback", "call.bridged"):
        assert expected in types, types
    ended = [e for e in events if e["type"] == "call.bridge_ended"]
    assert ended and ended[0]["data"]["ended_by"] == "target", events


# -- warm transfer --------------------------------------------------------------------------
@pytest.mark.peer
@pytest.mark.slow
async def test_warm_transfer_briefs_the_target_then_merges(
    server: Server, whisper: WhisperSTT
) -> None:
    warm = {
        "isEnabled": True,
        "agentPrompt": BRIEF,
        "isAgentPromptStatic": True,
        "waitingPrompt": "Please hold while I reach them.",
        "mergeCallPrompt": "You are now connected.",
    }
    async with TargetPhone(send_tone=TARGET_TONE) as target:
        configure(server, WARM_NUMBER, transfer_pathway("Warm", WARM_TARGET, warm))
        async with connected(server, target, WARM_NUMBER) as (call, caller, party, talking):
            await call.hang_up()  # the caller leaves: the target is hung up
            async with asyncio.timeout(10):
                await party.ended.wait()
            await talking
    merged_at = party.first_with(CALLER_TONE)
    assert merged_at is not None
    briefing = np.concatenate(party.heard[:merged_at])
    heard = (await whisper.transcribe(briefing, RATE, language="en")).text
    print(f"the target heard before the merge: {heard!r}")
    assert {"billing", "question", "invoice"} <= set(words(heard)), heard
    # The caller was held (the waiting prompt) before hearing the target.
    first_target = caller.first_with(TARGET_TONE)
    assert first_target is not None
    held = np.concatenate(caller.heard[:first_target])
    assert np.abs(held).max() > 1000
    call_id = await asyncio.to_thread(the_call, server, WARM_NUMBER)
    record = await asyncio.to_thread(wait_for, "the record", lambda: server.finished(call_id))
    assert record["status"] == "completed", record
    assert record["transferred_to"] == WARM_TARGET and record["transferred_at"]
    states = [
        e["data"]["warm_transfer_call"]["state"]
        for e in server.events(call_id)
        if e["type"] == "call.warm_transfer"
    ]
    assert states[0] == "STARTED" and states[-1] == "MERGED", states
    assert record["warm_transfer_call"] == {
        "state": "MERGED",
        "proxy_agent_calls": [{"state": "MERGED", "call_id": None, "phone_number": WARM_TARGET}],
    }
