"""``{{variable}}`` rendering and the built-in variables of a call.

Rules (reference §4.5 and §3.6):

- ``{{name}}``, ``{{ name }}`` and ``{{a.b.c}}`` resolve against the call's variables;
  names are case-insensitive and outer spaces are trimmed.
- An unknown placeholder is left as written by default. The platform does the same (the
  golden export's start code checks values for an "unsubstituted {{...}}"), and it keeps
  a prompt honest: the model sees that a value is missing instead of a silent gap.
  Text that is *spoken verbatim* is rendered with ``missing="empty"`` instead, so a
  caller never hears braces.
- ``{{SECRET.NAME}}`` is never resolved here: secrets are substituted only when a webhook
  or tool request is sent, so they never enter prompts, logs or the engine state.
- Built-in variables are computed from a :class:`CallContext` and a ``now`` passed in;
  nothing here reads the clock. Variables of the call override built-ins of the same
  name (a request-supplied ``voice_id`` wins, §3.6).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callwright.pathways.values import lookup, to_text

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
SECRET_PREFIX = "secret."  # noqa: S105 - a placeholder prefix, not a secret

BUILTIN_NAMES = frozenset(
    {
        "phone_number",
        "from",
        "to",
        "short_from",
        "short_to",
        "call_id",
        "timezone",
        "country",
        "state",
        "city",
        "zip",
        "language",
        "voice_id",
        "now",
        "now_utc",
        "timestamp",
        "lastUserMessage",
        "prevNodePrompt",
        "BlandStatusCode",
        "input",
        "data",
    }
)
_BUILTIN_FOLDED = frozenset(name.casefold() for name in BUILTIN_NAMES)

Missing = Literal["keep", "empty"]


def placeholders(text: str) -> list[str]:
    """The variable names a text refers to, secrets excluded."""
    return [
        name
        for name in (m.group(1) for m in PLACEHOLDER.finditer(text))
        if name and not is_secret(name)
    ]


def is_secret(name: str) -> bool:
    return name.strip().casefold().startswith(SECRET_PREFIX)


def is_builtin(name: str) -> bool:
    """Built-ins, including dotted paths into ``input``/``data`` of tools."""
    root = name.strip().split(".", 1)[0]
    return root.casefold() in _BUILTIN_FOLDED


def render(template: str, variables: Mapping[str, Any], *, missing: Missing = "keep") -> str:
    """Substitute every ``{{name}}`` that resolves; see the module rules for the rest."""
    if "{{" not in template:
        return template

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name or is_secret(name):
            return match.group(0)
        found, value = lookup(variables, name)
        if not found:
            return match.group(0) if missing == "keep" else ""
        return to_text(value)

    return PLACEHOLDER.sub(substitute, template)


def render_value(template: Any, variables: Mapping[str, Any], *, typed: bool = True) -> Any:
    """Render every string inside a JSON value. With ``typed``, a string that is exactly
    one placeholder takes the variable's own JSON value (a number stays a number);
    without, every string stays a string (text substitution)."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template.strip()) if typed else None
        if whole is not None and whole.group(1) and not is_secret(whole.group(1)):
            found, value = lookup(variables, whole.group(1))
            if found:
                return value
        return render(template, variables)
    if isinstance(template, list):
        return [render_value(item, variables, typed=typed) for item in template]
    if isinstance(template, dict):
        return {str(k): render_value(v, variables, typed=typed) for k, v in template.items()}
    return template


def render_body(body: Any, variables: Mapping[str, Any]) -> str | None:
    """A webhook body (the reference: a JSON *string* holding ``{{vars}}``) rendered to
    the text to send.

    A body that parses as JSON is rendered value by value, so a variable holding quotes
    or newlines cannot break the JSON; anything else is rendered as plain text.
    Substitution is textual, as on the platform: ``"n": "{{n}}"`` sends the string
    ``"5"`` (receivers written for the platform expect exactly that); a pathway that
    wants a number writes ``"n": {{n}}``, which is not JSON and so renders as text."""
    if body is None or body == "":
        return None
    if isinstance(body, dict | list):
        return json.dumps(render_value(body, variables, typed=False), ensure_ascii=False)
    if not isinstance(body, str):
        return to_text(body)
    try:
        parsed = json.loads(body)
    except ValueError:
        return render(body, variables)
    if isinstance(parsed, dict | list):
        return json.dumps(render_value(parsed, variables, typed=False), ensure_ascii=False)
    return render(body, variables)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the engine knows about the call, fixed for its duration."""

    call_id: str = ""
    from_number: str = ""
    to_number: str = ""
    # The other party: the callee on an outbound call, the caller on an inbound one.
    phone_number: str = ""
    timezone: str = "UTC"
    country: str = ""
    state: str = ""
    city: str = ""
    zip: str = ""
    language: str = ""
    voice_id: str = ""
    request_data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "from_number": self.from_number,
            "to_number": self.to_number,
            "phone_number": self.phone_number,
            "timezone": self.timezone,
            "country": self.country,
            "state": self.state,
            "city": self.city,
            "zip": self.zip,
            "language": self.language,
            "voice_id": self.voice_id,
            "request_data": dict(self.request_data),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallContext:
        def text(key: str, default: str = "") -> str:
            value = data.get(key, default)
            return value if isinstance(value, str) else default

        request_data = data.get("request_data")
        return cls(
            call_id=text("call_id"),
            from_number=text("from_number"),
            to_number=text("to_number"),
            phone_number=text("phone_number"),
            timezone=text("timezone", "UTC") or "UTC",
            country=text("country"),
            state=text("state"),
            city=text("city"),
            zip=text("zip"),
            language=text("language"),
            voice_id=text("voice_id"),
            request_data=dict(request_data) if isinstance(request_data, Mapping) else {},
        )


def call_zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def short_number(number: str) -> str:
    """The number without its country code: ``+14155550100`` → ``4155550100``."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if number.strip().startswith("+1") and len(digits) == 11:
        return digits[1:]
    if number.strip().startswith("+") and len(digits) > 10:
        return digits[-10:]
    return digits


def format_now(now: datetime, zone: tzinfo) -> str:
    """``now`` in the call's timezone, spelled for a model to read:
    ``Tuesday, June 3, 2025 10:15 AM EDT``."""
    local = now.astimezone(zone)
    hour = local.hour % 12 or 12
    return (
        f"{local:%A}, {local:%B} {local.day}, {local.year} "
        f"{hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'} {local.tzname() or ''}"
    ).rstrip()


def builtin_variables(context: CallContext, now: datetime | None) -> dict[str, Any]:
    """The system variables of §4.5/§3.6 (``lastUserMessage`` and ``prevNodePrompt``
    come from the engine state)."""
    out: dict[str, Any] = {
        "phone_number": context.phone_number,
        "from": context.from_number,
        "to": context.to_number,
        "short_from": short_number(context.from_number),
        "short_to": short_number(context.to_number),
        "call_id": context.call_id,
        "timezone": context.timezone,
        "country": context.country,
        "state": context.state,
        "city": context.city,
        "zip": context.zip,
        "language": context.language,
    }
    if context.voice_id:
        out["voice_id"] = context.voice_id
    if now is not None:
        aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        out["now"] = format_now(aware, call_zone(context.timezone))
        out["now_utc"] = aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out["timestamp"] = aware.astimezone(call_zone(context.timezone)).isoformat()
    return out
