"""A single-prompt agent: a call's ``task`` (and ``first_sentence``, variables and
``request_data``) on the configured LLM.

The LLM may call two tools: ``end_call`` (the conversation is over) and, when the call
has a ``transfer_phone_number``, ``transfer_call``. With no LLM configured the agent
says the first sentence, explains it cannot go on, and ends the call: a task prompt
needs a generative model, which no offline default provides.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from callwright.conversation.ports import EndCall, Note, ReplyItem, TransferTo
from callwright.providers.llm import LLM, ChatMessage, LLMError, TextDelta, ToolCall, ToolSpec

NO_LLM_LINE = (
    "I'm sorry, this line isn't able to hold a conversation right now. Please try again later."
)
END_CALL = ToolSpec(
    "end_call",
    "Hang up, after saying goodbye, when the conversation is over.",
    {"type": "object", "properties": {"reason": {"type": "string"}}},
)
TRANSFER = ToolSpec(
    "transfer_call",
    "Transfer the caller to a human, after telling them you will.",
    {"type": "object", "properties": {}},
)


class TaskAgent:
    def __init__(
        self,
        llm: LLM | None,
        task: str,
        *,
        first_sentence: str | None = None,
        variables: dict[str, Any] | None = None,
        transfer_number: str | None = None,
        temperature: float | None = None,
    ) -> None:
        self.llm = llm
        self.first_sentence = first_sentence
        self.transfer_number = transfer_number
        self.temperature = temperature
        facts = json.dumps(variables or {}, default=str, ensure_ascii=False)
        self.system = (
            "You are a phone agent. Speak in short, natural sentences; no lists or markdown.\n"
            f"Your task:\n{task}\n"
            f"Facts about this call (JSON): {facts}"
        )
        self.history: list[ChatMessage] = []

    def greet(self) -> AsyncIterator[ReplyItem]:
        return self._greet()

    async def _greet(self) -> AsyncIterator[ReplyItem]:
        if self.first_sentence:
            self.history.append(ChatMessage("assistant", self.first_sentence))
            yield self.first_sentence
            if self.llm is None:
                yield " " + NO_LLM_LINE
                yield Note("agent.no_llm", "A task prompt needs an LLM (CALLWRIGHT_LLM_*)")
                yield EndCall("no_llm")
            return
        async for item in self._respond():
            yield item

    def reply(self, caller_text: str) -> AsyncIterator[ReplyItem]:
        self.history.append(ChatMessage("user", caller_text))
        return self._respond()

    def keypress(self, digit: str) -> AsyncIterator[ReplyItem]:
        self.history.append(ChatMessage("user", f"(the caller pressed {digit})"))
        return self._respond()

    def reprompt(self) -> AsyncIterator[ReplyItem]:
        self.history.append(ChatMessage("user", "(the caller has been silent for a while)"))
        return self._respond()

    async def _respond(self) -> AsyncIterator[ReplyItem]:
        if self.llm is None:
            yield NO_LLM_LINE
            yield Note("agent.no_llm", "A task prompt needs an LLM (CALLWRIGHT_LLM_*)")
            yield EndCall("no_llm")
            return
        tools = [END_CALL, TRANSFER] if self.transfer_number else [END_CALL]
        said: list[str] = []
        actions: list[ReplyItem] = []
        try:
            async for chunk in self.llm.stream(
                [ChatMessage("system", self.system), *self.history],
                tools=tools,
                temperature=self.temperature,
            ):
                if isinstance(chunk, TextDelta) and chunk.text:
                    said.append(chunk.text)
                    yield chunk.text
                elif isinstance(chunk, ToolCall):
                    actions.append(self._tool(chunk))
        except LLMError as exc:
            yield Note("agent.llm_error", f"LLM failed: {exc}")
            if not said:
                yield "Sorry, I didn't catch that. Could you say it again?"
        if said:
            self.history.append(ChatMessage("assistant", "".join(said)))
        for action in actions:
            yield action

    def _tool(self, call: ToolCall) -> ReplyItem:
        if call.name == "transfer_call" and self.transfer_number:
            return TransferTo(self.transfer_number)
        reason = str(call.arguments.get("reason") or "agent") if call.arguments else "agent"
        return EndCall(reason)
