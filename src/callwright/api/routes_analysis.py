"""Analysis of a finished call (reference §2.5): ``POST /v1/calls/{call_id}/analyze``.

Answers come from the configured LLM, reading the call's transcript; with no LLM
configured (the embedded mode) the request is refused with a 400 that names the
setting, rather than answered with guesses.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from callwright.api.auth import Org
from callwright.api.errors import STYLE_A, ApiError, not_found
from callwright.api.services import Svc
from callwright.providers.llm import LLMError, answer_questions
from callwright.store import calls
from callwright.store.call_record import concatenated

router = APIRouter(prefix="/v1", tags=["calls"])

Question = Annotated[
    tuple[
        Annotated[str, Field(min_length=1, max_length=2000)], Annotated[str, Field(max_length=50)]
    ],
    Field(description='[question, answer type], e.g. ["Did they book?", "boolean"]'),
]


class AnalyzeBody(BaseModel):
    goal: str = Field(default="", max_length=4000)
    questions: list[Question] = Field(min_length=1, max_length=50)


@router.post(
    "/calls/{call_id}/analyze",
    openapi_extra=STYLE_A,
    summary="Answer questions about a call from its transcript",
    responses={502: {"description": "The LLM failed to answer."}},
)
async def analyze_call(call_id: str, body: AnalyzeBody, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        call = await calls.get_call(session, org, call_id)
        if call is None:
            raise not_found()
        transcript = concatenated(call.transcript or [])
    if svc.llm is None:
        raise ApiError(
            400,
            "LLM_NOT_CONFIGURED",
            "Call analysis needs an LLM: set CALLWRIGHT_LLM_BASE_URL and CALLWRIGHT_LLM_MODEL.",
        )
    answers: list[Any]
    if not transcript:
        answers = [None] * len(body.questions)  # nothing was said: nothing to ask about
    else:
        try:
            answers = await answer_questions(svc.llm, transcript, body.goal, body.questions)
        except LLMError as exc:
            raise ApiError(502, "LLM_ERROR", f"The LLM could not answer: {exc}") from None
    async with svc.db.transaction() as session:
        locked = await calls.lock_call(session, call_id, org)
        if locked is not None:
            await calls.add_event(
                session,
                locked,
                svc.clock.now(),
                "analysis.answered",
                f"Answered {len(answers)} question(s) about the call",
                data={"goal": body.goal, "questions": [q for q, _ in body.questions]},
            )
    return JSONResponse(
        {
            "status": "success",
            "message": "Successfully analyzed call",
            "answers": answers,
            "credits_used": 0,
        }
    )
