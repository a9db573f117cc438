"""Bodies of the SIP trunk endpoints (reference §7.2, ``/v1/sip/trunks``) and the parsing
of what people type as a trunk's address.

The reference's trunk takes ``sip_endpoint`` (``sip:host`` or ``host``), ``auth_mode``
and ``register_auth {username, password}``; its number attach call takes ``port``,
``transport``, ``sip_username`` and ``sip_password``. A self-hosted UA needs all of those
on the trunk, so a trunk also takes flat ``host``, ``port``, ``transport``, ``username``
and ``password`` (either spelling; a body that gives both must agree).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

from callwright.api.phone import to_e164

Transport = Literal["udp", "tcp", "tls"]
# The reference documents "inbound" and "outbound"; its setup wizard builds trunks that
# carry both, and a PBX trunk usually does, so "both" is accepted too.
Direction = Literal["inbound", "outbound", "both"]
AuthMode = Literal["ip", "register"]

DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
# The reference asks 8 characters of a REGISTER password (register_auth.password).
REGISTER_PASSWORD_MIN = 8
PASSWORD_MAX = 256
MAX_NUMBERS = 100  # the reference's attach limit per call

_USERNAME = re.compile(r'^[^\s"\\\x00-\x1f\x7f]{1,128}$')
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_IDENTITY = re.compile(r"^[A-Za-z0-9*#._-]{1,32}$")


def _username(value: str) -> str:
    if not _USERNAME.fullmatch(value):
        raise ValueError(
            "must be 1 to 128 characters without spaces, quotes, backslashes or control characters"
        )
    return value


def _header_name(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{value!r} is not a SIP header name (a token of at most 64)")
    return value


def _header_value(value: str) -> str:
    if len(value) > 1000 or any(ch in value for ch in "\r\n\x00"):
        raise ValueError("a header value must be one line of at most 1000 characters")
    return value


Username = Annotated[str, AfterValidator(_username)]
HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]


def _password_length(secret: SecretStr) -> SecretStr:
    # The message never quotes the value: validation errors are returned and may be logged.
    if not 1 <= len(secret.get_secret_value()) <= PASSWORD_MAX:
        raise ValueError(f"must be 1 to {PASSWORD_MAX} characters")
    return secret


Password = Annotated[SecretStr, AfterValidator(_password_length)]


def valid_host(raw: str) -> str:
    """A hostname or an IP address (IPv6 with or without brackets), lowercased."""
    text = raw.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.removesuffix(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(p) for p in name.split(".")):
        raise ValueError("must be a hostname or an IP address")
    return name


class Endpoint(NamedTuple):
    host: str
    port: int | None
    transport: str | None


def parse_endpoint(raw: str) -> Endpoint:
    """``host``, ``host:port``, ``sip:host[:port][;transport=tcp]``, ``sips:host`` (TLS)
    or ``tls://host:5061`` (the shorthands the reference's wizard takes)."""
    text = raw.strip()
    transport: str | None = None
    for prefix, implied in (
        ("sips:", "tls"),
        ("sip:", None),
        ("udp://", "udp"),
        ("tcp://", "tcp"),
        ("tls://", "tls"),
    ):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
            transport = implied
            break
    text, _, params = text.partition(";")
    if "@" in text:
        raise ValueError("must not have a user part (give username instead)")
    for param in filter(None, params.split(";")):
        key, _, value = param.partition("=")
        value = value.strip().lower()
        if key.strip().lower() != "transport":
            raise ValueError(f"unsupported URI parameter {key.strip()!r}")
        if value not in DEFAULT_PORTS:
            raise ValueError("transport must be udp, tcp or tls")
        if transport == "tls" and value != "tls":
            raise ValueError("a sips: URI needs transport=tls")
        transport = value
    host, port = _split_port(text)
    return Endpoint(valid_host(host), port, transport)


def _split_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port_text is None:
            raise ValueError("must be host or host:port")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None  # a name, or a bare IPv6 address
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError("port must be 1 to 65535")
    return host, int(port_text)


def render_endpoint(host: str, port: int | None, transport: str) -> str:
    """The trunk as a SIP URI; UDP is a SIP URI's default, so it is left implicit."""
    shown = f"[{host}]" if ":" in host else host
    if port is not None:
        shown += f":{port}"
    return f"sip:{shown}" + ("" if transport == "udp" else f";transport={transport}")


def bound_number(raw: str) -> str:
    """E.164 for a phone number; a DID, extension or SIP user part is kept as given
    (the reference accepts those on trunk-bound numbers)."""
    try:
        return to_e164(raw)
    except ValueError:
        text = raw.strip()
        if text.startswith("+") or not _IDENTITY.fullmatch(text):
            raise ValueError(
                f"{raw!r} is neither a phone number nor a DID/extension "
                "(letters, digits and *#._- up to 32)"
            ) from None
        return text


class RegisterAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password


class TrunkFields(BaseModel):
    """Every field of a trunk, all optional: the update body. Unknown fields are refused,
    so a misspelt ``pasword`` is an error rather than a trunk without credentials."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    provider: str | None = Field(default=None, min_length=1, max_length=50)
    direction: Direction | None = None
    sip_endpoint: str | None = Field(default=None, max_length=300)
    host: str | None = Field(default=None, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    transport: Transport | None = None
    auth_mode: AuthMode | None = None
    register_auth: RegisterAuth | None = None
    username: Username | None = None
    password: Password | None = None
    caller_id: str | None = None
    numbers: list[str] | None = Field(default=None, max_length=MAX_NUMBERS)
    headers: dict[HeaderName, HeaderValue] | None = Field(default=None, max_length=50)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return None if value is None else value.strip()

    @field_validator("sip_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            parse_endpoint(value)
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return None if value is None else valid_host(value)

    @field_validator("caller_id")
    @classmethod
    def _caller_id(cls, value: str | None) -> str | None:
        return None if value is None else to_e164(value)

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(bound_number(n) for n in value))


class CreateTrunk(TrunkFields):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Office PBX",
                    "sip_endpoint": "sip:pbx.example.com:5060;transport=tcp",
                    "auth_mode": "register",
                    "register_auth": {"username": "agent", "password": "change-me-please"},
                    "caller_id": "+14155550100",
                    "numbers": ["+14155550100", "2001"],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)


# Response shapes, for the OpenAPI document; the handlers build plain dicts and the
# contract tests pin those dicts to these shapes.


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class BoundNumber(_Doc):
    phone_number: str
    directions: list[str]


class TrunkObject(_Doc):
    trunk_id: str
    name: str
    provider: str
    direction: str
    sip_endpoint: str
    host: str
    port: int | None
    transport: str
    auth_mode: str
    username: str | None
    has_password: bool
    caller_id: str | None
    headers: dict[str, str]
    bound_numbers: list[BoundNumber]
    bound_number_count: int
    created_at: str
    updated_at: str


class TrunkResponse(_Doc):
    data: TrunkObject
    errors: None = None


class TrunkList(_Doc):
    trunks: list[TrunkObject]


class TrunkListResponse(_Doc):
    data: TrunkList
    errors: None = None


class TrunkDeleted(_Doc):
    trunk_id: str
    unbound_number_count: int


class TrunkDeletedResponse(_Doc):
    data: TrunkDeleted
    errors: None = None
