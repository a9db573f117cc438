"""Deterministic in-process fakes of the providers, for unit tests only.

The product path never uses these: integration tests drive the real
``OpenAICompatibleLLM`` against the scripted HTTP server in ``tests/support``. These
fakes serve pure unit tests (engine, conversation logic) that need an ``LLM`` or an
``Embedder`` without a process or model weights.

- ``ScriptedLLM``: ``stream``/``complete`` play ``replies`` in order (a string is
  streamed word by word, a ``ToolCall`` is yielded as is, a list mixes both, an
  exception is raised); ``choose``/``extract`` look the last user message up in
  ``choices``/``extractions`` (first key contained in it wins). Every call is recorded
  in ``calls``.
- ``HashingEmbedder``: bag-of-words vectors (hashed, L2-normalised): texts sharing
  words are similar, so choice logic can be tested without the MiniLM weights.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from callwright.providers.embed import Vectors
from callwright.providers.llm import (
    ChatMessage,
    Completion,
    Context,
    LLMChunk,
    LLMError,
    Option,
    TextDelta,
    ToolCall,
    ToolSpec,
    VarSpec,
    as_messages,
)

Reply = str | ToolCall | Sequence[str | ToolCall] | BaseException


@dataclass
class ScriptedLLM:
    replies: list[Reply] = field(default_factory=list)
    choices: Mapping[str, str | None] = field(default_factory=dict)
    extractions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    closed: bool = False

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[LLMChunk]:
        self.calls.append(("stream", list(messages)))
        for chunk in self._next_reply():
            yield chunk

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        self.calls.append(("complete", list(messages)))
        chunks = self._next_reply()
        text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
        tool_calls = tuple(c for c in chunks if isinstance(c, ToolCall))
        return Completion(text, tool_calls, "tool_calls" if tool_calls else "stop")

    async def choose(
        self, context: Context, options: Sequence[Option], *, instruction: str | None = None
    ) -> str | None:
        said = _last_user(context)
        self.calls.append(("choose", said))
        ids = {o.id for o in options}
        for key, chosen in self.choices.items():
            if key.lower() in said.lower():
                return chosen if chosen in ids else None
        return None

    async def extract(
        self, context: Context, specs: Sequence[VarSpec], *, instruction: str | None = None
    ) -> dict[str, Any]:
        said = _last_user(context)
        self.calls.append(("extract", said))
        wanted = {s.name for s in specs}
        for key, values in self.extractions.items():
            if key.lower() in said.lower():
                return {k: v for k, v in values.items() if k in wanted}
        return {}

    async def aclose(self) -> None:
        self.closed = True

    def _next_reply(self) -> list[LLMChunk]:
        if not self.replies:
            raise LLMError("ScriptedLLM has no reply left")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        parts: Sequence[str | ToolCall] = [reply] if isinstance(reply, str | ToolCall) else reply
        chunks: list[LLMChunk] = []
        for part in parts:
            if isinstance(part, ToolCall):
                chunks.append(part)
            else:
                chunks += [TextDelta(w) for w in re.findall(r"\S+\s*", part)]
        return chunks


def _last_user(context: Context) -> str:
    for message in reversed(as_messages(context)):
        if message.role == "user":
            return message.content
    return ""


class HashingEmbedder:
    """Words hashed into ``dim`` buckets; deterministic across runs and processes."""

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9']+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self._dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)
