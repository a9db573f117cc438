"""Screening inside ``ConversationRunner.run_call``: an outbound call that asks for
answering-machine detection, over a fake 8 kHz port, a real (SQLite) store and the tone
speech fakes. The record shows who answered, what was said, and when, in frames."""

from __future__ import annotations

import io
import wave
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pytest
from tests.integration.conftest import Api, api, sqlite_database
from tests.support.fake_speech import EnergyVADModel, ToneCode, ToneTTS, decode
from tests.unit.conversation.test_answering import FRAME, HELLO, MACHINE, RATE, PcmPort

from callwright.conversation.loop import LoopResult
from callwright.conversation.runner import ConversationRunner, SpeechLoader
from callwright.providers.speech.base import Int16Array, Transcript
from callwright.providers.speech.registry import SpeechProviders
from callwright.store import calls

__all__ = ["api", "sqlite_database"]  # fixtures, used by name

FIRST = "Hello, this is Elm Clinic."


@pytest.fixture
def database_url(sqlite_database: str) -> str:
    return sqlite_database


class LengthStt:
    """Says what a greeting of that length would be: a word, or a machine's script."""

    name = "length"

    async def transcribe(
        self, pcm: Int16Array, sample_rate: int, *, language: str | None = None
    ) -> Transcript:
        seconds = len(pcm) / sample_rate
        text = "hello there" if seconds < 2 else "you have reached the smith residence"
        return Transcript(text, language, seconds)

    def stream(self, sample_rate: int, *, language: str | None = None) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


class BrokenVadModel:
    def detector(self) -> BrokenVadModel:
        return self

    def process(self, frame: Any) -> float:
        raise RuntimeError("vad broke")


async def run(
    api: Api, port: PcmPort, vad: Any = None, **params: Any
) -> tuple[LoopResult, dict[str, Any], ToneTTS]:
    body = {"phone_number": "+14155550123", "task": "remind", "first_sentence": FIRST, **params}
    sent = await api.client.post("/v1/calls", json=body, headers=api.a())
    assert sent.status_code == 200, sent.text
    call_id = sent.json()["call_id"]
    svc = api.services
    async with svc.db.transaction() as session:
        call = await calls.lock_call(session, call_id)
        assert call is not None
        await calls.transition(session, call, "allocated", svc.clock.now(), "allocated")
        await calls.transition(session, call, "in-progress", svc.clock.now(), "answered")
    tts = ToneTTS(ToneCode())
    providers = SpeechProviders(
        stt=LengthStt(),
        tts={"tone": tts},
        default_voice="agent",
        vad=cast(Any, vad or EnergyVADModel()),
        aliases={},
    )
    assert svc.agents is not None
    runner = ConversationRunner(
        svc.db,
        svc.clock,
        svc.agents,
        SpeechLoader(lambda: providers),
        svc.recordings,
        None,
        public_url="http://test",
    )
    result = await runner.run_call(port, call_id)
    got = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    events = (await api.client.get(f"/v1/calls/{call_id}/events", headers=api.a())).json()
    got["events"] = events["data"]
    return result, got, tts


def lines(call: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(t["user"], t["text"], t["start_ms"]) for t in call["transcripts"]]


def types(call: dict[str, Any]) -> list[str]:
    return [e["type"] for e in call["events"]]


async def recording(api: Api, call: dict[str, Any]) -> np.ndarray[Any, np.dtype[np.int16]]:
    got = await api.client.get(f"/v1/recordings/{call['call_id']}", headers=api.a())
    assert got.status_code == 200
    with wave.open(io.BytesIO(got.content)) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == RATE
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)


def first_loud(samples: Sequence[int] | np.ndarray[Any, Any]) -> int:
    return int(np.argmax(np.abs(np.asarray(samples)) > 1000))


async def test_a_human_hears_the_agent_right_after_screening(api: Api) -> None:
    port = PcmPort(HELLO)
    result, call, tts = await run(api, port, answered_by_enabled=True, record=True)
    assert call["answered_by"] == "human"
    assert result.ended_by == "agent"  # no LLM: the first sentence, an apology, the end
    assert result.frames == len(port.sent)
    # Screening decided on frame 74; the agent's first sentence leaves with the
    # conversation's first frames.
    assert 75 <= port.loud()[0] <= 77
    (user, agent) = lines(call)[:2]
    assert user == ("user", "hello there", 200)
    assert agent[0] == "assistant" and agent[1].startswith(FIRST) and agent[2] == 1500
    assert tts.spoken[0] == FIRST
    assert "call.answered_by" in types(call) and "conversation.started" in types(call)
    # The recording holds both: the caller's hello at frame 10, the agent from frame 75.
    stereo = await recording(api, call)
    assert first_loud(stereo[:, 0]) // FRAME == 10
    assert first_loud(stereo[:, 1]) // FRAME == port.loud()[0]


async def test_a_voicemail_gets_the_message_after_the_beep(api: Api) -> None:
    port = PcmPort(MACHINE)
    message = "Hi {{name}}, please call Elm Clinic back."
    result, call, tts = await run(
        api,
        port,
        voicemail={"action": "leave_message", "message": message},
        request_data={"name": "Sam"},
        record=True,
    )
    spoken = "Hi Sam, please call Elm Clinic back."
    assert result.ended_by == "voicemail_left" and port.hung_up_at == len(port.sent)
    assert call["answered_by"] == "voicemail" and call["call_ended_by"] == "ASSISTANT"
    assert tts.spoken == [spoken]
    assert lines(call) == [
        ("user", "you have reached the smith residence", 0),
        ("assistant", spoken, 240 * 20),
    ]
    # What the line carried from the beep's end on is the message, in the call's voice.
    sent = np.concatenate(port.sent)
    assert port.loud()[0] == 240
    assert decode(tts.code, sent[240 * FRAME :], RATE) == spoken
    assert types(call).count("call.voicemail_left") == 1
    assert "conversation.started" not in types(call)
    stereo = await recording(api, call)
    assert first_loud(stereo[:, 1]) // FRAME == 240


async def test_a_voicemail_is_hung_up_on(api: Api) -> None:
    port = PcmPort(MACHINE)
    result, call, tts = await run(api, port, answered_by_enabled=True)
    assert result == LoopResult("voicemail", 150)
    assert port.hung_up_at == 150 and port.loud() == [] and tts.spoken == []
    assert call["answered_by"] == "voicemail" and call["call_ended_by"] == "ASSISTANT"
    assert lines(call) == [("user", "you have reached the smith residence", 0)]
    assert {"call.answered_by", "call.voicemail_hangup"} <= set(types(call))


async def test_calls_that_do_not_ask_are_not_screened(api: Api) -> None:
    port = PcmPort(HELLO)
    result, call, tts = await run(api, port)
    assert call["answered_by"] is None and "call.answered_by" not in types(call)
    assert port.loud()[0] <= 2  # the greeting leaves at once, over the caller's hello
    assert result.frames == len(port.sent)


async def test_the_callee_hanging_up_while_screened(api: Api) -> None:
    port = PcmPort(HELLO[: 30 * FRAME], hang_up_at_end=True)
    result, call, _ = await run(api, port, answered_by_enabled=True)
    assert result == LoopResult("caller", 30)
    assert call["answered_by"] == "unknown" and call["call_ended_by"] == "USER"


async def test_a_failing_screen_ends_the_call_as_an_error(api: Api) -> None:
    port = PcmPort(HELLO)
    result, call, tts = await run(api, port, vad=BrokenVadModel(), answered_by_enabled=True)
    assert result.ended_by == "error" and tts.spoken == []
    assert "call.screening_failed" in types(call)
