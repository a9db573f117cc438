"""The simulated caller (``conversation.simulate``) with tone speech instead of models.

The port is driven by the real ``CallLoop`` in virtual time (frames counted, each frame
given a fixed number of event-loop turns), and ``simulate()`` runs whole calls through
the real runner and store, read back through the API.
"""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.integration.conftest import Api
from tests.support.fake_speech import (
    EnergyVAD,
    ToneCode,
    ToneSTT,
    ToneTTS,
    decode,
    tone_speech,
    tones,
)
from tests.unit.conversation.fakes import ListSink, ScriptedAgent

from callwright.conversation.adapters import DetectorActivity, SpeechSynthesizer, SpeechTranscriber
from callwright.conversation.loop import CallLoop, LoopResult
from callwright.conversation.ports import EndCall
from callwright.conversation.simulate import (
    CallerSpeech,
    FastPacer,
    HangUp,
    Interrupt,
    LiveLine,
    Pause,
    Press,
    RealTimePacer,
    Say,
    Script,
    ScriptError,
    SimulatedPort,
    load_script,
    parse_script,
    phone_line,
    read_wav,
    render_script,
    simulate,
)
from callwright.conversation.turns import TurnConfig
from callwright.media.g711 import ulaw_decode
from callwright.store import keys

FRAME_MS = 20
SETTLE = 20  # event-loop turns per frame: the tone fakes finish their work in fewer
G711_LEVELS = ulaw_decode(np.arange(256, dtype=np.uint8))


class SettlePacer:
    """Virtual time: a frame is due once the loop's tasks have had ``SETTLE`` turns."""

    async def wait(self, idle: bool) -> None:
        for _ in range(SETTLE):
            await asyncio.sleep(0)


async def converse(
    script: Script,
    agent: ScriptedAgent,
    *,
    wait_for_greeting: bool = False,
    gap_ms: int = 300,
    reply_timeout_ms: int = 2000,
) -> tuple[SimulatedPort, ListSink, LoopResult, ToneSTT]:
    code = ToneCode()
    tts, stt = ToneTTS(code), ToneSTT(code)
    steps = await render_script(script, tts, "caller")
    port = SimulatedPort(
        steps, gap_ms=gap_ms, reply_timeout_ms=reply_timeout_ms, pacer=SettlePacer()
    )
    sink = ListSink()
    loop = CallLoop(
        port,
        agent,
        stt=SpeechTranscriber(stt),
        tts=SpeechSynthesizer(tts, "agent"),
        vad=DetectorActivity(EnergyVAD(), port.sample_rate),
        sink=sink,
        turns=TurnConfig(end_silence_ms=300, silence_timeout_ms=None),
        wait_for_greeting=wait_for_greeting,
    )
    result = await loop.run()
    return port, sink, result, stt


def lines(sink: ListSink) -> list[tuple[str, str]]:
    return [(line.speaker, line.text) for line in sink.lines]


# -- the port in virtual time ----------------------------------------------------------------
async def test_caller_waits_for_the_greeting_and_each_answer() -> None:
    agent = ScriptedAgent(
        greeting=["Hello, Elm Clinic, how can I help?"],
        replies={
            "I need an appointment.": ["Sure. What day?"],
            "Tuesday please.": ["Booked for Tuesday. Goodbye!", EndCall()],
        },
    )
    script = Script((Say("I need an appointment."), Say("Tuesday please.")), gap_ms=300)
    port, sink, result, stt = await converse(script, agent)

    assert result.ended_by == "agent" and port.hung_up_by_agent
    assert lines(sink) == [
        ("assistant", "Hello, Elm Clinic, how can I help?"),
        ("user", "I need an appointment."),
        ("assistant", "Sure. What day?"),
        ("user", "Tuesday please."),
        ("assistant", "Booked for Tuesday. Goodbye!"),
    ]
    # The caller spoke only after each agent turn ended and the line was quiet for gap_ms.
    turns = port._agent_spans  # noqa: SLF001 - the frames are what this test counts
    assert len(turns) == 3
    for (first, _end), (_a_first, a_end) in zip(port.caller_spans, turns, strict=False):
        assert first == a_end + 300 // FRAME_MS
    # What the caller heard of the agent, transcribed back, is what the agent said.
    heard = [decode(stt.code, pcm, port.sample_rate) for pcm in port.agent_turns()]
    assert heard == [text for speaker, text in lines(sink) if speaker == "assistant"]


async def test_audio_crosses_mu_law_both_ways() -> None:
    agent = ScriptedAgent(greeting=["Hi there."], replies={"Bye now.": ["Bye.", EndCall()]})
    port, _, _, _ = await converse(Script((Say("Bye now."),)), agent)
    for pcm in (port.agent_audio(), port.caller_audio()):
        assert len(pcm) and np.isin(pcm, G711_LEVELS).all()
    sample = np.arange(-32768, 32768, 7, dtype=np.int16)
    assert np.array_equal(phone_line(phone_line(sample)), phone_line(sample))


async def test_interrupt_cuts_in_after_that_much_agent_audio() -> None:
    long = "One two three four five six seven eight nine ten eleven twelve."
    agent = ScriptedAgent(greeting=[long], replies={"Wait stop.": ["Okay, stopping.", EndCall()]})
    script = Script((Interrupt(after_ms=400), Say("Wait stop.")))
    port, sink, result, _ = await converse(script, agent)

    first_agent = port._agent_spans[0][0]  # noqa: SLF001
    onset = port.caller_spans[0][0]
    assert onset == first_agent + 400 // FRAME_MS
    # The agent stopped talking within 10 frames of the caller's onset...
    audio = port.agent_audio().reshape(-1, port.sample_rate * FRAME_MS // 1000)
    loud = np.abs(audio).max(axis=1) >= 100
    stopped = next(i for i in range(onset, len(loud)) if not loud[i : i + 5].any())
    assert stopped - onset <= 10
    # ...its line is marked interrupted, and the caller was answered.
    assert sink.lines[0].speaker == "assistant" and sink.lines[0].interrupted
    assert "turn.interrupted" in sink.types()
    assert lines(sink)[1:] == [("user", "Wait stop."), ("assistant", "Okay, stopping.")]
    assert result.ended_by == "agent"


async def test_keypress_waits_for_its_turn() -> None:
    agent = ScriptedAgent(greeting=["Press a key."])
    port, sink, result, _ = await converse(Script((Press("5"),)), agent)

    assert agent.keys == ["5"] and "call.dtmf" in sink.types()
    assert port.keypresses == [(port._agent_spans[0][1] + 300 // FRAME_MS, "5")]  # noqa: SLF001
    assert lines(sink)[-1] == ("assistant", "You pressed 5.")
    assert result.ended_by == "agent"


async def test_caller_speaks_first_when_no_greeting_comes() -> None:
    agent = ScriptedAgent(replies={"Hello?": ["Hi! Sorry, go ahead.", EndCall()]})
    script = Script((Say("Hello?"),))
    port, sink, _, _ = await converse(script, agent, wait_for_greeting=True, reply_timeout_ms=600)
    assert port.caller_spans[0][0] == 600 // FRAME_MS
    assert lines(sink) == [("user", "Hello?"), ("assistant", "Hi! Sorry, go ahead.")]


async def test_pause_then_hang_up_after_the_agent_is_done() -> None:
    agent = ScriptedAgent(greeting=["Hello, this is a rather long greeting."])
    port, sink, result, _ = await converse(Script((Pause(0.2), HangUp())), agent)

    assert result.ended_by == "caller" and not port.hung_up_by_agent
    assert not np.abs(port.caller_audio()).any()
    # The pause ended mid-greeting; the hang-up waited for the greeting to finish.
    frames = len(port.caller_audio()) // (port.sample_rate * FRAME_MS // 1000)
    assert frames == port._agent_spans[0][1] + 300 // FRAME_MS  # noqa: SLF001
    assert lines(sink) == [("assistant", "Hello, this is a rather long greeting.")]


# -- pacing (the clock and sleep are the test's) ---------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_real_time_pacing_keeps_absolute_deadlines() -> None:
    t = FakeTime()
    pacer = RealTimePacer(t.clock, t.sleep)
    due = []
    for i in range(50):
        await pacer.wait(idle=False)
        due.append(t.now)
        t.now += 0.003 if i != 10 else 0.050  # work per frame; one frame overruns 2.5x
    assert due[0] == 100.0
    assert due[-1] == pytest.approx(100.0 + 49 * 0.020)  # the overrun was caught up: no drift
    assert pacer.late_frames == 1


async def test_fast_pacing_only_spends_time_on_idle_frames() -> None:
    t = FakeTime()
    pacer = FastPacer(t.clock, t.sleep)
    for _ in range(100):
        await pacer.wait(idle=False)
    assert t.now == 100.0
    for _ in range(26):
        await pacer.wait(idle=True)
    assert t.now == pytest.approx(100.0 + 25 * 0.020)


# -- scripts ---------------------------------------------------------------------------------
def write_wav(path: Path, pcm: np.ndarray, rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(pcm, channels).astype("<i2").tobytes())


def test_yaml_script_with_every_step(tmp_path: Path) -> None:
    (tmp_path / "call.yaml").write_text(
        "voice: joe\ngap_ms: 500\nsteps:\n"
        "  - say: Hello there.\n"
        "  - say: {wav: hi.wav}\n"
        "  - pause: 1.5\n"
        "  - press: '12#'\n"
        "  - interrupt: {after_ms: 700}\n"
        "  - say: {text: Sorry to cut in.}\n"
        "  - interrupt\n"
        "  - hang_up\n"
    )
    script = load_script(tmp_path / "call.yaml")
    assert script.voice == "joe" and script.gap_ms == 500 and script.max_wait_ms == 60_000
    assert script.steps == (
        Say("Hello there."),
        Say(wav=tmp_path / "hi.wav"),
        Pause(1.5),
        Press("12#"),
        Interrupt(700),
        Say("Sorry to cut in."),
        Interrupt(500),
        HangUp(),
    )


def test_json_script_and_bare_list(tmp_path: Path) -> None:
    (tmp_path / "call.json").write_text(json.dumps([{"say": "Hi."}, {"press": 5}, "hang_up"]))
    assert load_script(tmp_path / "call.json").steps == (Say("Hi."), Press("5"), HangUp())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": [{"sya": "hi"}]}, "step 1: unknown step 'sya'"),
        ([{"say": "hi"}, {"press": "x"}], "step 2: press takes DTMF digits"),
        ([{"pause": -1}], "step 1: pause takes a non-negative number"),
        ([{"say": ""}], "step 1: say takes text"),
        ([{"interrupt": {"after_ms": "soon"}}], "step 1: interrupt takes after_ms"),
        ({"steps": []}, "'steps' must be a non-empty list"),
        ({"steps": ["hang_up"], "gap": 3}, "unknown script field(s): gap"),
        ("hello", "a script is a mapping"),
    ],
)
def test_bad_scripts_say_what_is_wrong(data: Any, message: str) -> None:
    with pytest.raises(ScriptError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_script(data)


def test_bad_files_are_script_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("steps: [say: {")
    with pytest.raises(ScriptError, match="not valid YAML"):
        load_script(tmp_path / "bad.yaml")
    with pytest.raises(ScriptError, match="cannot read"):
        load_script(tmp_path / "missing.json")


async def test_wav_files_are_resampled_to_the_line(tmp_path: Path) -> None:
    code = ToneCode()
    write_wav(tmp_path / "hi.wav", tones(code, "hello world"), 16_000, channels=2)
    pcm = read_wav(tmp_path / "hi.wav")
    assert len(pcm) == len(tones(code, "hello world")) // 2
    assert decode(code, pcm, 8000) == "hello world"
    script = parse_script([{"say": {"wav": "hi.wav"}}], base_dir=tmp_path)
    (step,) = await render_script(script, ToneTTS(code))
    assert isinstance(step, CallerSpeech) and step.text is None and len(step.pcm) == len(pcm)


# -- whole calls through the runner and the store ----------------------------------------------
PATHWAY = {
    "name": "Tiny booking",
    "nodes": [
        {
            "id": "start",
            "type": "Default",
            "data": {"name": "Start", "isStart": True, "text": "Hello. Do you want to book?"},
        },
        {
            "id": "booked",
            "type": "End Call",
            "data": {"name": "Booked", "text": "You are booked. Goodbye!"},
        },
    ],
    "edges": [
        {
            "id": "e1",
            "source": "start",
            "target": "booked",
            "data": {"label": "The caller wants to book an appointment"},
        }
    ],
}


@pytest.fixture
def database_url(sqlite_database: str) -> str:
    return sqlite_database


async def org_of(api: Api) -> str:
    async with api.services.db.session() as session:
        found = await keys.org_for_key(session, api.key_a)
    assert found is not None
    return found[1]


async def test_simulated_call_leaves_a_normal_record(api: Api) -> None:
    created = await api.client.post("/v1/pathway/create", json=PATHWAY, headers=api.a())
    pathway_id = created.json()["pathway_id"]
    loader, tts, _ = tone_speech()
    seen: list[LiveLine] = []
    script = Script((Say("Yes, I want to book an appointment."),), voice="caller", gap_ms=200)

    result = await simulate(
        api.services,
        script,
        org_id=await org_of(api),
        pathway_id=pathway_id,
        params={"interruption_threshold": 200},
        realtime=False,
        speech=loader,
        on_line=seen.append,
    )

    assert result.status == "completed" and result.ended_by == "agent"
    assert [(t["user"], t["text"]) for t in result.transcript] == [
        ("assistant", "Hello. Do you want to book?"),
        ("user", "Yes, I want to book an appointment."),
        ("assistant", "You are booked. Goodbye!"),
    ]
    assert len(result.latencies) == 1 and result.latencies[0]["platform_ms"] is not None
    types = [e.type for e in seen]
    assert types[:3] == ["queue.accepted", "status.allocated", "status.in-progress"]
    assert types[-1] == "status.completed"
    assert {"transcript.user", "transcript.assistant", "turn.latency"} <= set(types)

    got = (await api.client.get(f"/v1/calls/{result.call_id}", headers=api.a())).json()
    assert got["status"] == "completed" and got["completed"] is True
    assert [t["text"] for t in got["transcripts"]] == [t["text"] for t in result.transcript]
    assert got["to"] == "+12025550147" and got["inbound"] is False
    assert got["recording_url"] and got["recording_url"].endswith(result.call_id)
    assert {log.get("chosen_node_id") for log in got["pathway_logs"]} >= {"start", "booked"}
    events = (await api.client.get(f"/v1/calls/{result.call_id}/events", headers=api.a())).json()
    assert "turn.latency" in [e["type"] for e in events["data"]]
    recording = await api.client.get(httpx.URL(got["recording_url"]).path, headers=api.a())
    assert recording.status_code == 200 and recording.content[:4] == b"RIFF"


async def test_a_failing_simulation_marks_the_call_failed(api: Api) -> None:
    loader, _, _ = tone_speech()
    with pytest.raises(LookupError):
        await simulate(
            api.services,
            Script((HangUp(),), voice="caller"),
            org_id=await org_of(api),
            pathway_id="no-such-pathway",
            realtime=False,
            speech=loader,
        )
    listed = (await api.client.get("/v1/calls", headers=api.a())).json()["calls"]
    assert listed[0]["status"] == "failed" and "PathwayNotFound" in listed[0]["error_message"]


async def test_simulate_needs_one_agent(api: Api) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await simulate(api.services, Script((HangUp(),)), org_id="x", realtime=False)
