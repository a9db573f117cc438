"""``{{var}}`` rendering and built-in variables."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from callwright.pathways import CallContext, builtin_variables, render
from callwright.pathways.templating import placeholders, render_body, render_value, short_number

VARS = {
    "name": "Ada",
    "store_hours": {"open": "9am", "days": ["Mon", "Tue"]},
    "count": 3,
    "ok": True,
    "as_json": '{"inner": {"x": 1}}',
    "dotted.key": "whole",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hi {{name}}!", "Hi Ada!"),
        ("Hi {{ name }}!", "Hi Ada!"),
        ("Hi {{NAME}}", "Hi Ada"),
        ("{{store_hours.open}}", "9am"),
        ("{{store_hours.days.1}}", "Tue"),
        ("{{store_hours}}", '{"open": "9am", "days": ["Mon", "Tue"]}'),
        ("{{count}} items, {{ok}}", "3 items, true"),
        ("{{as_json.inner.x}}", "1"),
        ("{{dotted.key}}", "whole"),
        ("no placeholders", "no placeholders"),
        ("{{unknown}} stays", "{{unknown}} stays"),
        ("{{SECRET.api_key}} stays", "{{SECRET.api_key}} stays"),
        ("{{ secret.other }}", "{{ secret.other }}"),
        ("{{}} and {{ }}", "{{}} and {{ }}"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, VARS) == expected


def test_unknown_placeholders_can_render_empty_for_speech() -> None:
    assert render("Hi {{unknown}}, {{name}}", VARS, missing="empty") == "Hi , Ada"
    assert render("{{SECRET.k}}", VARS, missing="empty") == "{{SECRET.k}}"


def test_placeholders_lists_names_without_secrets() -> None:
    assert placeholders("{{a}} {{ b.c }} {{SECRET.x}}") == ["a", "b.c"]


def test_render_value_keeps_types_for_whole_placeholders() -> None:
    assert render_value({"n": "{{count}}", "s": "n={{count}}", "l": ["{{ok}}"]}, VARS) == {
        "n": 3,
        "s": "n=3",
        "l": [True],
    }


def test_json_bodies_stay_valid_whatever_the_values() -> None:
    values = {"msg": 'she said "hi"\nthen left', "n": 5}
    body = render_body('{"m": "{{msg}}", "n": "{{n}}", "s": "{{SECRET.k}}"}', values)
    assert body is not None
    assert json.loads(body) == {"m": 'she said "hi"\nthen left', "n": "5", "s": "{{SECRET.k}}"}
    assert render_body("plain {{n}}", values) == "plain 5"
    # Unquoted placeholders (not JSON until rendered) give typed JSON by text.
    assert json.loads(render_body('{"n": {{n}}}', values) or "") == {"n": 5}
    assert render_body({"a": "{{n}}"}, values) == '{"a": "5"}'
    assert render_body(None, values) is None
    assert render_body("", values) is None


def test_builtin_variables_from_context_and_now() -> None:
    context = CallContext(
        call_id="c-9",
        from_number="+14155550100",
        to_number="+442071838750",
        phone_number="+14155550100",
        timezone="America/Los_Angeles",
        voice_id="v1",
        city="Oakland",
    )
    now = datetime(2025, 1, 10, 18, 30, tzinfo=UTC)
    built = builtin_variables(context, now)
    assert built["call_id"] == "c-9"
    assert built["from"] == "+14155550100" and built["short_from"] == "4155550100"
    assert built["short_to"] == "2071838750"
    assert built["now"] == "Friday, January 10, 2025 10:30 AM PST"
    assert built["now_utc"] == "2025-01-10T18:30:00Z"
    assert built["timestamp"].startswith("2025-01-10T10:30:00-08:00")
    assert built["city"] == "Oakland" and built["voice_id"] == "v1"
    assert render("It is {{now}}", built) == "It is Friday, January 10, 2025 10:30 AM PST"


def test_no_now_means_no_time_variables() -> None:
    built = builtin_variables(CallContext(), None)
    assert "now" not in built and "now_utc" not in built


def test_bad_timezone_falls_back_to_utc() -> None:
    built = builtin_variables(
        CallContext(timezone="Mars/Olympus"), datetime(2025, 1, 1, tzinfo=UTC)
    )
    assert built["now"].endswith("UTC")


def test_naive_now_is_read_as_utc() -> None:
    built = builtin_variables(CallContext(), datetime(2025, 1, 1, 12, 0))
    assert built["now_utc"] == "2025-01-01T12:00:00Z"


def test_short_number() -> None:
    assert short_number("+1 (415) 555-0100") == "4155550100"
    assert short_number("4155550100") == "4155550100"
