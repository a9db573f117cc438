"""Recordings (reference §2.8): a call's recorder output is stored, streamed with byte
ranges, tenant-scoped, and deletable (logged)."""

from __future__ import annotations

import io
import wave

import numpy as np
from tests.integration.conftest import Api

from callwright.media.frames import AudioFrame
from callwright.media.recorder import CallRecorder
from callwright.store.call_record import attach_recording
from callwright.store.models import Call


async def recorded_call(api: Api) -> str:
    sent = await api.client.post(
        "/v1/calls",
        json={"phone_number": "+14155550123", "task": "x", "record": True},
        headers=api.a(),
    )
    call_id: str = sent.json()["call_id"]
    recorder = CallRecorder(8000)
    for i in range(50):  # one second: caller then agent
        recorder.add_caller(AudioFrame(np.full(160, 1000 * (i < 25), np.int16), 8000, i * 160))
        recorder.add_agent(AudioFrame(np.full(160, 2000 * (i >= 25), np.int16), 8000, i * 160))
    svc = api.services
    async with svc.db.session() as session:
        row = await session.get(Call, call_id)
        assert row is not None and row.params["record"] is True
        org_id = row.org_id
    url = f"{svc.settings.effective_public_url}/v1/recordings/{call_id}"
    wav = recorder.stereo_wav()
    await attach_recording(svc.db, svc.clock, svc.recordings, call_id, org_id, wav, url)
    return call_id


async def test_recording_streams_with_ranges_and_is_scoped(api: Api) -> None:
    call_id = await recorded_call(api)
    got = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert got["recording_url"].endswith(f"/v1/recordings/{call_id}")

    full = await api.client.get(f"/v1/recordings/{call_id}", headers=api.a())
    assert full.status_code == 200 and full.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(full.content)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (2, 8000, 8000)
        samples = np.frombuffer(wav.readframes(8000), "<i2").reshape(-1, 2)
    assert samples[0].tolist() == [1000, 0] and samples[-1].tolist() == [0, 2000]

    part = await api.client.get(
        f"/v1/recordings/{call_id}", headers={**api.a(), "range": "bytes=0-43"}
    )
    assert part.status_code == 206 and part.content == full.content[:44]
    assert part.headers["content-range"] == f"bytes 0-43/{len(full.content)}"

    assert (await api.client.get(f"/v1/recordings/{call_id}", headers=api.b())).status_code == 404
    denied = await api.client.delete(f"/v1/recordings/{call_id}", headers=api.b())
    assert denied.status_code == 404


async def test_delete_is_logged_and_missing_recordings_are_404(api: Api) -> None:
    call_id = await recorded_call(api)
    deleted = await api.client.delete(f"/v1/recordings/{call_id}", headers=api.a())
    assert deleted.status_code == 200
    missing = await api.client.get(f"/v1/recordings/{call_id}", headers=api.a())
    assert missing.status_code == 404 and "CALL_RECORDING_NOT_FOUND" in missing.text
    again = await api.client.delete(f"/v1/recordings/{call_id}", headers=api.a())
    assert again.status_code == 404
    got = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert got["recording_url"] is None
    events = (await api.client.get(f"/v1/calls/{call_id}/events", headers=api.a())).json()
    items = events["data"] if isinstance(events, dict) else events
    assert [e["type"] for e in items][-2:] == ["recording.saved", "recording.deleted"]
