"""After the conversation, before the call's final status: the summary and the legacy
``analysis_schema`` answers, so the post-call webhook carries them.

Rules:
1. With no LLM configured both stay null and the call's events say why.
2. The summary follows the call's ``summary_prompt`` when it has one.
3. ``analysis_schema`` is ``{key: "type or format"}`` (reference §2.1, legacy); each key
   becomes a typed variable to extract from the transcript.
4. An LLM failure leaves the field null with an error event; it never fails the call.
"""

from __future__ import annotations

import logging
from typing import Any

from callwright.clock import Clock
from callwright.providers.llm import LLM, ChatMessage, LLMError, VarSpec
from callwright.store import calls
from callwright.store.call_record import concatenated
from callwright.store.db import Database
from callwright.store.models import Call

log = logging.getLogger("callwright.conversation")

DEFAULT_SUMMARY_PROMPT = (
    "Summarise this phone call in two or three sentences: who called, what they wanted, "
    "what was decided or done, and any follow-up promised."
)
KNOWN_TYPES = frozenset({"string", "integer", "number", "boolean", "date", "time", "datetime"})


async def summarize(llm: LLM, transcript: str, prompt: str | None) -> str:
    completion = await llm.complete(
        [
            ChatMessage("system", prompt or DEFAULT_SUMMARY_PROMPT),
            ChatMessage("user", f"Transcript:\n{transcript}"),
        ],
        temperature=0.2,
        max_tokens=300,
    )
    return completion.text.strip()


async def answer_schema(llm: LLM, transcript: str, schema: dict[str, Any]) -> dict[str, Any]:
    specs = []
    for key, kind in schema.items():
        text = str(kind)
        specs.append(
            VarSpec(
                name=key,
                type=text if text in KNOWN_TYPES else "string",
                description=f"{key} ({text})",
            )
        )
    found = await llm.extract(
        transcript,
        specs,
        instruction="Fill each field from the phone call transcript; null when not said.",
    )
    return {spec.name: found.get(spec.name) for spec in specs}


async def finish_record(db: Database, clock: Clock, llm: LLM | None, call_id: str) -> None:
    async with db.session() as session:
        call = await session.get(Call, call_id)
        if call is None:
            return
        params = dict(call.params)
        transcript = concatenated(call.transcript or [])
    schema = params.get("analysis_schema") or None
    updates: dict[str, Any] = {}
    notes: list[tuple[str, str, str]] = []  # (type, message, category)
    if llm is None:
        notes.append(
            ("summary.skipped", "No summary: no LLM is configured (CALLWRIGHT_LLM_*)", "info")
        )
    elif not transcript:
        notes.append(("summary.skipped", "No summary: nothing was said", "info"))
    else:
        try:
            updates["summary"] = await summarize(llm, transcript, params.get("summary_prompt"))
            notes.append(("summary.written", "Summary written", "info"))
        except LLMError as exc:
            notes.append(("summary.failed", f"Summary failed: {exc}", "error"))
        if isinstance(schema, dict) and schema:
            try:
                updates["analysis"] = await answer_schema(llm, transcript, schema)
                notes.append(("analysis.written", "analysis_schema answered", "info"))
            except LLMError as exc:
                notes.append(("analysis.failed", f"Analysis failed: {exc}", "error"))
    async with db.transaction() as session:
        locked = await calls.lock_call(session, call_id)
        if locked is None:
            return
        for key, value in updates.items():
            setattr(locked, key, value)
        for type_, message, category in notes:
            await calls.add_event(
                session,
                locked,
                clock.now(),
                type_,
                message,
                category="error" if category == "error" else "info",
            )
