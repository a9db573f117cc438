"""The embedded brain: edge choice by MiniLM similarity, extraction by rules."""

from __future__ import annotations

from datetime import datetime

import pytest

from callwright.providers.embed import MiniLMEmbedder
from callwright.providers.embedded_brain import EmbeddedBrain, first_person, option_views
from callwright.providers.llm import Option, VarSpec
from callwright.providers.scripted import HashingEmbedder

CLINIC = [
    Option(
        "book", "caller wants to book a new appointment", "see the doctor or come in for a visit"
    ),
    Option("reschedule", "caller wants to reschedule or move an existing appointment"),
    Option("cancel", "caller wants to cancel an appointment"),
    Option("billing", "question about a bill, payment or insurance"),
    Option("human", "caller asks to speak to a person or receptionist"),
]


@pytest.fixture(scope="module")
def brain(minilm: MiniLMEmbedder) -> EmbeddedBrain:
    return EmbeddedBrain(minilm)


@pytest.mark.parametrize(
    ("utterance", "expected"),
    [
        ("I'd like to make an appointment", "book"),
        ("I need to see the doctor, can you fit me in", "book"),
        ("I need to change my appointment time", "reschedule"),
        ("I can't make it on Tuesday, can we do another day", "reschedule"),
        ("please cancel my visit", "cancel"),
        ("I want to call off my appointment", "cancel"),
        ("does my insurance cover this", "billing"),
        ("I have a question about my bill", "billing"),
        ("can I talk to a real person", "human"),
        ("let me speak to someone at the front desk", "human"),
        ("what's the weather like", None),
        ("banana", None),
        ("hello?", None),
    ],
)
def test_chooses_by_meaning(brain: EmbeddedBrain, utterance: str, expected: str | None) -> None:
    chosen, score = brain.choose(utterance, CLINIC)
    assert chosen == expected, score
    assert (score >= brain.threshold) == (expected is not None)


DELIVERY = [
    Option("deliver", "patient wants delivery"),
    Option("pickup", "patient will pick up or declines delivery"),
]


@pytest.mark.parametrize(
    ("utterance", "expected", "score"),
    [
        ("yes please", "deliver", 1.0),
        ("yeah", "deliver", 1.0),
        ("nope", "pickup", 1.0),
        ("no thanks", "pickup", 1.0),
        ("no thanks, I'll pick it up myself", "pickup", None),
        ("I'll pick it up at the store", "pickup", None),
    ],
)
def test_bare_yes_or_no_follows_the_options_polarity(
    brain: EmbeddedBrain, utterance: str, expected: str, score: float | None
) -> None:
    chosen, got = brain.choose(utterance, DELIVERY)
    assert chosen == expected
    if score is not None:
        assert got == score


def test_yes_without_polarity_in_the_options_falls_back_to_similarity(
    brain: EmbeddedBrain,
) -> None:
    chosen, score = brain.choose("yes", CLINIC)
    assert chosen is None and score < brain.threshold


def test_threshold_is_adjustable(minilm: MiniLMEmbedder) -> None:
    strict = EmbeddedBrain(minilm, threshold=0.95)
    lenient = EmbeddedBrain(minilm, threshold=-1.0)
    assert strict.choose("I'd like to make an appointment", CLINIC)[0] is None
    assert lenient.choose("banana", CLINIC)[0] is not None


def test_nothing_to_choose_from() -> None:
    brain = EmbeddedBrain(HashingEmbedder())
    assert brain.choose("anything", []) == (None, 0.0)
    assert brain.choose("   ", CLINIC) == (None, 0.0)


def test_option_texts_are_embedded_once() -> None:
    class Counting(HashingEmbedder):
        texts = 0

        def embed(self, texts):  # type: ignore[no-untyped-def]
            Counting.texts += len(texts)
            return super().embed(texts)

    brain = EmbeddedBrain(Counting())
    brain.choose("I want to cancel", CLINIC)
    first = Counting.texts
    brain.choose("book me in", CLINIC)
    assert Counting.texts == first + 1  # only the new utterance


def test_cache_is_bounded() -> None:
    brain = EmbeddedBrain(HashingEmbedder(), cache_size=4)
    brain.choose("cancel", CLINIC)
    assert len(brain._cache) == 4


def test_views_include_first_person_and_alternatives() -> None:
    assert first_person("caller wants to cancel") == "I want to cancel"
    assert first_person("The patient is running late") == "I am running late"
    assert first_person("customer denies the charge") == "I deny the charge"
    assert first_person("Cancel the order") == "Cancel the order"
    views = option_views(Option("x", "caller wants to reschedule or move it", "Any date change"))
    assert "I want to reschedule" in views and "move it" in views
    assert "caller wants to reschedule or move it. Any date change" in views
    assert option_views(Option("only-id", "")) == ["only-id"]


def test_extract_fills_typed_variables(brain: EmbeddedBrain) -> None:
    specs = [
        VarSpec("name", "string", "the caller's full name"),
        VarSpec("day", "date", "appointment day"),
        VarSpec("time", "time"),
        VarSpec("party", "integer", "number of people"),
        VarSpec("new_patient", "boolean"),
    ]
    # "half past ten" is a time, not a party of ten; nothing says yes or no.
    found = brain.extract(
        "my name is Ana Lopez, tomorrow at half past ten",
        specs,
        now=datetime(2025, 3, 3, 9, 0),
        tz="America/New_York",
    )
    assert found == {"name": "Ana Lopez", "day": "2025-03-04", "time": "10:30"}
