"""The call object of the reference (§2.4), built straight from the row.

Compatibility (issue: existing clients): fields clients read as strings or numbers are
never null: ``batch_id`` and ``error_message`` are ``""`` until set, ``call_length`` is 0
for a call that has not run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from callwright.store.call_record import concatenated
from callwright.store.calls import call_length_minutes
from callwright.store.models import TERMINAL_STATUSES, Call, CallEvent


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def call_object(call: Call, *, with_transcripts: bool = True) -> dict[str, Any]:
    params = call.params
    length = call_length_minutes(call)
    end_at = call.ended_at
    if end_at is None and call.started_at is not None:
        end_at = call.started_at + timedelta(minutes=float(params.get("max_duration") or 30))
    obj: dict[str, Any] = {
        "call_id": call.id,
        "c_id": call.id,
        "call_length": length,
        "corrected_duration": str(round(length * 60)),
        "batch_id": call.batch_id or "",
        "to": call.to_number,
        "from": call.from_number or "",
        "request_data": params.get("request_data") or {},
        "completed": call.status in TERMINAL_STATUSES,
        "inbound": call.inbound,
        "created_at": iso(call.created_at),
        "updated_at": iso(call.updated_at),
        "started_at": iso(call.started_at),
        "end_at": iso(end_at),
        "scheduled_at": iso(call.scheduled_at),
        "queue_status": call.queue_status,
        "status": call.status,
        "max_duration": params.get("max_duration"),
        "error_message": call.error_message or "",
        "variables": {**(params.get("request_data") or {}), **call.variables},
        "answered_by": call.answered_by,
        "record": bool(params.get("record")),
        "recording_url": call.recording_url,
        "recording_expiration": None,
        "metadata": params.get("metadata") or {},
        "summary": call.summary,
        "price": 0.0,
        "local_dialing": bool(params.get("local_dialing")),
        "voice_id": params.get("voice_id") or params.get("voice"),
        "call_ended_by": call.call_ended_by,
        "pathway_id": call.pathway_id,
        "pathway_version": _pathway_version(params.get("pathway_version")),
        "pathway_logs": call.pathway_logs,
        "pathway_tags": [],
        "analysis": call.analysis,
        "concatenated_transcript": concatenated(call.transcript or []),
        "transcripts": [_public_line(line) for line in call.transcript or []],
        "citations": None,
        "citation_schema_ids": params.get("citation_schema_ids") or [],
        "disposition_tag": None,
        "transferred_to": call.transferred_to,
        "transferred_at": iso(call.transferred_at),
        "pre_transfer_duration": None,
        "post_transfer_duration": None,
        "warm_transfer_call": call.warm_transfer_call,
        "is_proxy_agent_call": False,
        "is_canary": None,
        "endpoint_url": None,
        "task": params.get("task"),
    }
    if not with_transcripts:
        del obj["transcripts"], obj["concatenated_transcript"], obj["pathway_logs"]
    return obj


def _public_line(line: dict[str, Any]) -> dict[str, Any]:
    """A transcript line as the reference shows it (timing offsets are ours, kept)."""
    return {k: v for k, v in line.items() if v is not None}


def _pathway_version(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def event_object(event: CallEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "call_id": event.call_id,
        "timestamp": iso(event.at),
        "level": event.level,
        "category": event.category,
        "type": event.type,
        "message": event.message,
        "data": event.data,
    }


def active_object(call: Call) -> dict[str, Any]:
    started = call.started_at or call.created_at
    return {
        "call_id": call.id,
        "user_id": call.org_id,
        "from": call.from_number or "",
        "to": call.to_number,
        "objective": call.params.get("task") or "",
        "pathway_id": call.pathway_id,
        "start_time": iso(started),
        "international": "false" if call.to_number.startswith("+1") else "true",
        "status": "QUEUED" if call.status in ("queued", "allocated") else "IN_PROGRESS",
        "timestamp": str(int(started.timestamp() * 1000)),
    }
