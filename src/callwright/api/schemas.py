"""Response shapes, for the OpenAPI document (and so for schemathesis and client
generators). Handlers build plain dicts for speed; contract tests pin those dicts to
these shapes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorItem(_Doc):
    error: str
    message: str


class ErrorA(_Doc):
    status: str
    message: str
    errors: list[str] | list[ErrorItem] | None = None


class ErrorB(_Doc):
    data: None = None
    errors: list[ErrorItem]
    status: str
    message: str


class StatusMessage(_Doc):
    status: str
    message: str


class SendCallResponse(StatusMessage):
    call_id: str
    batch_id: str | None


class StopAllResponse(StatusMessage):
    num_calls: int


class CallObject(_Doc):
    call_id: str
    c_id: str
    call_length: float
    corrected_duration: str
    batch_id: str
    to: str
    from_: str = Field(alias="from")
    request_data: dict[str, Any]
    completed: bool
    inbound: bool
    created_at: str
    started_at: str | None
    end_at: str | None
    queue_status: str
    status: str
    max_duration: float | None
    error_message: str
    variables: dict[str, Any]
    answered_by: str | None
    record: bool
    recording_url: str | None
    metadata: dict[str, Any]
    summary: str | None
    call_ended_by: str | None
    pathway_id: str | None
    pathway_version: int | None


class ListCallsResponse(_Doc):
    total_count: int
    count: int
    calls: list[CallObject]


class ActiveCall(_Doc):
    call_id: str
    user_id: str
    to: str
    objective: str
    pathway_id: str | None
    start_time: str | None
    international: str
    status: str
    timestamp: str


class ActiveCallsResponse(_Doc):
    data: list[ActiveCall]
    errors: None = None


class CallEventItem(_Doc):
    seq: int
    call_id: str
    timestamp: str
    level: str
    category: str
    type: str
    message: str
    data: dict[str, Any] | None


class EventsResponse(_Doc):
    data: list[CallEventItem]
    errors: None = None


class Health(_Doc):
    status: str
    database: str
