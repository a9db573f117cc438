"""The live record of a call: transcript lines, pathway log entries and conversation
events, each committed the moment it happens, so a crash leaves a truthful partial
record.

Rules:
1. Every write locks the call row (``calls.lock_call``) and appends: the transcript and
   the pathway log are reference-shaped lists on the call (§2.4), and every line is also
   an event in the call's ordered event log.
2. Transcript ids count from 1 per call, in the order lines were spoken.
3. ``CallRecordSink`` is the conversation loop's ``CallSink`` over these functions.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from callwright.clock import Clock
from callwright.store import calls
from callwright.store.db import Database
from callwright.store.models import Call
from callwright.store.recordings import RecordingStore

Speaker = Literal["user", "assistant", "robot", "agent-action"]
PERFORMANCE_EVENTS = frozenset({"turn.latency"})


class CallGone(RuntimeError):
    """The call row no longer exists (deleted while it ran)."""


async def append_transcript(
    session: AsyncSession,
    call: Call,
    now: datetime,
    speaker: Speaker,
    text: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    interrupted: bool = False,
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": len(call.transcript) + 1,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "text": text,
        "user": speaker,
        "c_id": call.id,
        "start_ms": start_ms,
        "end_ms": end_ms,
    }
    if interrupted:
        line["interrupted"] = True
    call.transcript = [*call.transcript, line]  # a new list: JSON columns track reassignment
    await calls.add_event(
        session,
        call,
        now,
        f"transcript.{speaker}",
        f"{speaker}: {text}",
        data={k: line[k] for k in ("id", "start_ms", "end_ms")},
    )
    return line


async def append_pathway_log(
    session: AsyncSession, call: Call, now: datetime, entry: dict[str, Any]
) -> None:
    """One engine log entry, kept in the reference's shape: ``decision`` and
    ``pathway_info`` are JSON strings there."""
    shaped = {
        "tag": entry.get("tag"),
        "role": entry.get("role", "assistant"),
        "text": entry.get("text", ""),
        "decision": _as_json_text(entry.get("decision")),
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "pathway_info": _as_json_text(entry.get("pathway_info")),
        "chosen_node_id": entry.get("chosen_node_id"),
    }
    call.pathway_logs = [*(call.pathway_logs or []), shaped]


def _as_json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def concatenated(transcript: list[dict[str, Any]]) -> str:
    """The reference's ``concatenated_transcript``: ``"role: text \\n"`` lines."""
    return "".join(f"{line['user']}: {line['text']} \n" for line in transcript)


class CallRecordSink:
    """``conversation.ports.CallSink`` writing to the store."""

    def __init__(self, db: Database, clock: Clock, call_id: str) -> None:
        self.db = db
        self.clock = clock
        self.call_id = call_id

    async def transcript(self, line: Any) -> None:
        async with self.db.transaction() as session:
            call = await self._lock(session)
            await append_transcript(
                session,
                call,
                self.clock.now(),
                line.speaker,
                line.text,
                start_ms=line.start_ms,
                end_ms=line.end_ms,
                interrupted=line.interrupted,
            )

    async def event(self, type: str, message: str, data: dict[str, Any] | None = None) -> None:
        async with self.db.transaction() as session:
            call = await self._lock(session)
            now = self.clock.now()
            if type == "pathway.log" and data is not None:
                await append_pathway_log(session, call, now, data)
            await calls.add_event(
                session,
                call,
                now,
                type,
                message,
                category="performance" if type in PERFORMANCE_EVENTS else "info",
                data=data,
            )

    async def _lock(self, session: AsyncSession) -> Call:
        call = await calls.lock_call(session, self.call_id)
        if call is None:
            raise CallGone(self.call_id)
        return call


async def attach_recording(
    db: Database,
    clock: Clock,
    recordings: RecordingStore,
    call_id: str,
    org_id: str,
    wav: bytes,
    url: str,
) -> None:
    """Store a finished call's recording and point ``recording_url`` at it."""
    await asyncio.to_thread(recordings.save, org_id, call_id, wav)
    async with db.transaction() as session:
        call = await calls.lock_call(session, call_id, org_id)
        if call is None:
            raise CallGone(call_id)
        call.recording_url = url
        await calls.add_event(
            session, call, clock.now(), "recording.saved", f"Recording saved ({len(wav)} bytes)"
        )
