"""The embedded (no-LLM) brain: pick an edge by meaning, fill variables by rules.

``choose`` embeds what the caller said and compares it (cosine) with a few views of
each option: its label, its description, both together, each alternative of an "X or
Y" label, and first-person rewrites of third-person labels ("caller wants to cancel"
-> "I want to cancel", which is how callers speak: this lifts the right option's
score by 0.1-0.3). An option scores its best view; the best option wins if its score
reaches ``threshold``, otherwise the answer is ``None`` and the pathway stays on its
node (the engine re-asks). View texts are embedded once and cached.

A bare yes or no ("yeah sure", "nope") carries no meaning an embedding can match
against "caller wants delivery" / "caller declines delivery"; when the options split
into affirmative and negative ones (negation cues in the label: "not", "declines",
"doesn't", ...) and exactly one option is on the caller's side, that one is chosen
with score 1.0.

``extract`` runs the deterministic extractors (``extractors.extract_value``) for each
variable. Both methods block on CPU work (embedding): on the event loop call them
through ``asyncio.to_thread``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any

import numpy as np

from callwright.providers.embed import Embedder, Vectors
from callwright.providers.extractors import extract_value, parse_yes_no
from callwright.providers.llm import Option, VarSpec

DEFAULT_THRESHOLD = 0.33  # MiniLM cosine; the demo table: off-topic <= 0.20, "hello?" 0.32

_NEGATIVE_CUES = re.compile(
    r"\b(no|not|never|none|nothing|doesn'?t|don'?t|didn'?t|won'?t|isn'?t|can'?t|cannot|"
    r"declines?|declined|refuses?|refused|rejects?|denies|unwilling|without|negative|"
    r"incorrect|wrong|disagrees?)\b"
)
_POSITIVE_CUES = re.compile(
    r"\b(yes|yeah|yep|confirms?|confirmed|correct|agrees?|accepts?|sure|ok|okay|right)\b"
)
_BARE_ANSWER_WORDS = 5


class EmbeddedBrain:
    def __init__(
        self, embedder: Embedder, *, threshold: float = DEFAULT_THRESHOLD, cache_size: int = 4096
    ) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._flights: dict[str, Future[Vectors]] = {}  # texts being embedded now

    def choose(
        self, utterance: str, options: Sequence[Option], *, threshold: float | None = None
    ) -> tuple[str | None, float]:
        """The option that best matches ``utterance`` and its score in [-1, 1];
        ``(None, best score)`` when nothing reaches ``threshold`` (default: the brain's)."""
        if not options or not utterance.strip():
            return None, 0.0
        by_polarity = self._yes_no_choice(utterance, options)
        if by_polarity is not None:
            return by_polarity, 1.0
        spoken = self.embedder.embed([utterance])[0]
        scores = self.scores(spoken, options)
        best = int(np.argmax(scores))
        score = float(scores[best])
        floor = self.threshold if threshold is None else threshold
        return (options[best].id if score >= floor else None), score

    def scores(self, spoken: Vectors, options: Sequence[Option]) -> Vectors:
        """Each option's score for an embedded utterance: the best of its views."""
        views = [option_views(o) for o in options]
        flat = [text for group in views for text in group]
        sims = self.option_vectors(flat) @ spoken
        starts = np.cumsum([0] + [len(group) for group in views[:-1]])
        return np.asarray(np.maximum.reduceat(sims, starts), dtype=np.float32)

    def option_vectors(self, texts: Sequence[str]) -> Vectors:
        """Embeddings of option texts, from the cache where possible.

        Single flight: many calls reaching the same node at once would each embed the
        same uncached texts (a CPU and memory stampede). The first caller to miss a
        text embeds it; the others wait on its ``Future``. A failure reaches every
        waiter once and the text is forgotten, so the next caller tries again.
        """
        mine: list[str] = []
        pending: dict[str, Future[Vectors]] = {}
        with self._lock:
            for text in dict.fromkeys(texts):
                if text in self._cache:
                    continue
                flight = self._flights.get(text)
                if flight is None:
                    flight = self._flights[text] = Future()
                    mine.append(text)
                pending[text] = flight
        if mine:
            self._embed_into_flights(mine)
        fetched = {text: flight.result() for text, flight in pending.items()}
        found: list[Vectors | None] = []
        with self._lock:
            for text in texts:
                vector = self._cache.get(text)
                if vector is None:  # evicted by other callers since
                    vector = fetched.get(text)
                else:
                    self._cache.move_to_end(text)
                found.append(vector)
        # Evicted before this caller got to it (a cache far smaller than the traffic).
        rows = [
            v if v is not None else self.embedder.embed([t])[0]
            for t, v in zip(texts, found, strict=True)
        ]
        return np.stack(rows).astype(np.float32, copy=False)

    def _embed_into_flights(self, texts: list[str]) -> None:
        try:
            fresh = list(zip(texts, self.embedder.embed(texts), strict=True))
        except BaseException as error:
            with self._lock:
                flights = [self._flights.pop(text) for text in texts]
            for flight in flights:
                flight.set_exception(error)
            # Waiters re-raise it from their Future; this caller sees it there too.
            return
        with self._lock:
            done: list[tuple[Future[Vectors], Vectors]] = []
            for text, vector in fresh:
                self._cache[text] = vector
                done.append((self._flights.pop(text), vector))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        for flight, vector in done:
            flight.set_result(vector)

    def extract(
        self, utterance: str, specs: Sequence[VarSpec], now: datetime, tz: str | None = None
    ) -> dict[str, Any]:
        """The variables found in ``utterance``, typed; absent ones are left out."""
        found: dict[str, Any] = {}
        for spec in specs:
            hint = f"{spec.name} {spec.description}".strip()
            value = extract_value(spec.type, utterance, now=now, tz=tz, hint=hint)
            if value is not None:
                found[spec.name] = value
        return found

    def _yes_no_choice(self, utterance: str, options: Sequence[Option]) -> str | None:
        if len(utterance.split()) > _BARE_ANSWER_WORDS:
            return None
        answer = parse_yes_no(utterance)
        if answer is None:
            return None
        labels = [_label_text(o).lower() for o in options]
        negative = [bool(_NEGATIVE_CUES.search(t)) for t in labels]
        positive = [
            bool(_POSITIVE_CUES.search(t)) and not neg
            for t, neg in zip(labels, negative, strict=True)
        ]
        # Options that say which answer they are for decide first ("Yes, book it" /
        # "No thanks"); others ("Talk to a person") take no side.
        marked = positive if answer else negative
        if any(marked) and any(positive) and any(negative):
            side = [o for o, mark in zip(options, marked, strict=True) if mark]
            return side[0].id if len(side) == 1 else None
        if all(negative) or not any(negative):
            return None
        side = [o for o, neg in zip(options, negative, strict=True) if neg != answer]
        return side[0].id if len(side) == 1 else None


def _label_text(option: Option) -> str:
    return option.label.strip() or option.description.strip()


_SUBJECT = re.compile(
    r"^(?:the\s+)?(?:caller|patient|customer|user|client|person|member|prospect|lead|"
    r"driver|policyholder|they|he|she)\s+",
    re.IGNORECASE,
)
_FIRST_PERSON_VERBS = {
    "is": "am",
    "are": "am",
    "isn't": "am not",
    "aren't": "am not",
    "has": "have",
    "hasn't": "haven't",
    "does": "do",
    "doesn't": "don't",
    "was": "was",
    "were": "was",
}


def first_person(text: str) -> str:
    """ "caller wants to cancel" -> "I want to cancel"; other texts unchanged."""
    subject = _SUBJECT.match(text)
    if subject is None:
        return text
    words = text[subject.end() :].split()
    if not words:
        return text
    verb = words[0]
    if verb.lower() in _FIRST_PERSON_VERBS:
        words[0] = _FIRST_PERSON_VERBS[verb.lower()]
    elif verb.endswith("ies") and len(verb) > 4:
        words[0] = verb[:-3] + "y"
    elif verb.endswith("s") and not verb.endswith("ss"):
        words[0] = verb[:-1]
    return "I " + " ".join(words)


def option_views(option: Option) -> list[str]:
    """The texts an option is matched against (see the module docs), without repeats."""
    label, description = option.label.strip(), option.description.strip()
    views: list[str] = []
    for text in (label, description):
        if not text:
            continue
        views += [text, first_person(text)]
        for alternative in re.split(r"\s+or\s+", text)[1:] if " or " in text else []:
            if len(alternative.split()) > 1:
                views += [alternative, first_person(alternative)]
        head = re.split(r"\s+or\s+", text)[0]
        if head != text:
            views += [head, first_person(head)]
    if label and description:
        views.append(f"{label}. {description}")
    return list(dict.fromkeys(views)) or [option.id]
