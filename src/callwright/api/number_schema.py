"""Bodies of the numbers endpoints (reference §7)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callwright.api.call_schema import (
    LANGUAGES,
    WEBHOOK_EVENTS,
    PronunciationEntry,
    Url,
    zone_of,
)
from callwright.api.phone import to_e164


class InboundUpdate(BaseModel):
    """Agent configuration of an inbound number. Only the fields sent are changed."""

    model_config = ConfigDict(extra="allow")

    prompt: str | None = Field(default=None, max_length=30_000)
    pathway_id: str | None = Field(default=None, max_length=64)
    pathway_version: int | Literal["production", "staging"] | None = None
    voice: str | None = Field(default=None, max_length=200)
    background_track: Literal["office", "cafe", "restaurant", "none"] | None = None
    first_sentence: str | None = Field(default=None, max_length=2000)
    summary_prompt: str | None = Field(default=None, max_length=2000)
    block_interruptions: bool | None = None
    interruption_threshold: float | None = Field(default=None, ge=0, le=10_000)
    model: Literal["base", "turbo", "enhanced"] | None = None
    request_data: dict[str, Any] | None = None
    tools: list[str | dict[str, Any]] | None = None
    language: str | None = None
    timezone: str | None = None
    transfer_phone_number: str | None = None
    fallback_number: str | None = None
    memory_id: str | None = None
    pronunciation_guide: list[PronunciationEntry] | None = None
    transfer_list: dict[str, str] | None = None
    # An object on inbound numbers, an array on calls (reference §10.13): take both.
    dynamic_data: list[dict[str, Any]] | dict[str, Any] | None = None
    keywords: list[str] | None = Field(default=None, max_length=20)
    noise_cancellation: bool | None = None
    ignore_button_press: bool | None = None
    max_duration: float | None = Field(default=None, ge=1, le=720)
    webhook: Url | None = None
    webhook_events: list[str] | None = None
    metadata: dict[str, Any] | None = None
    record: bool | None = None
    citation_schema_ids: list[str] | None = None

    @field_validator("transfer_phone_number", "fallback_number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return None if value is None else to_e164(value)

    @field_validator("transfer_list")
    @classmethod
    def _e164_values(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else {k: to_e164(v) for k, v in value.items()}

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

    @field_validator("webhook_events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if item not in WEBHOOK_EVENTS:
                raise ValueError(f"unknown webhook event {item!r}")
        return value


INBOUND_DEFAULTS: dict[str, Any] = {
    "prompt": None,
    "pathway_id": None,
    "pathway_version": None,
    "voice": None,
    "background_track": None,
    "first_sentence": None,
    "webhook": None,
    "dynamic_data": None,
    "interruption_threshold": 500,
    "transfer_phone_number": None,
    "record": False,
    "max_duration": 30,
    "model": "base",
    "language": "en-US",
    "fallback_number": None,
}

# Setting a pathway clears what only a prompt agent uses (reference §7.1).
CLEARED_BY_PATHWAY = ("prompt", "first_sentence", "model", "dynamic_data", "tools", "transfer_list")


class InsertNumbers(BaseModel):
    numbers: list[str] = Field(min_length=1, max_length=100)

    @field_validator("numbers")
    @classmethod
    def _e164_all(cls, value: list[str]) -> list[str]:
        return [to_e164(n) for n in value]


class UpdateLabel(BaseModel):
    phoneNumber: str  # noqa: N815 - the reference's own field name
    newLabel: str = Field(max_length=150)  # noqa: N815


class AddOutbound(BaseModel):
    phone_number: str
    trunk_id: str | None = Field(default=None, max_length=36)

    @field_validator("phone_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        return to_e164(value)


class CreateBlocks(BaseModel):
    numbers: list[str] = Field(min_length=1, max_length=10)
    is_global: bool
    inbound_number: str | None = None
    reason: str | None = Field(default=None, max_length=1000)

    @field_validator("numbers")
    @classmethod
    def _e164_all(cls, value: list[str]) -> list[str]:
        return [to_e164(n) for n in value]

    @field_validator("inbound_number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return None if value is None else to_e164(value)


class EditBlock(BaseModel):
    reason: str | None = Field(default=None, max_length=1000)
    is_active: bool | None = None
