"""Bodies of the secrets endpoints (``/v1/secrets``).

The reference has secrets only in its dashboard (§4.4): a name and a value, unreadable
after creation, referenced as ``{{SECRET.NAME}}``. callwright has no dashboard, so the
same thing is a small REST resource. Only static secrets exist here; the reference's
refreshable kind (fetched from a URL on a schedule) is refused with a 400 on ``type``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, field_validator

VALUE_MAX = 10_000
# A template name: letters, digits and underscores (the reference's advice, and what
# `{{SECRET.NAME}}` can hold without quoting). Matched case-insensitively.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _name(raw: str) -> str:
    name = raw.strip()
    if not _NAME.fullmatch(name):
        raise ValueError(
            "must start with a letter or underscore and hold only letters, digits and "
            "underscores (at most 64)"
        )
    return name


SecretName = Annotated[str, AfterValidator(_name)]


def _value_length(secret: SecretStr) -> SecretStr:
    # Never quote the value in the message: validation errors are returned and may be logged.
    if not 1 <= len(secret.get_secret_value()) <= VALUE_MAX:
        raise ValueError(f"must be 1 to {VALUE_MAX} characters")
    return secret


SecretValue = Annotated[SecretStr, AfterValidator(_value_length)]


class CreateSecret(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "crm_token", "value": "example-token-0000"}]},
    )

    name: SecretName
    value: SecretValue
    type: str = "static"

    @field_validator("type")
    @classmethod
    def _static_only(cls, value: str) -> str:
        if value != "static":
            raise ValueError("only static secrets exist here (no refreshable ones)")
        return value


class UpdateSecret(BaseModel):
    """Rename, or replace the value (rotation): references by name keep working."""

    model_config = ConfigDict(extra="forbid")

    name: SecretName | None = None
    value: SecretValue | None = None


# Response shapes, for the OpenAPI document; the handlers build plain dicts and the
# contract tests pin those dicts to these shapes.


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class SecretObject(_Doc):
    secret_id: str
    name: str
    type: str
    reference: str
    masked_value: str
    created_at: str
    updated_at: str


class SecretResponse(_Doc):
    data: SecretObject
    errors: None = None


class SecretList(_Doc):
    secrets: list[SecretObject]


class SecretListResponse(_Doc):
    data: SecretList
    errors: None = None


class SecretDeleted(_Doc):
    message: str
    secret_id: str


class SecretDeletedResponse(_Doc):
    data: SecretDeleted
    errors: None = None
