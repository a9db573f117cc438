from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callwright.providers.speech.text import split_for_speech, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Wait!  Really?!   Yes.", ["Wait!", "Really?!", "Yes."]),
        ("Call Dr. Smith at 3.5 p.m. today.", ["Call Dr. Smith at 3.5 p.m. today."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("J. R. R. Tolkien wrote it.", ["J. R. R. Tolkien wrote it."]),
        ("No punctuation at all", ["No punctuation at all"]),
        ("Ellipsis… and more", ["Ellipsis…", "and more"]),
        ("   ", []),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_a_short_reply_is_one_piece_per_sentence() -> None:
    text = "Thank you for calling, how can I help you today? I can book or cancel."
    assert split_for_speech(text) == [
        "Thank you for calling, how can I help you today?",
        "I can book or cancel.",
    ]


def test_a_long_first_sentence_is_cut_at_a_clause_so_first_audio_comes_early() -> None:
    text = (
        "I have checked the calendar for next week, and there are openings on Tuesday "
        "morning, Wednesday afternoon and Friday at noon."
    )
    pieces = split_for_speech(text, first_max_chars=60, max_chars=160)
    assert pieces[0] == "I have checked the calendar for next week,"
    assert " ".join(pieces) == text


def test_a_long_run_without_marks_is_cut_at_a_space() -> None:
    text = " ".join(["word"] * 60)
    pieces = split_for_speech(text, max_chars=50, first_max_chars=30)
    assert all(len(p) <= 50 for p in pieces) and len(pieces[0]) <= 30
    assert " ".join(pieces) == text


def test_tiny_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="20 characters"):
        split_for_speech("x", max_chars=10)


@given(
    st.lists(
        st.text(alphabet="abcdefgh ,.;!?-", min_size=0, max_size=40),
        max_size=8,
    ).map(" ".join)
)
def test_pieces_keep_every_word_in_order_within_limits(text: str) -> None:
    pieces = split_for_speech(text, max_chars=40, first_max_chars=25)
    assert " ".join(pieces).split() == text.split()
    for index, piece in enumerate(pieces):
        assert piece and piece == piece.strip()
        # A piece is over its limit only when a single word is longer than the limit.
        limit = 25 if index == 0 else 40
        assert len(piece) <= limit or " " not in piece
