"""Building the agent a call or chat talks to, from the server's shared parts.

``AgentFactory`` holds what every agent shares (database, secrets, outbound policy,
the LLM if configured, the embedded brain) and builds a ``PathwayAgent`` for a pathway,
or a ``TaskAgent`` for a task prompt. The embedded brain (MiniLM) loads on first use,
once per process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from callwright import netguard
from callwright.clock import Clock
from callwright.conversation.effects import CallEffects
from callwright.conversation.pathway_agent import (
    EmbeddedDecider,
    FallbackGenerator,
    LLMDecider,
    LLMGenerator,
    PathwayAgent,
)
from callwright.conversation.task_agent import TaskAgent
from callwright.pathways.actions import CodeResult, RunCode
from callwright.pathways.engine import EngineState
from callwright.pathways.format import PathwayDocument, PathwayFormatError, parse_document
from callwright.pathways.sandbox import run_code
from callwright.pathways.templating import CallContext
from callwright.providers.embed import MiniLMEmbedder
from callwright.providers.embedded_brain import EmbeddedBrain
from callwright.providers.llm import LLM
from callwright.store import pathways, secrets
from callwright.store.crypto import SecretBox
from callwright.store.db import Database


def sandboxed(request: RunCode) -> CodeResult:
    result = run_code(request.code, request.input, now_ms=request.now_ms)
    return CodeResult(request.request_id, result.ok, result.variables, result.error)


class AgentFactory:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        box: SecretBox,
        policy: netguard.OutboundPolicy,
        llm: LLM | None,
        *,
        brain: Callable[[], EmbeddedBrain] | None = None,
        resolver: netguard.Resolver = netguard.system_resolver,
    ) -> None:
        self.db = db
        self.clock = clock
        self.box = box
        self.policy = policy
        self.llm = llm
        self.resolver = resolver
        self._brain_factory = brain or (lambda: EmbeddedBrain(MiniLMEmbedder()))
        self._brain: EmbeddedBrain | None = None
        self._brain_lock = asyncio.Lock()

    async def brain(self) -> EmbeddedBrain:
        async with self._brain_lock:
            if self._brain is None:
                self._brain = await asyncio.to_thread(self._brain_factory)
            return self._brain

    async def warm(self) -> None:
        """Load the embedded brain and embed one text, when pathways will use it (no LLM)."""
        if self.llm is not None:
            return
        brain = await self.brain()
        await asyncio.to_thread(brain.embedder.embed, ["Hello"])

    def effects(self, org_id: str) -> CallEffects:
        async def resolve(names: list[str]) -> dict[str, str]:
            async with self.db.session() as session:
                return await secrets.resolve_secrets(session, self.box, org_id, names)

        async def load(pathway_id: str, version: str | None) -> PathwayDocument | None:
            try:
                async with self.db.session() as session:
                    raw, _ = await pathways.document_for(session, org_id, pathway_id, version)
                return parse_document(raw)
            except (pathways.PathwayNotFound, PathwayFormatError):
                return None

        return CallEffects(
            self.policy,
            secrets=resolve,
            run_code=sandboxed,
            load_pathway=load,
            resolver=self.resolver,
        )

    async def pathway_agent(
        self,
        org_id: str,
        document: dict[str, Any],
        context: CallContext,
        *,
        variables: dict[str, Any] | None = None,
        start_node_id: str | None = None,
        state: EngineState | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> PathwayAgent:
        doc = parse_document(document)
        clock_now = now or self.clock.now
        history_holder: list[PathwayAgent] = []
        if self.llm is not None:
            decider: Any = LLMDecider(self.llm, lambda: history_holder[0].history)
            generator: Any = LLMGenerator(self.llm)
        else:
            decider = EmbeddedDecider(await self.brain(), clock_now, context.timezone or None)
            generator = FallbackGenerator()
        agent = PathwayAgent(
            doc,
            context,
            decider=decider,
            generator=generator,
            effects=self.effects(org_id),
            now=clock_now,
            variables=variables,
            start_node_id=start_node_id,
            state=state,
        )
        history_holder.append(agent)
        return agent

    def task_agent(
        self,
        task: str,
        *,
        first_sentence: str | None = None,
        variables: dict[str, Any] | None = None,
        transfer_number: str | None = None,
        temperature: float | None = None,
    ) -> TaskAgent:
        return TaskAgent(
            self.llm,
            task,
            first_sentence=first_sentence,
            variables=variables,
            transfer_number=transfer_number,
            temperature=temperature,
        )
