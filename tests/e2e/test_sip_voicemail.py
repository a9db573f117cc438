"""Answering-machine detection end to end: a real ``callwright serve`` calls baresip
through a trunk with detection on, and baresip plays what answers.

- A voicemail: baresip plays a Piper greeting and a 1 kHz beep. The call records
  ``answered_by`` = voicemail, the agent leaves its message after the beep (Whisper
  hears it in what baresip recorded, starting where the beep ended) and hangs up.
- A person: baresip says "Hello?" and waits. The call records ``answered_by`` = human
  and the conversation runs: the agent's greeting is in the transcript.
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callwright.media.answering import AnsweringDetector, Beep
from callwright.providers.speech import PiperTTS, WhisperSTT
from callwright.providers.speech._audio import resample
from tests.e2e.test_sip_calls import (
    RATE,
    Baresip,
    Server,
    agent_text,
    demo_server,
    read_wav,
    stop,
    transcribe,
    user_text,
    wait_for,
    words,
    write_wav,
)

pytestmark = pytest.mark.e2e

CALLEE = "+15551230077"
TRUNK_CALLER_ID = "+15550188"
SERVER_RTP = (45000, 45999)
GREETING = (
    "Hi, you've reached the Smith residence. We can't come to the phone right now. "
    "Please leave a message after the tone."
)
MESSAGE = "This is Maple Street Dental calling about your appointment. Please call us back."
MESSAGE_WORDS = {"maple", "dental", "appointment"}
LEAD_S, PAUSE_S, BEEP_S = 0.5, 0.4, 0.5
FRAME = 160
Pcm = np.ndarray[Any, np.dtype[np.int16]]


def seconds(n: float) -> Pcm:
    return np.zeros(round(n * RATE), dtype=np.int16)


@pytest.fixture(scope="module")
def spoken() -> dict[str, Pcm]:
    piper = PiperTTS()

    async def speak(text: str) -> Pcm:
        return np.concatenate([chunk.pcm async for chunk in piper.synthesize(text)])

    try:
        return {
            name: resample(asyncio.run(speak(text)), piper.sample_rate, RATE)
            for name, text in (("greeting", GREETING), ("hello", "Hello?"))
        }
    finally:
        piper._worker.close()


@pytest.fixture(scope="module")
def whisper() -> WhisperSTT:
    return WhisperSTT()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with demo_server(tmp_path_factory, SERVER_RTP) as found:
        yield found


async def place_call(
    server: Server, baresip: Baresip, *, seconds_max: int, **params: Any
) -> dict[str, Any]:
    """The agent calls baresip (through a trunk pointed at it) and the call ends."""
    process = await baresip.start(seconds=seconds_max)
    trunk = server.api.post(
        "/v1/sip/trunks",
        json={
            "name": "voicemail",
            "host": "127.0.0.1",
            "port": baresip.port,
            "caller_id": TRUNK_CALLER_ID,
        },
    )
    assert trunk.status_code == 200, trunk.text
    try:
        body = {
            "phone_number": CALLEE,
            "from": TRUNK_CALLER_ID,
            "pathway_id": server.demo_pathway,
            **params,
        }
        sent = server.api.post("/v1/calls", json=body)
        assert sent.status_code == 200, sent.text
        call_id = sent.json()["call_id"]
        return await asyncio.to_thread(
            wait_for, "the call to end", lambda: server.finished(call_id)
        )
    finally:
        await stop(process)
        deleted = server.api.delete(f"/v1/sip/trunks/{trunk.json()['data']['trunk_id']}")
        assert deleted.status_code == 200, deleted.text


def call_recording(server: Server, call_id: str) -> tuple[Pcm, Pcm]:
    """The call's stereo recording: (caller, agent)."""
    got = server.api.get(f"/v1/recordings/{call_id}")
    assert got.status_code == 200, got.text
    with wave.open(io.BytesIO(got.content)) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == RATE
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    return stereo[:, 0], stereo[:, 1]


def beeps_in(pcm: Pcm) -> list[Beep]:
    detector = AnsweringDetector()
    usable = len(pcm) - len(pcm) % FRAME
    for frame in pcm[:usable].reshape(-1, FRAME):
        detector.push(frame)
    return detector.beeps


def first_loud(samples: Pcm, level: int = 1000) -> int | None:
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > level)
    return int(loud[0]) if len(loud) else None


@pytest.mark.peer
@pytest.mark.slow
async def test_a_message_is_left_on_a_voicemail_after_the_beep(
    server: Server, spoken: dict[str, Pcm], whisper: WhisperSTT, tmp_path: Path
) -> None:
    t = np.arange(round(BEEP_S * RATE)) / RATE
    beep = (np.sin(2 * np.pi * 1000.0 * t) * 8000).astype(np.int16)
    greeting = spoken["greeting"]
    machine = np.concatenate([seconds(LEAD_S), greeting, seconds(PAUSE_S), beep, seconds(12)])
    greeting_end = round(LEAD_S * RATE) + len(greeting)
    source = tmp_path / "machine.wav"
    write_wav(source, machine)
    baresip = Baresip(tmp_path, source, CALLEE)

    call = await place_call(
        server,
        baresip,
        seconds_max=30,
        record=True,
        voicemail={"action": "leave_message", "message": MESSAGE},
    )

    print(f"call transcript: {call['concatenated_transcript']!r}")
    assert call["status"] == "completed", call
    assert call["answered_by"] == "voicemail", call
    assert call["call_ended_by"] == "ASSISTANT", baresip.log()
    events = server.events(call["call_id"])
    [left] = [e for e in events if e["type"] == "call.voicemail_left"]
    assert left["data"]["after"] == "beep" and left["data"]["beep"] is True, left
    decided = [e["data"] for e in events if e["type"] == "call.answered_by"]
    assert decided and decided[0]["reason"] == "long-greeting", decided
    assert "conversation.started" not in [e["type"] for e in events]
    assert MESSAGE in agent_text(call)

    # The call's own recording has both sides on one clock: the message starts with
    # the frame after the beep, as the agent heard it.
    caller, agent = call_recording(server, call["call_id"])
    beeps = beeps_in(caller)
    assert len(beeps) == 1 and abs(beeps[0].frequency_hz - 1000.0) < 10, beeps
    onset = first_loud(agent)
    assert onset is not None, "the agent said nothing"
    print(f"beep ends on frame {beeps[0].end_frame}, message starts on {onset // FRAME}")
    assert beeps[0].end_frame <= onset // FRAME <= beeps[0].end_frame + 25

    # Over the wire: baresip heard silence through its greeting, then the message.
    recorded = baresip.recording()
    assert recorded is not None, baresip.log()
    heard_onset = first_loud(read_wav(recorded))
    assert heard_onset is not None and heard_onset > greeting_end, (heard_onset, greeting_end)
    text = await transcribe(whisper, recorded)
    print(f"baresip heard: {text!r}")
    assert set(words(text)) >= MESSAGE_WORDS, text


@pytest.mark.peer
@pytest.mark.slow
async def test_a_person_answering_gets_the_conversation(
    server: Server, spoken: dict[str, Pcm], tmp_path: Path
) -> None:
    person = np.concatenate([seconds(LEAD_S), spoken["hello"], seconds(9)])
    source = tmp_path / "person.wav"
    write_wav(source, person)
    baresip = Baresip(tmp_path, source, CALLEE)

    call = await place_call(server, baresip, seconds_max=25, answered_by_enabled=True)

    print(f"call transcript: {call['concatenated_transcript']!r}")
    assert call["status"] == "completed", call
    assert call["answered_by"] == "human", call
    assert "maple street dental" in agent_text(call).lower(), call["transcripts"]
    assert "hello" in words(user_text(call)), call["transcripts"]
    first = call["transcripts"][0]
    assert first["user"] == "user", call["transcripts"]  # the hello, then the agent
    events = server.events(call["call_id"])
    decided = [e["data"] for e in events if e["type"] == "call.answered_by"]
    assert decided and decided[0]["reason"] == "short-greeting", decided
    assert "conversation.started" in [e["type"] for e in events]
