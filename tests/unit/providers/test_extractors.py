"""The embedded mode's typed extractors, table-driven; ``now`` is always an argument."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callwright.providers.extractors import coerce_value, extract_value, parse_number, parse_time

# Monday 3 March 2025, 10:30 (naive: the call's local time).
NOW = datetime(2025, 3, 3, 10, 30)

CASES: list[tuple[str, str, Any]] = [
    # integers and numbers, digits and words
    ("integer", "twenty five", 25),
    ("integer", "Twenty-five please", 25),
    ("integer", "I need a dozen", 12),
    ("integer", "half a dozen", 6),
    ("integer", "a couple of them", 2),
    ("integer", "a hundred", 100),
    ("integer", "one hundred and five", 105),
    ("integer", "two thousand and twenty", 2020),
    ("integer", "1,250 dollars", 1250),
    ("integer", "we are a party of six", 6),
    ("integer", "about three or four", 3),
    ("integer", "it's 42", 42),
    ("integer", "nineteen", 19),
    ("integer", "ninety nine", 99),
    ("integer", "three thousand four hundred and twelve", 3412),
    ("integer", "none of them", None),
    ("integer", "I don't know", None),
    ("integer", "2.6", 3),
    ("integer", "a table for four tomorrow at 7", 4),
    ("integer", "tomorrow at half past ten", None),
    ("integer", "at 5:30 pm", None),
    ("number", "three point five", 3.5),
    ("number", "2.5 million", 2_500_000),
    ("number", "minus five", -5),
    ("number", "$40.25", 40.25),
    ("number", "15k", 15_000),
    ("number", "one and a half", 1.5),
    # yes / no
    ("boolean", "yes", True),
    ("boolean", "yeah sure", True),
    ("boolean", "Yep, that's me", True),
    ("boolean", "that's right", True),
    ("boolean", "uh huh", True),
    ("boolean", "of course", True),
    ("boolean", "sounds good", True),
    ("boolean", "no problem", True),
    ("boolean", "please do", True),
    ("boolean", "no", False),
    ("boolean", "nope", False),
    ("boolean", "nah I'm good", False),
    ("boolean", "absolutely not", False),
    ("boolean", "not really", False),
    ("boolean", "I don't think so", False),
    ("boolean", "that's not right", False),
    ("boolean", "no thanks", False),
    ("boolean", "I'm not sure", None),
    ("boolean", "maybe", None),
    ("boolean", "hmm", None),
    # dates (NOW is Monday 2025-03-03)
    ("date", "tomorrow", "2025-03-04"),
    ("date", "tomorrow morning", "2025-03-04"),
    ("date", "day after tomorrow", "2025-03-05"),
    ("date", "today", "2025-03-03"),
    ("date", "next Tuesday at 3pm", "2025-03-04"),
    ("date", "on Friday", "2025-03-07"),
    ("date", "this Monday", "2025-03-03"),
    ("date", "Monday", "2025-03-10"),
    ("date", "next week", "2025-03-10"),
    ("date", "in two weeks", "2025-03-17"),
    ("date", "in 3 days", "2025-03-06"),
    ("date", "a week from today", "2025-03-10"),
    ("date", "this weekend", "2025-03-08"),
    ("date", "March 5th", "2025-03-05"),
    ("date", "march fifth", "2025-03-05"),
    ("date", "the fifth of March", "2025-03-05"),
    ("date", "March the twenty first", "2025-03-21"),
    ("date", "on the 21st", "2025-03-21"),
    ("date", "the first", "2025-04-01"),
    ("date", "Feb 2nd", "2026-02-02"),
    ("date", "December 24, 2025", "2025-12-24"),
    ("date", "5/3", "2025-05-03"),
    ("date", "12/25/25", "2025-12-25"),
    ("date", "2025-12-24", "2025-12-24"),
    ("date", "May 5th", "2025-05-05"),
    ("date", "I may come by", None),
    ("date", "whenever", None),
    ("date", "February 30th", None),
    # times
    ("time", "3pm", "15:00"),
    ("time", "at 3 p.m.", "15:00"),
    ("time", "3:30 pm", "15:30"),
    ("time", "ten a.m.", "10:00"),
    ("time", "15:45", "15:45"),
    ("time", "at 10", "10:00"),
    ("time", "at 2", "14:00"),
    ("time", "half past three", "15:30"),
    ("time", "quarter to four", "15:45"),
    ("time", "quarter past nine in the morning", "09:15"),
    ("time", "three thirty in the afternoon", "15:30"),
    ("time", "five oh five pm", "17:05"),
    ("time", "seven o'clock tonight", "19:00"),
    ("time", "noon", "12:00"),
    ("time", "midnight", "00:00"),
    ("time", "12 am", "00:00"),
    ("time", "12pm", "12:00"),
    ("time", "tomorrow morning", "09:00"),
    ("time", "in the afternoon", "14:00"),
    ("time", "in two hours", "12:30"),
    ("time", "whenever", None),
    ("time", "25:00", None),
    # datetimes
    ("datetime", "next Tuesday at 3pm", "2025-03-04T15:00:00"),
    ("datetime", "tomorrow morning", "2025-03-04T09:00:00"),
    ("datetime", "March 5th at half past ten", "2025-03-05T10:30:00"),
    ("datetime", "at 9", "2025-03-04T09:00:00"),
    ("datetime", "at 4", "2025-03-03T16:00:00"),
    ("datetime", "in 2 hours", "2025-03-03T12:30:00"),
    ("datetime", "in half an hour", "2025-03-03T11:00:00"),
    ("datetime", "March 5th", None),
    # emails
    ("email", "john dot smith at gmail dot com", "john.smith@gmail.com"),
    ("email", "my email is Jane.Doe@Example.org thanks", "jane.doe@example.org"),
    ("email", "j o h n at yahoo dot co dot uk", "john@yahoo.co.uk"),
    ("email", "it's ana underscore lopez at outlook dot com", "ana_lopez@outlook.com"),
    ("email", "bob dash jones at acme dash corp dot io", "bob-jones@acme-corp.io"),
    ("email", "I don't have an email", None),
    # phones (E.164)
    ("phone", "four one five five five five zero one three two", "+14155550132"),
    ("phone", "call me at (212) 555-0100", "+12125550100"),
    ("phone", "it's 415-555-0132.", "+14155550132"),
    ("phone", "four one five, five five five, oh one three two", "+14155550132"),
    ("phone", "four one five double five five zero one three two", "+14155550132"),
    ("phone", "plus four four two zero seven nine four six zero nine five eight", "+442079460958"),
    ("phone", "555 1234", None),
    ("phone", "no phone", None),
    # names
    ("name", "my name is john smith", "John Smith"),
    ("name", "My name's Priya.", "Priya"),
    ("name", "This is Ana Lopez calling about my order", "Ana Lopez"),
    ("name", "I'm Dave", "Dave"),
    ("name", "um, it's Bob", "Bob"),
    ("name", "you can call me Jo", "Jo"),
    ("name", "Priya Raman", "Priya Raman"),
    ("name", "yes, Maria", "Maria"),
    ("name", "I'm calling about my order", None),
    ("name", "I'm fine thanks", None),
    ("name", "I would like to book an appointment please", None),
    # free strings
    ("string", "I'd like the blue one.", "I'd like the blue one"),
    ("string", "   ", None),
]


@pytest.mark.parametrize(("kind", "utterance", "expected"), CASES)
def test_extract_value(kind: str, utterance: str, expected: Any) -> None:
    assert extract_value(kind, utterance, now=NOW) == expected


@pytest.mark.parametrize(
    ("kind", "utterance", "hint", "expected"),
    [
        ("string", "reach me at john at gmail dot com", "email", "john@gmail.com"),
        ("string", "my cell is 415 555 0132", "callback_phone", "+14155550132"),
        ("string", "this is Ana", "caller_name The caller's name", "Ana"),
        ("string", "07946 095 858 is my mobile", "phone GB", "+447946095858"),
        ("string", "blue", "favourite colour", "blue"),
    ],
)
def test_hint_picks_a_stricter_reader(kind: str, utterance: str, hint: str, expected: str) -> None:
    assert extract_value(kind, utterance, now=NOW, hint=hint) == expected


def test_time_zone_sets_offset_and_day_order() -> None:
    aware = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)  # 10:30 in New York
    assert (
        extract_value("datetime", "tomorrow at 3pm", now=aware, tz="America/New_York")
        == "2025-03-04T15:00:00-05:00"
    )
    assert extract_value("date", "5/3", now=NOW, tz="Europe/London") == "2025-03-05"
    assert extract_value("date", "5/3", now=NOW, tz="America/Chicago") == "2025-05-03"
    # Late evening UTC is already tomorrow in Tokyo.
    late = datetime(2025, 3, 3, 20, 0, tzinfo=UTC)
    assert extract_value("date", "today", now=late, tz="Asia/Tokyo") == "2025-03-04"
    assert extract_value("date", "today", now=late, tz="Not/AZone") == "2025-03-03"


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("integer", 4, 4),
        ("integer", 4.0, 4),
        ("integer", "four", 4),
        ("integer", True, None),
        ("number", "3.25", 3.25),
        ("number", 7, 7),
        ("boolean", "yes", True),
        ("boolean", "false", False),
        ("boolean", 0, False),
        ("boolean", "unclear", None),
        ("date", "2025-03-05", "2025-03-05"),
        ("date", "2025-03-05T10:00:00", "2025-03-05"),
        ("date", "next week", None),
        ("time", "9:05", "09:05"),
        ("time", "3pm", "15:00"),
        ("datetime", "2025-03-05T10:00:00+01:00", "2025-03-05T10:00:00+01:00"),
        ("email", "Ana@Example.com", "ana@example.com"),
        ("phone", "(212) 555-0100", "+12125550100"),
        ("string", "  hi ", "hi"),
        ("string", "null", None),
        ("string", None, None),
        ("whatever", 12, "12"),
    ],
)
def test_coerce_value(kind: str, raw: Any, expected: Any) -> None:
    assert coerce_value(kind, raw) == expected


@given(st.integers(min_value=0, max_value=10**9))
def test_digits_read_back(n: int) -> None:
    assert parse_number(f"it is {n:,} exactly") == n


@given(
    st.text(max_size=80),
    st.sampled_from(
        [
            "integer",
            "number",
            "boolean",
            "date",
            "time",
            "datetime",
            "email",
            "phone",
            "name",
            "string",
        ]
    ),
)
def test_never_raises(utterance: str, kind: str) -> None:
    extract_value(kind, utterance, now=NOW, tz="Europe/Paris")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("230 in the afternoon", "14:30"),  # how speech-to-text writes "two thirty"
        ("1030 am", "10:30"),
        ("730pm", "19:30"),
        ("10 in the morning", "10:00"),
    ],
)
def test_times_as_speech_to_text_writes_them(text: str, expected: str) -> None:
    found = parse_time(text)
    assert found is not None and found.strftime("%H:%M") == expected
