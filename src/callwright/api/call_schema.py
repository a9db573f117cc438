"""The ``POST /v1/calls`` body: every documented field (current and legacy), validated.

Compatibility rules (see the reference, §2.1 and §10):
- Unknown fields are accepted and kept verbatim in the stored request (the hosted API
  rejects them, but our issue is that client code written for any of its revisions works).
- An explicit ``null`` for an optional field means "use the default".
- Booleans arrive as strings in some published examples; pydantic's lax mode takes
  "true"/"false".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from callwright.api.phone import to_e164

LANGUAGES = frozenset(
    [
        "babel",
        "fluent",
        "en",
        "babel-en",
        "en-US",
        "en-GB",
        "en-AU",
        "en-NZ",
        "en-IN",
        "es",
        "babel-es",
        "es-419",
        "fr",
        "babel-fr",
        "fr-CA",
        "de",
        "babel-de",
        "el",
        "hi",
        "hi-Latn",
        "hu",
        "ja",
        "ko",
        "ko-KR",
        "vi",
        "pt",
        "pt-BR",
        "pt-PT",
        "zh",
        "zh-CN",
        "zh-Hans",
        "zh-TW",
        "zh-Hant",
        "it",
        "nl",
        "pl",
        "ru",
        "sv",
        "sv-SE",
        "da",
        "da-DK",
        "fi",
        "no",
        "id",
        "ms",
        "tr",
        "uk",
        "bg",
        "cs",
        "ro",
        "sk",
        "auto",
    ]
)
WEBHOOK_EVENTS = frozenset(
    [
        "queue",
        "call",
        "latency",
        "webhook",
        "tool",
        "dynamic_data",
        "citations",
        "evals",
        "post_transfer_transcript",
    ]
)
DISPOSITIONS = [
    "INTERESTED",
    "NOT_INTERESTED",
    "FOLLOW_UP_REQUIRED",
    "CALL_BACK_SCHEDULED",
    "TRANSFERRED",
    "OBJECTION_RAISED",
    "NEEDS_MORE_INFO",
    "NOT_QUALIFIED",
    "NO_CONTACT_MADE",
    "COMPLETED_ACTION",
    "DO_NOT_CONTACT",
    "AGENT_ENDED_CALL",
    "NO_ANSWER",
    "BUSY",
    "CANCELED",
    "FAILED",
]
KEYWORD = re.compile(r"^[^:]{1,99}(:-?\d+)?$")
DTMF_SEQUENCE = re.compile(r"^[0-9*#wW]+$")
START_TIME = re.compile(
    r"^(?P<dt>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)
MAX_DURATION_MINUTES = 12 * 60

# Documentation only (the validators decide): what a client should send. National US
# forms such as "(415) 555-0123" are accepted too, and a number must also be possible
# for its country.
PHONE_DOC: dict[str, Any] = {"pattern": r"^\+[1-9][0-9]{6,14}$", "examples": ["+14155550123"]}

ShortText = Annotated[str, StringConstraints(max_length=20_000)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/$.?#][^\s]*$", max_length=2048)]


class _Open(BaseModel):
    """Nested objects keep whatever else the client sent."""

    model_config = ConfigDict(extra="allow")


class PronunciationEntry(_Open):
    word: str = Field(min_length=1)
    pronunciation: str
    case_sensitive: bool = False
    spaced: bool = True


class DialingStrategy(_Open):
    type: Literal["local", "custom_pooling"]
    pool_id: str | None = None

    @model_validator(mode="after")
    def _pool_needed(self) -> DialingStrategy:
        if self.type == "custom_pooling" and not self.pool_id:
            raise ValueError("pool_id is required when type is custom_pooling")
        return self


class VoicemailSms(_Open):
    to: str | None = None
    from_: str | None = Field(default=None, alias="from")
    message: str


class Voicemail(_Open):
    message: str | None = None
    action: Literal["hangup", "leave_message", "ignore"] = "hangup"
    sms: VoicemailSms | None = None
    sensitive: bool = False

    @model_validator(mode="after")
    def _message_needed(self) -> Voicemail:
        if self.action == "leave_message" and not self.message:
            raise ValueError("message is required when action is leave_message")
        return self


class Retry(_Open):
    wait: int | None = Field(default=None, ge=0, le=7 * 24 * 3600)
    voicemail_action: Literal["hangup", "leave_message", "ignore"] | None = None
    voicemail_message: str | None = None


class PostCallEvals(_Open):
    workbench_setup_id: str | None = None
    workbench_setup_version_id: str | None = None


class GuardRailAction(_Open):
    type: Literal["end_call", "transfer", "move_to_node"]
    config: dict[str, Any] | None = None


class GuardRail(_Open):
    type: str = Field(
        pattern=r"^(tcpa:ai_disclosure|tcpa:self_introduction|"
        r"tcpa:recording_disclosure|tcpa:opt_out|custom)$"
    )
    actions: list[GuardRailAction] = Field(default_factory=list)
    config: dict[str, Any] | None = None
    prompt: str | None = None


class DispatchHours(_Open):
    start: str
    end: str


class Calendly(_Open):
    url: Url
    timezone: str | None = None


class SendCallRequest(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    phone_number: str = Field(
        description="Number to call; E.164 or US national form.", json_schema_extra=PHONE_DOC
    )
    task: ShortText | None = None
    pathway_id: str | None = Field(default=None, max_length=64)
    pathway_version: int | Literal["production", "staging"] | None = None
    persona_id: str | None = Field(default=None, max_length=64)
    voice: str | None = Field(default=None, max_length=200)
    first_sentence: str | None = Field(default=None, max_length=2000)
    model: Literal["base", "turbo", "enhanced"] | None = None
    language: str | None = Field(
        default=None, json_schema_extra={"enum": [*sorted(LANGUAGES), None]}
    )
    wait_for_greeting: bool | None = None
    pronunciation_guide: list[PronunciationEntry] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    interruption_threshold: float | None = Field(default=None, ge=0, le=10_000)
    interruptibility: int | None = Field(default=None, ge=0, le=3)
    block_interruptions: bool | None = None
    from_: str | None = Field(default=None, alias="from", json_schema_extra=PHONE_DOC)
    dialing_strategy: DialingStrategy | None = None
    timezone: str | None = None
    start_time: str | None = None
    transfer_phone_number: str | None = Field(default=None, json_schema_extra=PHONE_DOC)
    transfer_list: dict[str, str] | None = None
    max_duration: float | None = Field(default=None, ge=1, le=MAX_DURATION_MINUTES)
    tools: list[str | dict[str, Any]] | None = None
    background_track: Literal["office", "cafe", "restaurant", "none"] | None = None
    noise_cancellation: bool | None = None
    record: bool | None = None
    voicemail: Voicemail | None = None
    citation_schema_ids: list[str] | None = None
    stream_post_transfer_transcript: bool | None = None
    post_call_evals: PostCallEvals | None = None
    summary_prompt: str | None = Field(default=None, max_length=2000)
    retry: Retry | None = None
    dispositions: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = (
        None
    )
    request_data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    webhook: Url | None = None
    webhook_events: list[str] | None = None
    dynamic_data: list[dict[str, Any]] | Literal[""] | None = None
    keywords: list[str] | None = Field(default=None, max_length=20)
    ignore_button_press: bool | None = None
    precall_dtmf_sequence: str | None = Field(default=None, max_length=200)
    guard_rails: list[GuardRail] | None = None

    # Legacy fields, still accepted (reference §2.1 "Legacy call fields").
    answered_by_enabled: bool | None = None
    voicemail_action: Literal["hangup", "leave_message", "ignore"] | None = None
    voicemail_message: str | None = None
    voicemail_sms: VoicemailSms | None = None
    sensitive_voicemail_detection: bool | None = None
    analysis_schema: dict[str, Any] | None = None
    analysis_prompt: str | None = None
    analysis_preset: str | None = None
    start_node_id: str | None = None
    citation_schema_id: str | None = None
    available_tags: list[str] | None = None
    local_dialing: bool | None = None
    geospatial_dialing: str | None = None
    dispatch_hours: DispatchHours | None = None
    retry_config: Retry | None = None
    resumption_speed: int | None = Field(default=None, ge=1, le=3)
    include_post_transfer_transcript: bool | None = None
    language_detection_period: float | None = Field(default=None, ge=10, le=100)
    language_detection_options: list[str] | None = None
    amd: bool | None = None
    voice_id: str | int | None = None
    voice_preset_id: str | None = None
    voice_settings: dict[str, Any] | None = None
    reduce_latency: bool | None = None
    stability: float | None = Field(default=None, ge=0, le=1)
    similarity: float | None = Field(default=None, ge=0, le=1)
    speed: float | None = Field(default=None, gt=0, le=4)
    quality: str | None = None
    calendly: Calendly | None = None

    @field_validator("phone_number", "from_", "transfer_phone_number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return None if value is None else to_e164(value)

    @field_validator("transfer_list")
    @classmethod
    def _e164_values(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        out = {}
        for label, number in value.items():
            try:
                out[label] = to_e164(number)
            except ValueError as exc:
                raise ValueError(f"entry {label!r} {exc}") from None
        return out

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and value not in LANGUAGES:
            raise ValueError(f"unsupported language {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_of(value)
        return value

    @field_validator("start_time")
    @classmethod
    def _start_time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_start_time(value)
        return value

    @field_validator("webhook_events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if item not in WEBHOOK_EVENTS:
                raise ValueError(f"unknown webhook event {item!r}; one of {sorted(WEBHOOK_EVENTS)}")
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if not KEYWORD.match(item):
                raise ValueError(f"keyword {item!r} must be 'word' or 'word:N' and under 100 chars")
        return value

    @field_validator("precall_dtmf_sequence")
    @classmethod
    def _dtmf(cls, value: str | None) -> str | None:
        if value and not DTMF_SEQUENCE.match(value):
            raise ValueError("may only hold 0-9, *, # and w (a 0.5 s pause)")
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[str | dict[str, Any]] | None) -> list[str | dict[str, Any]] | None:
        for item in value or []:
            if isinstance(item, str) and not item.startswith(("TL-", "KB-", "kb_")):
                raise ValueError(f"tool id {item!r} must start with TL- or KB-")
        return value

    @model_validator(mode="after")
    def _task_or_pathway(self) -> SendCallRequest:
        if not self.pathway_id and not (self.task and self.task.strip()) and not self.persona_id:
            raise ValueError("Missing required parameter: task (or pathway_id).")
        return self

    def normalised(self) -> dict[str, Any]:
        """Every documented field with its effective value (defaults filled in)."""
        data = self.model_dump(by_alias=True, exclude_none=False)
        extra = self.model_extra or {}
        for name in extra:
            data.pop(name, None)
        for name, default in DEFAULTS.items():
            if data.get(name) is None:
                data[name] = default
        if data.get("dynamic_data") == "":
            data["dynamic_data"] = []
        if self.interruptibility == 0:
            data["block_interruptions"] = True
        return data


DEFAULTS: dict[str, Any] = {
    "model": "base",
    "language": "babel-en",
    "wait_for_greeting": False,
    "temperature": 0.7,
    "interruption_threshold": 500,
    "interruptibility": 2,
    "block_interruptions": False,
    "timezone": "America/Los_Angeles",
    "max_duration": 30,
    "noise_cancellation": False,
    "record": False,
    "keywords": [],
    "ignore_button_press": False,
    "answered_by_enabled": False,
    "dispositions": DISPOSITIONS,
    "request_data": {},
    "metadata": {},
}


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA timezone {name!r}") from None


def parse_start_time(value: str) -> datetime:
    """``YYYY-MM-DD HH:MM:SS -HH:MM`` (zone optional, UTC assumed) or ISO 8601."""
    match = START_TIME.match(value.strip())
    if not match:
        raise ValueError("must look like 'YYYY-MM-DD HH:MM:SS -HH:MM' (ISO 8601 also accepted)")
    try:
        when = datetime.fromisoformat(match["dt"].replace(" ", "T"))
    except ValueError:
        raise ValueError("is not a real date and time") from None
    tz = match["tz"]
    if tz is None or tz == "Z":
        return when.replace(tzinfo=UTC)
    sign = 1 if tz[0] == "+" else -1
    digits = tz[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if offset >= timedelta(hours=24):
        raise ValueError("has an offset of 24 hours or more")
    from datetime import timezone

    return when.replace(tzinfo=timezone(sign * offset)).astimezone(UTC)
