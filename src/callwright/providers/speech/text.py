"""Cutting text into the pieces a TTS speaks one at a time.

Synthesis time grows with the length of the text, and a caller hears nothing until
the first piece is done, so a reply is spoken sentence by sentence. A sentence longer
than ``max_chars`` is cut further at a clause mark (``,;:`` or a dash), or failing
that at a space (never inside a word), since one long run-on sentence would otherwise
delay the first audio as much as a whole paragraph. The first piece has its own, smaller limit: it alone
decides how early the caller hears the agent.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` followed by a space (or the end),
except after a few common abbreviations ("Mr.", "e.g.") and inside numbers ("3.5").
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…])([\"')\]]*)\s+")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e"}
    | {"a.m", "p.m", "no", "approx", "dept", "inc", "ltd", "co"}
)
_CLAUSE_MARK = re.compile(r"[,;:]\s|\s[-–—]\s")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, whitespace-normalised, empty ones dropped."""
    text = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start : match.end(1)]
        last_word = candidate.rsplit(" ", 1)[-1].rstrip(".!?…\"')]").lower()
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue  # "Dr. Smith", "J. R. R. Tolkien": not an end
        sentences.append(candidate)
        start = match.end()
    sentences.append(text[start:])
    return [s.strip() for s in sentences if s.strip()]


def split_for_speech(text: str, *, max_chars: int = 160, first_max_chars: int = 80) -> list[str]:
    """The pieces to synthesize one by one, in order; joined with spaces they give ``text``."""
    if max_chars < 20 or first_max_chars < 20:
        raise ValueError("piece limits under 20 characters would cut words into noise")
    pieces: list[str] = []
    for sentence in split_sentences(text):
        rest = sentence
        while len(rest) > (limit := first_max_chars if not pieces else max_chars):
            cut = _cut_point(rest, limit)
            pieces.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        if rest:
            pieces.append(rest)
    return pieces


def _cut_point(text: str, limit: int) -> int:
    """Where to cut ``text`` so the head is at most ``limit`` characters (and not tiny)."""
    floor = limit // 3
    marks = [m.end() - 1 for m in _CLAUSE_MARK.finditer(text, 0, limit + 2)]
    marks = [m for m in marks if floor <= m <= limit]
    if marks:
        return marks[-1]
    space = text.rfind(" ", 1, limit + 1)
    if space > 0:
        return space
    # No space in reach: never cut inside a word; this piece runs to the next space.
    space = text.find(" ", limit)
    return space if space > 0 else len(text)
