"""What the HTTP layer needs from the rest of the system, built by ``callwright.server``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from callwright.api.auth import Authenticator
from callwright.api.metrics import Metrics
from callwright.clock import Clock
from callwright.config import Settings
from callwright.conversation.agents import AgentFactory
from callwright.conversation.runner import ConversationRunner
from callwright.dispatch.dispatcher import Dispatcher
from callwright.providers.llm import LLM
from callwright.store.call_cache import CallCache
from callwright.store.crypto import SecretBox
from callwright.store.db import Database
from callwright.store.recordings import RecordingStore


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    clock: Clock
    auth: Authenticator
    dispatcher: Dispatcher
    metrics: Metrics
    box: SecretBox  # seals secrets at rest
    recordings: RecordingStore
    llm: LLM | None = None  # None: no LLM configured (the embedded mode)
    call_cache: CallCache = field(default_factory=CallCache)
    agents: AgentFactory | None = None  # set by the composition root
    runner: ConversationRunner | None = None  # runs a connected call's conversation


async def services(request: Request) -> Services:
    """FastAPI dependency: the running services. async: a plain ``def`` dependency would
    run in a worker thread on every request."""
    svc: Services = request.app.state.services
    return svc


Svc = Annotated[Services, Depends(services)]
