"""Pathway chat (reference §3.5): talk to a pathway in text before any phone rings.

A chat keeps the engine state after each turn, so it can be continued from any process.
The first message of a chat runs the start node first (its greeting is the first
``assistant_responses`` entry). As an extension, ``task`` instead of ``pathway_id``
chats with a task-prompt agent (``callwright chat --task``); it needs an LLM.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import update

from callwright.api.auth import Org
from callwright.api.errors import ApiError, not_found
from callwright.api.schemas import ErrorB
from callwright.api.services import Svc
from callwright.conversation.pathway_agent import PathwayAgent
from callwright.conversation.ports import EndCall, Note, PressDigits, ReplyItem, TransferTo
from callwright.conversation.task_agent import TaskAgent
from callwright.pathways.engine import EngineState
from callwright.pathways.format import PathwayFormatError
from callwright.pathways.templating import CallContext
from callwright.providers.llm import ChatMessage
from callwright.store import pathways
from callwright.store.pathway_models import PathwayChat

router = APIRouter(prefix="/v1", tags=["pathways"])


class CreateChat(BaseModel):
    model_config = ConfigDict(extra="allow")

    pathway_id: str | None = Field(default=None, max_length=64)
    task: str | None = Field(default=None, max_length=20_000, description="Extension.")
    start_node_id: str | None = Field(default=None, max_length=200)
    request_data: dict[str, Any] | None = None
    pathway_version: int | None = Field(default=None, ge=0, le=1_000_000)
    use_candidate_model: bool = False

    @model_validator(mode="after")
    def _one_agent(self) -> CreateChat:
        if not self.pathway_id and not self.task:
            raise ValueError("pathway_id is required (or task, for a task-prompt chat)")
        return self


class ChatMessageBody(BaseModel):
    message: str | None = Field(default=None, max_length=20_000)


def data(value: Any) -> JSONResponse:
    return JSONResponse({"data": value, "errors": None})


@router.post(
    "/pathway/chat/create",
    responses={404: {"model": ErrorB, "description": "No such pathway in the key's org."}},
    summary="Start a text chat with a pathway",
)
async def create_chat(body: CreateChat, org: Org, svc: Svc) -> JSONResponse:
    version: int | None = None
    if body.pathway_id:
        async with svc.db.session() as session:
            try:
                _, version = await pathways.document_for(
                    session, org, body.pathway_id, body.pathway_version
                )
            except pathways.PathwayNotFound as exc:
                raise not_found(exc.what) from None
    now = svc.clock.now()
    chat = PathwayChat(
        id=str(uuid.uuid4()),
        org_id=org,
        pathway_id=body.pathway_id,
        pathway_version=version,
        task=body.task if not body.pathway_id else None,
        state={
            "engine": None,
            "request_data": body.request_data or {},
            "start_node_id": body.start_node_id,
            "use_candidate_model": body.use_candidate_model,
        },
        history=[],
        completed=False,
        created_at=now,
        updated_at=now,
    )
    async with svc.db.transaction() as session:
        session.add(chat)
    return data(
        {
            "chat_id": chat.id,
            "message": "Chat instance created successfully",
            "variables": body.request_data,
        }
    )


@router.get("/pathway/chat/{chat_id}", summary="A chat's messages")
async def chat_history(chat_id: str, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        chat = await session.get(PathwayChat, chat_id)
        if chat is None or chat.org_id != org:
            raise not_found("Chat")
    return data(chat.history)


@router.post("/pathway/chat/{chat_id}", summary="Send a message to a chat; get the replies")
async def chat_turn(chat_id: str, body: ChatMessageBody, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        chat = await session.get(PathwayChat, chat_id)
        if chat is None or chat.org_id != org:
            raise not_found("Chat")
        document: dict[str, Any] | None = None
        if chat.pathway_id:
            try:
                document, _ = await pathways.document_for(
                    session, org, chat.pathway_id, chat.pathway_version
                )
            except pathways.PathwayNotFound:
                raise not_found("Pathway") from None
    if chat.completed:
        raise ApiError(400, "CHAT_COMPLETED", "This chat has ended; create a new one.")
    factory = svc.agents
    if factory is None:
        raise RuntimeError("the server was built without an agent factory")
    state = dict(chat.state)
    history = list(chat.history)
    responses: list[str] = []
    actions: list[ReplyItem] = []
    context = CallContext(call_id=chat.id, request_data=state.get("request_data") or {})
    node_id: str | None = None
    node_name: str | None = None
    variables: dict[str, Any] = {}
    if document is not None:
        try:
            engine = state.get("engine")
            agent = await factory.pathway_agent(
                org,
                document,
                context,
                start_node_id=state.get("start_node_id"),
                state=EngineState.model_validate(engine) if engine else None,
            )
        except PathwayFormatError as exc:
            raise ApiError(400, "INVALID_PATHWAY", str(exc), field="pathway_id") from None
        agent.history = [ChatMessage(m["role"], m["content"]) for m in history]
        if engine is None:
            await _collect(agent, None, responses, actions)
        if body.message:
            history.append({"role": "user", "content": body.message})
            await _collect(agent, body.message, responses, actions)
        state["engine"] = agent.state.model_dump(mode="json") if agent.state else None
        node_id = agent.node_id
        node = agent.doc.index().nodes.get(node_id) if node_id else None
        node_name = node.name if node is not None else None
        variables = agent.template_variables()
    else:
        task_agent = factory.task_agent(chat.task or "", variables=state.get("request_data"))
        task_agent.history = [ChatMessage(m["role"], m["content"]) for m in history]
        if body.message:
            history.append({"role": "user", "content": body.message})
        await _collect(task_agent, body.message, responses, actions)
        variables = dict(state.get("request_data") or {})
    history.extend({"role": "assistant", "content": text} for text in responses)
    completed = any(isinstance(a, EndCall | TransferTo) for a in actions)
    async with svc.db.transaction() as session:
        # One statement: the chat was read (and its org checked) above.
        await session.execute(
            update(PathwayChat)
            .where(PathwayChat.id == chat_id)
            .values(state=state, history=history, completed=completed, updated_at=svc.clock.now())
        )
    return data(
        {
            "chat_id": chat_id,
            "assistant_responses": responses,
            "current_node_id": node_id,
            "current_node_name": node_name,
            "chat_history": history,
            "pathway_id": chat.pathway_id,
            "pathway_version": None if chat.pathway_version is None else str(chat.pathway_version),
            "use_candidate_model": bool(state.get("use_candidate_model")),
            "variables": variables,
            "completed": completed,
            "actions": [_action(a) for a in actions],
        }
    )


async def _collect(
    agent: PathwayAgent | TaskAgent,
    message: str | None,
    responses: list[str],
    actions: list[ReplyItem],
) -> None:
    items = agent.greet() if message is None else agent.reply(message)
    words: list[str] = []
    async for item in items:
        if isinstance(item, str):
            words.append(item)
        elif not (isinstance(item, Note) and item.type == "pathway.log"):
            actions.append(item)
    text = "".join(words).strip()
    if text:
        responses.append(text)


def _action(item: ReplyItem) -> dict[str, Any]:
    if isinstance(item, EndCall):
        return {"type": "end_call", "reason": item.reason}
    if isinstance(item, TransferTo):
        return {"type": "transfer", "number": item.number}
    if isinstance(item, PressDigits):
        return {"type": "dtmf", "digits": item.digits}
    if isinstance(item, Note):
        return {"type": item.type, "message": item.message}
    return {"type": "text"}
