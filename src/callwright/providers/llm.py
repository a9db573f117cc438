"""The ``LLM`` Protocol and the types every back-end shares.

A back-end offers four things:

- ``stream``: chat completion as an async stream of ``TextDelta`` and ``ToolCall`` chunks
  (what the live conversation speaks from, token by token);
- ``complete``: the same, gathered into one ``Completion``;
- ``choose``: pick one of several ``Option``s (a pathway's outgoing edges) for the
  conversation so far, or ``None`` when none fits;
- ``extract``: fill typed variables (``VarSpec``) from the conversation; the result
  holds only the variables that were found, each coerced to its type
  (``extractors.coerce_value``).

Call analysis (``POST /v1/calls/{id}/analyze``: a goal and ``[question, type]`` pairs)
is ``extract`` with one ``VarSpec`` per question; ``answer_questions`` below does that
mapping, so no back-end implements it separately.

Every failure a back-end cannot recover from (after its own retries) is an
``LLMError``; the conversation turns it into an error event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


LLMChunk = TextDelta | ToolCall


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Option:
    """One choice offered to ``choose``: for a pathway, an outgoing edge."""

    id: str
    label: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class VarSpec:
    """A variable to extract. ``type``: string, integer, number, boolean, date, time,
    datetime, email, phone (anything else is treated as string)."""

    name: str
    type: str = "string"
    description: str = ""
    required: bool = False


Context = str | Sequence[ChatMessage]


class LLMError(Exception):
    """The model could not answer. ``retryable`` says whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class LLM(Protocol):
    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[LLMChunk]: ...

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Completion: ...

    async def choose(
        self, context: Context, options: Sequence[Option], *, instruction: str | None = None
    ) -> str | None: ...

    async def extract(
        self, context: Context, specs: Sequence[VarSpec], *, instruction: str | None = None
    ) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


def as_messages(context: Context) -> list[ChatMessage]:
    """A bare string is one user message (e.g. a transcript to analyse)."""
    if isinstance(context, str):
        return [ChatMessage("user", context)]
    return list(context)


async def answer_questions(
    llm: LLM, transcript: str, goal: str, questions: Sequence[tuple[str, str]]
) -> list[Any]:
    """The analyze endpoint: one typed answer per ``(question, type)``, ``None`` if unknown."""
    specs = [
        VarSpec(name=f"answer_{i + 1}", type=kind, description=question)
        for i, (question, kind) in enumerate(questions)
    ]
    instruction = (
        f"Analyse this phone call transcript. Goal of the analysis: {goal}\n"
        "Answer each question from the transcript only; leave an answer null when "
        "the transcript does not say."
    )
    found = await llm.extract(transcript, specs, instruction=instruction)
    return [found.get(spec.name) for spec in specs]
