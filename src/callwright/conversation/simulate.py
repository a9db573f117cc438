"""A call with no phone line: a scripted caller talks to an agent through the full media
path, and the call leaves the same record as a real one.

``SimulatedPort`` is an ``AudioPort`` at 8 kHz that plays a caller script. Everything
crosses G.711 mu-law in both directions (encoded and decoded frame by frame), so the
agent hears telephone audio and what the port keeps of the agent is what a phone would
have carried. ``simulate`` creates an ordinary outbound call row, moves it through
``queued -> allocated -> in-progress``, runs ``ConversationRunner.run_call`` with the
port, and ends it ``completed`` (or ``failed`` with its error), so the transcript,
recording, events and pathway log are read back through the API like any call's.

Script format (YAML or JSON; ``load_script``)::

    voice: joe            # the caller's voice: any voice name the server's TTS knows
                          # (default: the server's default voice)
    gap_ms: 800           # how long the agent must be quiet before the caller acts
    reply_timeout_ms: 10000  # how long the caller waits for an answer that never starts
    max_wait_ms: 60000    # the longest the caller waits for the agent to finish
    steps:
      - say: "Hi, I'd like to book an appointment."   # spoken by the embedded TTS
      - say: {wav: hello.wav}   # 16-bit PCM WAV, any rate; relative to the script file
      - pause: 1.5              # seconds of silence, right away
      - press: "5"              # DTMF digit(s) 0-9 * # A-D, one keypress each
      - interrupt: {after_ms: 600}   # the next step starts once the agent has spoken
                                     # for 600 ms (``interrupt: 600`` or ``interrupt``
                                     # alone: 500 ms), cutting in on it
      - hang_up

A bare list of steps is a script with the defaults. Timing rules:

1. ``say``, ``press`` and ``hang_up`` first wait for the caller's turn, like a person
   on the phone: until the agent has spoken and then been quiet for ``gap_ms``, or has
   not begun to answer within ``reply_timeout_ms``, or ``max_wait_ms`` has passed. The
   first step waits for the greeting this way. After an ``interrupt`` step the next of
   these starts after that much agent audio instead.
2. ``pause`` sends silence at once, without waiting.
3. When the steps run out, the caller waits for its turn once more (the agent may end
   the call meanwhile) and hangs up.

Pacing: by default one caller frame every 20 ms on absolute deadlines (no drift). With
``realtime=False`` frames in which somebody is speaking go as fast as the loop takes
them, but frames of silence on both sides still take 20 ms of wall time each: that is
when the agent is thinking (endpointing, STT, LLM, TTS), so the frame counts, the
stored offsets and the per-turn latencies stay honest while played audio costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from sqlalchemy import select

from callwright.clock import Clock
from callwright.config import Settings
from callwright.conversation.agents import AgentFactory
from callwright.conversation.ports import CallerAudio, CallerHungUp, Keypress, Pcm, PortEvent
from callwright.conversation.runner import ConversationRunner, SpeechLoader
from callwright.media.frames import FRAME_MS, samples_per_frame
from callwright.media.g711 import ulaw_decode, ulaw_encode
from callwright.media.resample import resample_block
from callwright.providers.llm import LLM
from callwright.providers.speech.base import TTS
from callwright.providers.speech.registry import speech_from_settings
from callwright.store import calls
from callwright.store.db import Database
from callwright.store.models import Call, CallEvent
from callwright.store.recordings import RecordingStore

log = logging.getLogger("callwright.conversation")

SAMPLE_RATE = 8000
FRAME_SAMPLES = samples_per_frame(SAMPLE_RATE)
# 555-0100..0199 numbers are reserved for fiction: the simulated line dials nobody.
SIMULATED_NUMBER = "+12025550147"
DTMF_DIGITS = frozenset("0123456789*#ABCD")
# A frame quieter than this (about -50 dBFS peak) is silence to the listening caller.
AUDIBLE_PEAK = 100
KEYPRESS_FRAMES = 5  # a keypress holds the line for 100 ms
TAIL_POLL_SECONDS = 0.1


class ScriptError(ValueError):
    """A caller script that cannot be played; the message names the step."""


# -- the script ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Say:
    text: str | None = None
    wav: Path | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Press:
    digits: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    after_ms: int = 500


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


Step = Say | Pause | Press | Interrupt | HangUp


@dataclass(frozen=True, slots=True)
class Script:
    steps: tuple[Step, ...]
    voice: str | None = None
    gap_ms: int = 800
    reply_timeout_ms: int = 10_000
    max_wait_ms: int = 60_000


def load_script(path: Path) -> Script:
    """Read a YAML (``.yaml``/``.yml``) or JSON script; WAV paths are relative to it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScriptError(f"{path} is not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
    return parse_script(data, base_dir=path.parent)


def parse_script(data: Any, *, base_dir: Path | None = None) -> Script:
    """A script from its parsed YAML/JSON form (see the module docstring)."""
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, dict):
        raise ScriptError("a script is a mapping with 'steps', or a list of steps")
    unknown = set(data) - {"steps", "voice", "gap_ms", "reply_timeout_ms", "max_wait_ms"}
    if unknown:
        raise ScriptError(f"unknown script field(s): {', '.join(sorted(map(str, unknown)))}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScriptError("'steps' must be a non-empty list")
    steps = tuple(_step(raw, i, base_dir) for i, raw in enumerate(raw_steps))
    voice = data.get("voice")
    if voice is not None and not isinstance(voice, str):
        raise ScriptError("'voice' must be a string")
    return Script(
        steps,
        voice=voice,
        gap_ms=_ms(data, "gap_ms", 800),
        reply_timeout_ms=_ms(data, "reply_timeout_ms", 10_000),
        max_wait_ms=_ms(data, "max_wait_ms", 60_000),
    )


def _ms(data: dict[str, Any], name: str, default: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScriptError(f"{name!r} must be a non-negative whole number of milliseconds")
    return value


def _step(raw: Any, index: int, base_dir: Path | None) -> Step:
    where = f"step {index + 1}"
    if raw == "hang_up":
        return HangUp()
    if raw == "interrupt":
        return Interrupt()
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ScriptError(f"{where}: a step is one of say, pause, press, interrupt, hang_up")
    ((kind, value),) = raw.items()
    if kind == "say":
        return _say(value, where, base_dir)
    if kind == "pause":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ScriptError(f"{where}: pause takes a non-negative number of seconds")
        return Pause(float(value))
    if kind == "press":
        digits = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
        if not digits or not set(digits) <= DTMF_DIGITS:
            raise ScriptError(f"{where}: press takes DTMF digits (0-9, *, #, A-D)")
        return Press(digits)
    if kind == "interrupt":
        after = value.get("after_ms", 500) if isinstance(value, dict) else value
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ScriptError(f"{where}: interrupt takes after_ms, a whole number >= 0")
        return Interrupt(after)
    if kind == "hang_up":
        return HangUp()
    raise ScriptError(f"{where}: unknown step {kind!r}")


def _say(value: Any, where: str, base_dir: Path | None) -> Say:
    if isinstance(value, str) and value.strip():
        return Say(text=value.strip())
    if isinstance(value, dict) and set(value) == {"text"} and isinstance(value["text"], str):
        return _say(value["text"], where, base_dir)
    if isinstance(value, dict) and set(value) == {"wav"} and isinstance(value["wav"], str):
        path = Path(value["wav"])
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return Say(wav=path)
    raise ScriptError(f"{where}: say takes text, {{text: ...}} or {{wav: path}}")


# -- rendering: the caller's audio, ready before the call starts ----------------------------
@dataclass(frozen=True, slots=True, eq=False)
class CallerSpeech:
    """An utterance as 8 kHz PCM (before the codec); ``text`` when it was written."""

    pcm: Pcm
    text: str | None = None


PortStep = CallerSpeech | Pause | Press | Interrupt | HangUp


async def render_script(script: Script, tts: TTS, voice: str | None = None) -> list[PortStep]:
    """The script with every ``say`` turned into audio: text through ``tts`` (in
    ``voice``), WAV files read and resampled. Done before the call, so the caller's
    synthesis does not compete with the agent for the CPU during it."""
    rendered: list[PortStep] = []
    for step in script.steps:
        if not isinstance(step, Say):
            rendered.append(step)
        elif step.wav is not None:
            rendered.append(CallerSpeech(await asyncio.to_thread(read_wav, step.wav)))
        else:
            rendered.append(CallerSpeech(await _speak(tts, voice, step.text or ""), step.text))
    return rendered


async def _speak(tts: TTS, voice: str | None, text: str) -> Pcm:
    parts: list[Pcm] = []
    stream = tts.synthesize(text, voice)
    try:
        async for chunk in stream:
            parts.append(resample_block(chunk.pcm, chunk.sample_rate, SAMPLE_RATE))
    finally:
        await stream.aclose()
    if not parts:
        raise ScriptError(f"the voice produced no audio for {text!r}")
    return np.concatenate(parts)


def read_wav(path: Path) -> Pcm:
    """A 16-bit PCM WAV file as mono 8 kHz PCM (channels averaged)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise ScriptError(f"{path}: only 16-bit PCM WAV files can be played")
            channels, rate = wav.getnchannels(), wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise ScriptError(f"cannot read {path}: {exc}") from None
    pcm = np.frombuffer(data, dtype="<i2").astype(np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if not pcm.size:
        raise ScriptError(f"{path} holds no audio")
    return resample_block(pcm, rate, SAMPLE_RATE)


# -- pacing --------------------------------------------------------------------------------
class Pacer(Protocol):
    """Holds each caller frame until it is due; ``idle`` when neither side is speaking."""

    async def wait(self, idle: bool) -> None: ...


class RealTimePacer:
    """One frame every 20 ms on absolute deadlines from the first frame: a late frame
    is sent at once and the next keeps its own deadline, so delays never accumulate."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self.frames = 0
        self.late_frames = 0

    async def wait(self, idle: bool) -> None:
        now = self._clock()
        if self._start is None:
            self._start = now
        deadline = self._start + self.frames * FRAME_MS / 1000
        self.frames += 1
        if deadline > now:
            await self._sleep(deadline - now)
            return
        if now - deadline > FRAME_MS / 1000:
            self.late_frames += 1  # over a frame behind: the loop could not keep up
        await self._sleep(0)


class FastPacer:
    """Audio plays as fast as the loop takes it; a run of idle frames (the agent
    thinking) keeps real-time deadlines from the run's first frame."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._idle_start: float | None = None
        self._idle_frames = 0

    async def wait(self, idle: bool) -> None:
        if not idle:
            self._idle_start = None
            await self._sleep(0)  # the loop's tasks (and finished threads) get their turn
            return
        now = self._clock()
        if self._idle_start is None:
            self._idle_start, self._idle_frames = now, 0
        deadline = self._idle_start + self._idle_frames * FRAME_MS / 1000
        self._idle_frames += 1
        await self._sleep(max(deadline - now, 0.0))


# -- the port ------------------------------------------------------------------------------
def phone_line(pcm: Pcm) -> Pcm:
    """What G.711 mu-law leaves of ``pcm`` after one encode and decode."""
    return ulaw_decode(ulaw_encode(pcm))


class SimulatedPort:
    """A scripted caller on an 8 kHz mu-law line (see the module docstring)."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        steps: Sequence[PortStep],
        *,
        realtime: bool = True,
        gap_ms: int = 800,
        reply_timeout_ms: int = 10_000,
        max_wait_ms: int = 60_000,
        pacer: Pacer | None = None,
    ) -> None:
        self.steps = list(steps)
        self.pacer: Pacer = pacer or (RealTimePacer() if realtime else FastPacer())
        self._gap = _frames(gap_ms)
        self._reply_timeout = _frames(reply_timeout_ms)
        self._max_wait = _frames(max_wait_ms)
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._caller: list[Pcm] = []  # every frame sent, after the codec
        self._agent: list[Pcm] = []  # every frame heard, after the codec
        self._agent_spans: list[list[int]] = []  # [first, end) frames of each agent turn
        self._quiet = 0  # agent frames since it was last audible
        self._mark = 0  # frame of the caller's last action
        self._first_audible: int | None = None  # first agent audio after the mark
        self.caller_spans: list[tuple[int, int]] = []  # [first, end) frames of each say
        self.keypresses: list[tuple[int, str]] = []
        self.digits_received: list[str] = []
        self.transferred_to: str | None = None
        self.hung_up_by_agent = False

    # -- AudioPort -------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[PortEvent]:
        interrupt: Interrupt | None = None
        for step in self.steps:
            if isinstance(step, Interrupt):
                interrupt = step
                continue
            if isinstance(step, Pause):
                for _ in range(_frames(step.seconds * 1000)):
                    yield await self._frame(self._silence)
                continue
            waiting = self._wait_turn() if interrupt is None else self._wait_audio(interrupt)
            async for event in waiting:
                yield event
            interrupt = None
            if isinstance(step, HangUp):
                yield CallerHungUp()
                return
            if isinstance(step, Press):
                for digit in step.digits:
                    self.keypresses.append((len(self._caller), digit))
                    yield Keypress(digit)
                    for _ in range(KEYPRESS_FRAMES):
                        yield await self._frame(self._silence)
            else:
                first = len(self._caller)
                for start in range(0, len(step.pcm), FRAME_SAMPLES):
                    chunk = step.pcm[start : start + FRAME_SAMPLES]
                    if len(chunk) < FRAME_SAMPLES:
                        chunk = np.concatenate((chunk, self._silence[len(chunk) :]))
                    yield await self._frame(chunk, speaking=True)
                self.caller_spans.append((first, len(self._caller)))
            self._mark, self._first_audible = len(self._caller), None
        async for event in self._wait_turn():
            yield event
        yield CallerHungUp()

    async def send(self, pcm: Pcm) -> None:
        heard = phone_line(pcm)
        index = len(self._agent)
        self._agent.append(heard)
        if int(np.abs(heard).max(initial=0)) < AUDIBLE_PEAK:
            self._quiet += 1
            return
        if self._first_audible is None and index >= self._mark:
            self._first_audible = index
        if not self._agent_spans or self._quiet >= self._gap:
            self._agent_spans.append([index, index + 1])
        self._agent_spans[-1][1] = index + 1
        self._quiet = 0

    async def send_digits(self, digits: str) -> None:
        self.digits_received.append(digits)

    async def transfer(self, number: str) -> None:
        self.transferred_to = number

    async def hang_up(self) -> None:
        self.hung_up_by_agent = True

    # -- what was on the line --------------------------------------------------------------
    def agent_audio(self) -> Pcm:
        """Everything the agent sent, as the caller heard it (8 kHz, after the codec)."""
        return _joined(self._agent)

    def caller_audio(self) -> Pcm:
        """Everything the caller sent, as the agent heard it (8 kHz, after the codec)."""
        return _joined(self._caller)

    def agent_turns(self, pad_ms: int = 200) -> list[Pcm]:
        """The agent's audio cut into turns (split by quiet of at least ``gap_ms``),
        each with up to ``pad_ms`` of the line on either side."""
        pad = _frames(pad_ms)
        return [
            _joined(self._agent[max(first - pad, 0) : end + pad])
            for first, end in self._agent_spans
        ]

    # -- the caller's behaviour ------------------------------------------------------------
    async def _frame(self, pcm: Pcm, *, speaking: bool = False) -> CallerAudio:
        idle = not speaking and self._quiet > 0
        await self.pacer.wait(idle)
        sent = phone_line(pcm)
        self._caller.append(sent)
        return CallerAudio(sent)

    async def _wait_turn(self) -> AsyncIterator[PortEvent]:
        for waited in range(self._max_wait):
            if self._first_audible is not None:
                if self._quiet >= self._gap:
                    return
            elif waited >= self._reply_timeout:
                return
            yield await self._frame(self._silence)

    async def _wait_audio(self, interrupt: Interrupt) -> AsyncIterator[PortEvent]:
        after = _frames(interrupt.after_ms)
        for waited in range(self._max_wait):
            if self._first_audible is not None:
                if len(self._agent) - self._first_audible >= after:
                    return
            elif waited >= self._reply_timeout:
                return
            yield await self._frame(self._silence)


def _frames(ms: float) -> int:
    return max(round(ms / FRAME_MS), 0)


def _joined(frames: list[Pcm]) -> Pcm:
    return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)


# -- a whole simulated call ----------------------------------------------------------------
class SimulationServices(Protocol):
    """What ``simulate`` needs of the server's services (``api.services.Services``)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def recordings(self) -> RecordingStore: ...

    @property
    def llm(self) -> LLM | None: ...

    @property
    def agents(self) -> AgentFactory | None: ...


@dataclass(frozen=True, slots=True)
class LiveLine:
    """One stored event of the running call, as it is written: ``type`` is
    ``transcript.user``, ``transcript.assistant``, ``turn.latency``, ``status.*``..."""

    type: str
    message: str
    data: dict[str, Any] | None


@dataclass(slots=True)
class SimulationResult:
    call_id: str
    status: str
    ended_by: str | None
    transcript: list[dict[str, Any]]  # the stored lines, as GET /v1/calls/{id} shows them
    latencies: list[dict[str, Any]]  # each turn's ``turn.latency`` breakdown
    agent_audio: Pcm  # 8 kHz, as the caller heard it
    port: SimulatedPort
    events: list[LiveLine] = field(default_factory=list)


async def simulate(
    services: SimulationServices,
    script: Script,
    *,
    org_id: str,
    pathway_id: str | None = None,
    task: str | None = None,
    request_data: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    record: bool = True,
    realtime: bool = True,
    speech: SpeechLoader | None = None,
    on_line: Callable[[LiveLine], None] | None = None,
) -> SimulationResult:
    """Run one simulated call (a pathway or a task) and return its stored record.

    ``params`` adds call parameters as ``POST /v1/calls`` takes them (``voice``,
    ``interruption_threshold``, ``first_sentence``...). ``speech`` defaults to the
    back-ends the settings name, loaded here and closed afterwards. ``on_line`` sees
    every event of the call as it is stored. An error in the conversation marks the
    call ``failed`` with the error and is raised again.
    """
    if (pathway_id is None) == (task is None):
        raise ValueError("simulate needs exactly one of pathway_id and task")
    if services.agents is None:
        raise RuntimeError("the services have no agent factory")
    own_speech = speech is None
    loader = speech or SpeechLoader(lambda: speech_from_settings(services.settings))
    try:
        providers = await loader.get()
        caller_tts, caller_voice = providers.resolve_voice(script.voice)
        steps = await render_script(script, caller_tts, caller_voice)
        port = SimulatedPort(
            steps,
            realtime=realtime,
            gap_ms=script.gap_ms,
            reply_timeout_ms=script.reply_timeout_ms,
            max_wait_ms=script.max_wait_ms,
        )
        runner = ConversationRunner(
            services.db,
            services.clock,
            services.agents,
            loader,
            services.recordings,
            services.llm,
            public_url=services.settings.effective_public_url,
        )
        call_id = await _create_call(
            services, org_id, pathway_id, task, dict(request_data or {}), params, record
        )
        tail = _EventTail(services.db, call_id, on_line)
        tailing = asyncio.create_task(tail.follow(), name="simulate-tail")
        try:
            result = await _run(services, runner, port, call_id)
        finally:
            tailing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tailing
            await tail.poll()
    finally:
        if own_speech:
            await loader.aclose()
    async with services.db.session() as session:
        call = await session.get(Call, call_id)
        assert call is not None
        status, transcript = call.status, list(call.transcript)
    return SimulationResult(
        call_id=call_id,
        status=status,
        ended_by=result,
        transcript=transcript,
        latencies=[e.data or {} for e in tail.seen if e.type == "turn.latency"],
        agent_audio=port.agent_audio(),
        port=port,
        events=tail.seen,
    )


async def _create_call(
    services: SimulationServices,
    org_id: str,
    pathway_id: str | None,
    task: str | None,
    request_data: dict[str, Any],
    extra: Mapping[str, Any] | None,
    record: bool,
) -> str:
    request: dict[str, Any] = {
        "phone_number": SIMULATED_NUMBER,
        "record": record,
        "request_data": request_data,
        **({"pathway_id": pathway_id} if pathway_id else {"task": task}),
        **dict(extra or {}),
    }
    params = {"timezone": "UTC", "max_duration": 30, **request, "simulated": True}
    now = services.clock.now()
    new = calls.NewCall(
        org_id=org_id,
        to_number=SIMULATED_NUMBER,
        from_number=None,
        request=request,
        params=params,
        scheduled_at=now,
        pathway_id=pathway_id,
        variables={"to": SIMULATED_NUMBER, "phone_number": SIMULATED_NUMBER},
    )
    async with services.db.transaction() as session:
        call = await calls.create_call(session, new, now)
        call.variables = {**call.variables, "call_id": call.id}
        await calls.transition(session, call, "allocated", now, "Simulator took the call")
        await calls.transition(
            session, call, "in-progress", now, "Simulated caller answered", data={"simulated": True}
        )
        return call.id


async def _run(
    services: SimulationServices, runner: ConversationRunner, port: SimulatedPort, call_id: str
) -> str | None:
    """Run the conversation and settle the call's status; the loop's ``ended_by``."""
    try:
        result = await runner.run_call(port, call_id)
    except BaseException as exc:
        canceled = isinstance(exc, asyncio.CancelledError)
        message = "Simulation canceled" if canceled else f"Simulation failed: {exc}"
        # A cancelled simulation still settles the row; shielded so it is not cut short.
        await asyncio.shield(
            _finish(
                services,
                call_id,
                "canceled" if canceled else "failed",
                message,
                None if canceled else f"{type(exc).__name__}: {exc}",
            )
        )
        raise
    if result.ended_by == "error":
        await _finish(services, call_id, "failed", "Conversation failed", "conversation failed")
    else:
        message = f"Simulated call ended by {result.ended_by}"
        await _finish(services, call_id, "completed", message, None, result.ended_by)
    return result.ended_by


async def _finish(
    services: SimulationServices,
    call_id: str,
    status: str,
    message: str,
    error: str | None,
    ended_by: str | None = None,
) -> None:
    async with services.db.transaction() as session:
        call = await calls.lock_call(session, call_id)
        if call is None or call.status != "in-progress":
            return
        data = {"ended_by": ended_by} if ended_by else None
        await calls.transition(
            session, call, status, services.clock.now(), message, error_message=error, data=data
        )


class _EventTail:
    """Follows a call's stored events, in order, as they are committed."""

    def __init__(
        self, db: Database, call_id: str, on_line: Callable[[LiveLine], None] | None
    ) -> None:
        self.db = db
        self.call_id = call_id
        self.on_line = on_line
        self.seen: list[LiveLine] = []
        self._seq = 0

    async def follow(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # the tail is a view: a failed read must not end the call
                log.exception("could not read the simulated call's events")
            await asyncio.sleep(TAIL_POLL_SECONDS)

    async def poll(self) -> None:
        query = (
            select(CallEvent)
            .where(CallEvent.call_id == self.call_id, CallEvent.seq > self._seq)
            .order_by(CallEvent.seq)
        )
        async with self.db.session() as session:
            rows = (await session.execute(query)).scalars().all()
        for row in rows:
            self._seq = row.seq
            line = LiveLine(row.type, row.message, row.data)
            self.seen.append(line)
            if self.on_line is not None:
                self.on_line(line)
