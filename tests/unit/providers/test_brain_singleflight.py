"""Single-flight option embeddings: concurrent callers missing the same texts embed them once."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType

import pytest

from callwright.providers.embed import Vectors
from callwright.providers.embedded_brain import EmbeddedBrain
from callwright.providers.scripted import HashingEmbedder

TEXTS = ["caller wants to cancel", "caller wants to book", "question about a bill"]
CALLERS = 8


class _Gate(HashingEmbedder):
    """Counts embedded texts; the first ``embed`` blocks until the test opens the gate."""

    def __init__(self, *, fail_first: bool = False) -> None:
        super().__init__()
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_first = fail_first

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
            if self.fail_first:
                raise RuntimeError("model fell over")
        return super().embed(texts)


class _CountingLock:
    """The brain's lock, counting how many times it was let go."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.exits = 0

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.exits += 1
        self._lock.release()


def _run_callers(brain: EmbeddedBrain, gate: _Gate) -> tuple[list[Vectors], list[BaseException]]:
    lock = _CountingLock()
    brain._lock = lock  # type: ignore[assignment]
    results: list[Vectors] = []
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            results.append(brain.option_vectors(TEXTS))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    threads[0].start()
    assert gate.entered.wait(10)
    for thread in threads[1:]:
        thread.start()
    # Every other caller has looked at the cache (one lock round each) while the first
    # is still embedding; without single flight each would have called embed itself.
    for _ in range(10_000):
        if lock.exits >= CALLERS or len(gate.calls) > 1:
            break
        threading.Event().wait(0.001)
    gate.release.set()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    return results, errors


def test_concurrent_callers_embed_each_text_once() -> None:
    gate = _Gate()
    brain = EmbeddedBrain(gate)
    results, errors = _run_callers(brain, gate)
    assert errors == []
    assert gate.calls == [TEXTS]
    assert len(results) == CALLERS
    expected = HashingEmbedder().embed(TEXTS)
    for vectors in results:
        assert vectors == pytest.approx(expected)
    assert brain._flights == {}


def test_failure_reaches_every_waiter_once_then_retries() -> None:
    gate = _Gate(fail_first=True)
    brain = EmbeddedBrain(gate)
    results, errors = _run_callers(brain, gate)
    assert results == []
    assert len(errors) == CALLERS
    assert all(isinstance(e, RuntimeError) for e in errors)
    assert gate.calls == [TEXTS]
    assert brain._flights == {} and len(brain._cache) == 0
    # The failed texts are not remembered: the next caller embeds them afresh.
    brain.option_vectors(TEXTS)
    assert gate.calls == [TEXTS, TEXTS]
    assert len(brain._cache) == len(TEXTS)


def test_cached_and_missing_texts_mix() -> None:
    gate = _Gate()
    gate.release.set()
    brain = EmbeddedBrain(gate)
    brain.option_vectors(TEXTS[:1])
    vectors = brain.option_vectors(TEXTS + TEXTS[:1])
    assert gate.calls == [TEXTS[:1], TEXTS[1:]]
    assert vectors.shape[0] == len(TEXTS) + 1
    assert vectors[0] == pytest.approx(vectors[-1])
