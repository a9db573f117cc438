"""Runs one call's conversation from its stored row: what every transport calls once
the line is connected (SIP inbound and outbound, the simulator).

It builds the agent the call asks for (its pathway, else its task prompt), the speech
back-ends (shared by the process, loaded on first use), the call's turn-taking from
its parameters (``interruption_threshold``, ``block_interruptions``, ``max_duration``,
``wait_for_greeting``), a recorder when ``record`` is set, and the store sink; runs the
loop; then stores the recording and the summary. The status transitions stay with the
caller (dispatch), which knows how the line ended.

An outbound call that asks for answering-machine detection (``answered_by_enabled``,
``voicemail``...) is screened first (``conversation.answering``): ``answered_by`` is
stored as soon as it is known, and a voicemail may end the call (hung up, or a message
left) before any conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import Callable
from typing import Any

from callwright.clock import Clock
from callwright.conversation.adapters import DetectorActivity, SpeechSynthesizer, SpeechTranscriber
from callwright.conversation.aftercall import finish_record
from callwright.conversation.agents import AgentFactory
from callwright.conversation.answering import (
    Outcome,
    ResumedPort,
    Screened,
    Screener,
    ScreeningPolicy,
    ShiftableRecorder,
    ShiftedSink,
    greeting_line,
    message_line,
)
from callwright.conversation.loop import CallLoop, LoopResult
from callwright.conversation.ports import Agent, AudioPort, CallSink
from callwright.conversation.turns import TurnConfig
from callwright.media.answering import AnsweringConfig, Decision
from callwright.media.frames import FRAME_MS, samples_per_frame
from callwright.media.recorder import CallRecorder
from callwright.pathways.templating import CallContext, builtin_variables, render
from callwright.providers.llm import LLM
from callwright.providers.speech.base import UnknownVoice
from callwright.providers.speech.registry import SpeechProviders
from callwright.store import calls, pathways
from callwright.store.call_record import CallRecordSink, attach_recording
from callwright.store.db import Database
from callwright.store.models import Call
from callwright.store.recordings import RecordingStore

log = logging.getLogger("callwright.conversation")

# How a call that screening ended ended (``LoopResult.ended_by``).
SCREEN_ENDINGS: dict[Outcome, str] = {
    "hung_up": "voicemail",
    "voicemail_left": "voicemail_left",
    "caller_hung_up": "caller",
}


class SpeechLoader:
    """The process's speech back-ends, loaded once, off the event loop, on first use."""

    def __init__(self, load: Callable[[], SpeechProviders]) -> None:
        self._load = load
        self._providers: SpeechProviders | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> SpeechProviders:
        async with self._lock:
            if self._providers is None:
                self._providers = await asyncio.to_thread(self._load)
            return self._providers

    async def warm(self) -> None:
        """Load now and run each embedded model once, so the first call does not wait."""
        await (await self.get()).warm()

    async def aclose(self) -> None:
        if self._providers is not None:
            await self._providers.aclose()


class ConversationRunner:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        agents: AgentFactory,
        speech: SpeechLoader,
        recordings: RecordingStore,
        llm: LLM | None,
        *,
        public_url: str,
        answering: AnsweringConfig | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.agents = agents
        self.speech = speech
        self.recordings = recordings
        self.llm = llm
        self.public_url = public_url.rstrip("/")
        self.answering = answering  # detection settings; the defaults at the port's rate

    async def run_call(self, port: AudioPort, call_id: str) -> LoopResult:
        async with self.db.session() as session:
            call = await session.get(Call, call_id)
            if call is None:
                raise LookupError(f"call {call_id} does not exist")
            params = dict(call.params)
            org_id = call.org_id
            variables = {**(params.get("request_data") or {}), **dict(call.variables)}
            context = _context(call, params)
            policy = ScreeningPolicy.for_call(params, inbound=call.inbound)
            document: dict[str, Any] | None = None
            if call.pathway_id:
                document, _ = await pathways.document_for(
                    session, org_id, call.pathway_id, params.get("pathway_version")
                )
        sink = CallRecordSink(self.db, self.clock, call_id)
        speech = await self.speech.get()
        agent: Agent
        if document is not None:
            agent = await self.agents.pathway_agent(
                org_id,
                document,
                context,
                variables=variables,
                start_node_id=params.get("start_node_id"),
            )
        else:
            agent = self.agents.task_agent(
                str(params.get("task") or ""),
                first_sentence=params.get("first_sentence"),
                variables=variables,
                transfer_number=params.get("transfer_phone_number"),
                temperature=params.get("temperature"),
            )
        try:
            backend, voice_id = speech.resolve_voice(params.get("voice"))
        except UnknownVoice as exc:  # validated at send-call; a voice may go since
            await sink.event("voice.unknown", f"{exc}; using the default voice")
            backend, voice_id = speech.resolve_voice(None)
        if speech.vad is None:
            raise RuntimeError("the embedded VAD did not load")
        # The recording spills to a temporary file as it grows: a live call keeps a few
        # seconds of audio in memory, however long it lasts.
        spill = tempfile.TemporaryFile() if params.get("record") else None  # noqa: SIM115
        recorder = ShiftableRecorder(port.sample_rate, spill=spill) if spill is not None else None
        stt = SpeechTranscriber(speech.stt, language=_language(params))
        tts = SpeechSynthesizer(backend, voice_id)
        wait_for_greeting = bool(params.get("wait_for_greeting"))
        loop_port: AudioPort = port
        loop_sink: CallSink = sink
        screened: Screened | None = None
        first_line: asyncio.Task[None] | None = None
        try:
            if policy is not None:
                events = aiter(port.events())
                if policy.message:
                    values = {**builtin_variables(context, self.clock.now()), **variables}
                    policy = dataclasses.replace(policy, message=render(policy.message, values))
                screener = Screener(
                    port,
                    events,
                    policy,
                    vad=DetectorActivity(speech.vad.detector(), port.sample_rate),
                    tts=tts,
                    sink=sink,
                    on_decision=lambda decision: self._answered_by(call_id, decision),
                    recorder=recorder,
                    config=dataclasses.replace(
                        self.answering or AnsweringConfig(), sample_rate=port.sample_rate
                    ),
                )
                screened = await self._screen(screener, call_id, sink)
                if screened is None or screened.outcome != "converse":
                    if screened is not None:
                        await greeting_line(screened, stt, sink, port.sample_rate)
                        await message_line(screened, policy.message or "", sink)
                    ending = "error" if screened is None else SCREEN_ENDINGS[screened.outcome]
                    result = LoopResult(ending, screener.frames)
                    await self._after(call_id, org_id, result, recorder)
                    return result
                # The conversation reads on where screening stopped; its lines and its
                # recording come after screening's on the call's timeline.
                loop_port = ResumedPort(port, events, screened.pending)
                first_line = asyncio.create_task(
                    greeting_line(screened, stt, sink, port.sample_rate), name="screened-greeting"
                )
                loop_sink = ShiftedSink(sink, screened.frames * FRAME_MS, first_line)
                if recorder is not None:
                    recorder.shift = screened.frames * samples_per_frame(port.sample_rate)
                if screened.answered_by == "human":
                    wait_for_greeting = False  # the greeting was theirs: it is the agent's turn
            loop = CallLoop(
                loop_port,
                agent,
                stt=stt,
                tts=tts,
                vad=DetectorActivity(speech.vad.detector(), port.sample_rate),
                sink=loop_sink,
                turns=TurnConfig.for_call(
                    interruption_threshold=params.get("interruption_threshold"),
                    interruptibility=params.get("interruptibility"),
                    block_interruptions=bool(params.get("block_interruptions")),
                    max_duration_minutes=float(params.get("max_duration") or 30),
                ),
                wait_for_greeting=wait_for_greeting,
                recorder=recorder,
            )
            result = await loop.run()
            if screened is not None:
                result = dataclasses.replace(result, frames=screened.frames + result.frames)
            await self._after(call_id, org_id, result, recorder)
        finally:
            if first_line is not None and not first_line.done():
                first_line.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await first_line
            if spill is not None:
                spill.close()
        return result

    async def _screen(self, screener: Screener, call_id: str, sink: CallSink) -> Screened | None:
        """Screening's result; None if it failed (recorded, as a failed loop would be)."""
        try:
            screened = await screener.run()
        except Exception as exc:
            log.exception("answering detection failed")
            await sink.event("call.screening_failed", f"Answering detection failed: {exc}")
            return None
        if screened.decision is None:  # the line hung up before anything was decided
            await self._answered_by(call_id, None)
        return screened

    async def _answered_by(self, call_id: str, decision: Decision | None) -> None:
        """Store who answered as soon as it is known (the call is still live)."""
        async with self.db.transaction() as session:
            call = await calls.lock_call(session, call_id)
            if call is not None:
                call.answered_by = decision.answered_by if decision is not None else "unknown"

    async def _after(
        self, call_id: str, org_id: str, result: LoopResult, recorder: CallRecorder | None
    ) -> None:
        async with self.db.transaction() as session:
            call = await calls.lock_call(session, call_id)
            if call is not None:
                call.call_ended_by = "USER" if result.ended_by == "caller" else "ASSISTANT"
                if result.transferred_to:
                    call.transferred_to = result.transferred_to
                    call.transferred_at = self.clock.now()
                if result.warm_transfer is not None:
                    call.warm_transfer_call = result.warm_transfer
        if recorder is not None and recorder.num_samples:
            wav = await asyncio.to_thread(recorder.stereo_wav)
            url = f"{self.public_url}/v1/recordings/{call_id}"
            await attach_recording(self.db, self.clock, self.recordings, call_id, org_id, wav, url)
        await finish_record(self.db, self.clock, self.llm, call_id)


def _language(params: dict[str, Any]) -> str | None:
    language = str(params.get("language") or "")
    return language.split("-")[0].lower() or None


def _context(call: Call, params: dict[str, Any]) -> CallContext:
    other = call.from_number if call.inbound else call.to_number
    return CallContext(
        call_id=call.id,
        from_number=call.from_number or "",
        to_number=call.to_number,
        phone_number=other or "",
        timezone=str(params.get("timezone") or "UTC"),
        language=str(params.get("language") or ""),
        voice_id=str(params.get("voice_id") or params.get("voice") or ""),
        request_data=params.get("request_data") or {},
    )
