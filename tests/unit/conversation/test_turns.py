"""Turn-taking in virtual time: every assertion counts 20 ms frames."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.conversation.turns import (
    DEFAULT_BACKCHANNELS,
    CallerSpeechStarted,
    CallerTurn,
    CheckBackchannel,
    HangUp,
    Interrupt,
    Reprompt,
    TurnAction,
    TurnConfig,
    TurnTaker,
    is_backchannel,
)

SPEECH, QUIET = 0.9, 0.05


def feed(taker: TurnTaker, probability: float, frames: int) -> list[tuple[int, TurnAction]]:
    out = []
    for _ in range(frames):
        out.extend((taker.frame_index, a) for a in taker.frame(probability))
    return out


def kinds(actions: list[tuple[int, TurnAction]]) -> list[str]:
    return [type(a).__name__ for _, a in actions]


def test_a_caller_turn_ends_after_the_configured_silence() -> None:
    taker = TurnTaker(TurnConfig(end_silence_ms=500, silence_timeout_ms=None))
    events = feed(taker, QUIET, 10) + feed(taker, SPEECH, 50) + feed(taker, QUIET, 40)
    started = [(i, a) for i, a in events if isinstance(a, CallerSpeechStarted)]
    turns = [(i, a) for i, a in events if isinstance(a, CallerTurn)]
    assert started == [(14, CallerSpeechStarted(10))]  # 100 ms of speech confirms it
    # 25 silent frames (500 ms) after the last speech frame 59: decided at frame 84.
    assert turns == [(84, CallerTurn(10, 60))]


def test_a_cough_is_not_a_turn() -> None:
    taker = TurnTaker(TurnConfig(silence_timeout_ms=None))
    assert feed(taker, SPEECH, 3) + feed(taker, QUIET, 100) == []


def barge_in(text: str, config: TurnConfig | None = None) -> tuple[TurnTaker, list[int]]:
    """The agent talks; the caller speaks over it from frame 20 on; the loop answers the
    backchannel check with ``text``. Returns the frames at which Interrupt came."""
    taker = TurnTaker(config or TurnConfig(silence_timeout_ms=None))
    feed(taker, QUIET, 20)
    taker.agent_started()
    interrupts = []
    for _ in range(30):  # 600 ms of caller speech
        for action in taker.frame(SPEECH):
            if isinstance(action, CheckBackchannel):
                assert action.start_frame == 20
                for reply in taker.backchannel_checked(action.token, text):
                    assert isinstance(reply, Interrupt)
                    interrupts.append(reply.frame)
            if isinstance(action, Interrupt):
                interrupts.append(action.frame)
    return taker, interrupts


def test_barge_in_stops_the_agent_within_ten_frames_of_onset() -> None:
    taker, interrupts = barge_in("wait, that's the wrong day")
    assert len(interrupts) == 1
    assert interrupts[0] - 20 < 10
    assert taker.agent_busy is False
    # The interrupting speech is answered once it ends, from its onset.
    turns = [a for _, a in feed(taker, QUIET, 40) if isinstance(a, CallerTurn)]
    assert turns == [CallerTurn(20, 50)]


@pytest.mark.parametrize("word", DEFAULT_BACKCHANNELS)
def test_backchannels_do_not_interrupt_and_are_not_answered(word: str) -> None:
    taker, interrupts = barge_in(word, TurnConfig(silence_timeout_ms=None))
    assert interrupts == []
    assert taker.agent_busy is True
    assert [a for _, a in feed(taker, QUIET, 40) if isinstance(a, CallerTurn)] == []


def test_configured_backchannels_replace_the_defaults() -> None:
    config = TurnConfig(silence_timeout_ms=None, backchannels=("d'accord",))
    assert barge_in("d'accord", config)[1] == []
    assert len(barge_in("okay", config)[1]) == 1


def test_block_interruptions_never_stops_the_agent_nor_answers_overlap() -> None:
    config = TurnConfig.for_call(block_interruptions=True, silence_timeout_ms=None)
    taker, interrupts = barge_in("stop right now please", config)
    assert interrupts == []
    more = feed(taker, SPEECH, 200) + feed(taker, QUIET, 40)
    assert not any(isinstance(a, Interrupt | CheckBackchannel | CallerTurn) for _, a in more)
    assert taker.agent_busy is True
    assert TurnConfig.for_call(interruptibility=0).barge_in_ms is None


def test_speech_too_long_for_a_backchannel_interrupts_without_a_transcript() -> None:
    taker = TurnTaker(TurnConfig(silence_timeout_ms=None, backchannel_max_ms=1000))
    feed(taker, QUIET, 5)
    taker.agent_started()
    events = feed(taker, SPEECH, 60)
    check = next(a for _, a in events if isinstance(a, CheckBackchannel))
    assert taker.backchannel_checked(check.token, "  ") == []  # noise: no verdict yet
    events += feed(taker, SPEECH, 10)
    assert [i for i, a in events if isinstance(a, Interrupt)] == [5 + 50 - 1]


def test_a_backchannel_that_turns_into_a_sentence_interrupts() -> None:
    taker = TurnTaker(TurnConfig(silence_timeout_ms=None))
    taker.agent_started()
    events = feed(taker, SPEECH, 10)
    check = next(a for _, a in events if isinstance(a, CheckBackchannel))
    assert taker.backchannel_checked(check.token, "okay") == []
    later = feed(taker, SPEECH, 60)
    assert [i for i, a in later if isinstance(a, Interrupt)] == [49]


def test_stale_backchannel_answers_are_ignored() -> None:
    taker = TurnTaker(TurnConfig(silence_timeout_ms=None))
    taker.agent_started()
    check = next(a for _, a in feed(taker, SPEECH, 10) if isinstance(a, CheckBackchannel))
    feed(taker, QUIET, 30)  # that speech ended before the transcript came back
    assert taker.backchannel_checked(check.token, "no no no stop") == []
    assert taker.agent_busy is True


def test_silence_reprompts_once_then_hangs_up() -> None:
    taker = TurnTaker(TurnConfig(silence_timeout_ms=2000))
    taker.agent_started()
    assert feed(taker, QUIET, 300) == []  # the agent talking is not silence
    taker.agent_finished()
    events = feed(taker, QUIET, 250)
    assert events == [(399, Reprompt(399)), (499, HangUp(499, "silence"))]
    assert taker.frame(SPEECH) == []  # ended


def test_caller_speech_resets_the_silence_count() -> None:
    taker = TurnTaker(TurnConfig(silence_timeout_ms=2000))
    events = feed(taker, QUIET, 99) + feed(taker, SPEECH, 20) + feed(taker, QUIET, 99)
    assert not any(isinstance(a, Reprompt | HangUp) for _, a in events)
    taker.caller_spoke()


def test_max_duration_ends_the_call_on_its_frame() -> None:
    taker = TurnTaker(TurnConfig.for_call(max_duration_minutes=1, silence_timeout_ms=None))
    taker.agent_started()
    events = feed(taker, SPEECH, 3100)
    assert events[-1] == (3000, HangUp(3000, "max_duration"))
    assert kinds(events).count("HangUp") == 1


def test_hang_up_mid_sentence_still_yields_the_turn() -> None:
    taker = TurnTaker(TurnConfig(silence_timeout_ms=None))
    feed(taker, SPEECH, 30)
    assert taker.finish() == [CallerTurn(0, 30)]
    assert taker.frame(SPEECH) == []


def test_for_call_maps_reference_parameters() -> None:
    config = TurnConfig.for_call(interruption_threshold=800, interruptibility=3)
    assert (config.end_silence_ms, config.barge_in_ms) == (800, 80)
    assert TurnConfig.for_call(interruption_threshold=5).end_silence_ms == 100
    assert TurnConfig.for_call(interruptibility=1).barge_in_ms == 480
    assert TurnConfig.for_call().max_duration_ms is None
    assert TurnConfig.for_call(max_duration_minutes=2).max_duration_ms == 120_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Uh-huh.", True),
        ("yeah, right", True),
        ("Okay okay", True),
        ("mm-hmm", True),
        ("", False),
        ("yes I want to cancel", False),
        ("no", False),
        ("okay okay okay okay okay", False),
    ],
)
def test_is_backchannel(text: str, expected: bool) -> None:
    assert is_backchannel(text, DEFAULT_BACKCHANNELS) is expected


steps = st.one_of(
    st.tuples(st.just("frame"), st.floats(0, 1)),
    st.tuples(st.just("agent"), st.booleans()),
    st.tuples(st.just("check"), st.sampled_from(["", "okay", "stop that", "uh-huh yes"])),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(steps, max_size=400),
    st.sampled_from([0, 1, 2, 3]),
    st.integers(min_value=1, max_value=3),
)
def test_any_sequence_keeps_the_rules(
    script: list[tuple[str, object]], level: int, minutes: int
) -> None:
    taker = TurnTaker(
        TurnConfig.for_call(
            interruptibility=level, max_duration_minutes=minutes / 60, silence_timeout_ms=1000
        )
    )
    pending: list[int] = []
    hang_ups = 0
    for kind, value in script:
        actions: list[TurnAction] = []
        if kind == "frame":
            assert isinstance(value, float)
            busy = taker.agent_busy
            actions = taker.frame(value)
            if any(isinstance(a, Interrupt) for a in actions):
                assert busy and level != 0
        elif kind == "agent":
            taker.agent_started() if value else taker.agent_finished()
        elif pending:
            assert isinstance(value, str)
            actions = taker.backchannel_checked(pending.pop(0), value)
        for action in actions:
            if isinstance(action, CheckBackchannel):
                assert level != 0
                pending.append(action.token)
            if isinstance(action, HangUp):
                hang_ups += 1
        if taker.ended:
            assert taker.frame(0.9) == []
    assert hang_ups <= 1
