"""Embedded-mode edge choice per caller turn: MiniLM embedding of the utterance plus
cosine against the (cached) views of a node's outgoing edges.

Figures:
- choice per turn, p50 / p95 / max over N turns (edge views cached, as in a call),
  with BLAS on one thread (the default) and, for comparison, BLAS's own threading;
- the embedding alone, per sentence, single and in batches of 16;
- the one-time cost of a node's edges (their views embedded on first use) and of
  loading the model.

    flock /tmp/cw-bench.lock .venv/bin/python bench/embed_choice.py
"""

from __future__ import annotations

import argparse
import statistics
import time

from callwright.providers.embed import MiniLMEmbedder
from callwright.providers.embedded_brain import EmbeddedBrain
from callwright.providers.llm import Option

EDGES = [
    Option("book", "caller wants to book a new appointment", "see the doctor, a visit"),
    Option("reschedule", "caller wants to reschedule or move an existing appointment"),
    Option("cancel", "caller wants to cancel an appointment"),
    Option("billing", "question about a bill, payment or insurance"),
    Option("refill", "caller needs a prescription refill"),
    Option("results", "caller asks about test or lab results"),
    Option("human", "caller asks to speak to a person or receptionist"),
    Option("hours", "question about opening hours or the address"),
]

UTTERANCES = [
    "I'd like to make an appointment for next week",
    "Can I move my Thursday appointment to Friday afternoon?",
    "I need to cancel, something came up",
    "I got a bill I don't understand",
    "I'm running out of my blood pressure pills",
    "Are my blood test results back yet?",
    "Can I just talk to a real person please",
    "What time do you close on Saturdays?",
    "uh I'm not sure, I was told to call you",
    "My daughter needs to see the doctor, she has a fever and a cough since Monday",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed_ms(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return (time.perf_counter() - start) * 1000


def run_choices(brain: EmbeddedBrain, turns: int) -> list[float]:
    return [timed_ms(brain.choose, UTTERANCES[i % len(UTTERANCES)], EDGES) for i in range(turns)]


def summary(label: str, values: list[float]) -> None:
    print(
        f"{label:42} p50 {statistics.median(values):7.2f} ms   "
        f"p95 {percentile(values, 0.95):7.2f} ms   max {max(values):7.2f} ms   (n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=300)
    args = parser.parse_args()

    start = time.perf_counter()
    embedder = MiniLMEmbedder()
    load_ms = (time.perf_counter() - start) * 1000
    brain = EmbeddedBrain(embedder)

    first_node_ms = timed_ms(brain.choose, UTTERANCES[0], EDGES)
    views = len(brain._cache)
    run_choices(brain, 20)  # warm-up

    print(
        f"model load: {load_ms:.0f} ms; first turn on a node ({len(EDGES)} edges, "
        f"{views} view texts embedded): {first_node_ms:.1f} ms"
    )
    summary("edge choice per turn (BLAS 1 thread)", run_choices(brain, args.turns))
    threaded = EmbeddedBrain(MiniLMEmbedder(blas_threads=None))
    threaded.option_vectors([t for t in brain._cache])
    run_choices(threaded, 20)
    summary("edge choice per turn (BLAS default threads)", run_choices(threaded, args.turns))

    singles = [timed_ms(embedder.embed, [UTTERANCES[i % len(UTTERANCES)]]) for i in range(200)]
    summary("embed 1 sentence", singles)
    batch = [UTTERANCES[i % len(UTTERANCES)] for i in range(16)]
    batches = [timed_ms(embedder.embed, batch) / len(batch) for _ in range(30)]
    summary("embed per sentence, batches of 16", batches)


if __name__ == "__main__":
    main()
