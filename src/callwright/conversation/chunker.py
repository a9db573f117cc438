"""Cut streamed LLM text into pieces worth speaking, so the first audio leaves before
the reply is complete.

Rules:
1. A piece ends at a sentence end (``.``, ``!``, ``?``, ``;`` or a newline) followed by
   whitespace; "Dr." and "3.5" do not end sentences (followed by no space or a known
   abbreviation).
2. The first piece of a reply may end early at a comma once it is ``first_min_chars``
   long: a short first piece means early audio.
3. A piece longer than ``max_chars`` is cut at the last space before it.
4. ``flush`` returns what is left at the end of the reply.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    {"dr", "mr", "mrs", "ms", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "approx"}
)
_END = re.compile(r"[.!?;\n](?=\s)")


class SentenceChunker:
    def __init__(self, *, first_min_chars: int = 24, max_chars: int = 240) -> None:
        self.first_min_chars = first_min_chars
        self.max_chars = max_chars
        self._buffer = ""
        self._emitted = 0

    def push(self, text: str) -> list[str]:
        self._buffer += text
        pieces: list[str] = []
        while piece := self._next():
            pieces.append(piece)
        return pieces

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _next(self) -> str | None:
        buffer = self._buffer
        for match in _END.finditer(buffer):
            cut = match.end()
            words = buffer[:cut].rstrip(".").split()
            if buffer[match.start()] == "." and words and words[-1].lower() in ABBREVIATIONS:
                continue
            return self._take(cut)
        if self._emitted == 0:
            comma = buffer.find(", ", self.first_min_chars)
            if comma != -1:
                return self._take(comma + 1)
        if len(buffer) > self.max_chars:
            space = buffer.rfind(" ", 0, self.max_chars)
            return self._take(space if space > 0 else self.max_chars)
        return None

    def _take(self, cut: int) -> str | None:
        piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
        if not piece:
            return None
        self._emitted += 1
        return piece
