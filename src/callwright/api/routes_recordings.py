"""Recordings (reference §2.8): stream a call's recording, with byte ranges, and delete it.

The file is served as ``audio/wav`` (the reference's default): caller on the left
channel, agent on the right. MP3 is not offered: it would need an encoder we do not
ship; a client asking for it gets the WAV, whose content type says so.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from callwright.api.auth import Org
from callwright.api.errors import ApiError, not_found
from callwright.api.services import Svc
from callwright.store import calls
from callwright.store.recordings import CONTENT_TYPE

router = APIRouter(prefix="/v1", tags=["recordings"])


def recording_not_found() -> ApiError:
    return ApiError(404, "CALL_RECORDING_NOT_FOUND", "This call has no recording.")


@router.get(
    "/recordings/{call_id}",
    summary="Stream a call's recording (WAV, byte ranges supported)",
    response_class=FileResponse,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "The recording"}},
)
async def get_recording(call_id: str, org: Org, svc: Svc) -> FileResponse:
    async with svc.db.session() as session:
        if await calls.get_call(session, org, call_id) is None:
            raise not_found()
    path = await asyncio.to_thread(svc.recordings.path, org, call_id)
    if path is None:
        raise recording_not_found()
    return FileResponse(path, media_type=CONTENT_TYPE, filename=f"{call_id}.wav")


@router.delete("/recordings/{call_id}", summary="Delete a call's recording")
async def delete_recording(call_id: str, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        call = await calls.lock_call(session, call_id, org)
        if call is None:
            raise not_found()
        if not await asyncio.to_thread(svc.recordings.delete, org, call_id):
            raise recording_not_found()
        call.recording_url = None
        await calls.add_event(
            session, call, svc.clock.now(), "recording.deleted", "Recording deleted through the API"
        )
    return JSONResponse({"status": "success", "message": "Recording deleted."})
