"""Operations: health, Prometheus metrics, structured logs without secrets."""

from __future__ import annotations

import json
import logging

import pytest
from tests.integration.conftest import Api
from tests.integration.test_calls_api import send

from callwright.logs import JsonFormatter, _RequestId


async def test_metrics_report_calls_queue_and_latency(api: Api) -> None:
    call_id = await send(api)
    await send(api)
    await api.client.post(f"/v1/calls/{call_id}/stop", headers=api.a())
    await api.client.get(f"/v1/calls/{call_id}", headers=api.a())
    text = (await api.client.get("/metrics")).text
    assert 'callwright_calls{status="queued"} 1.0' in text
    assert 'callwright_calls{status="canceled"} 1.0' in text
    assert "callwright_queue_depth 1.0" in text
    assert "callwright_active_calls 0.0" in text
    assert 'route="/v1/calls/{call_id}"' in text
    assert call_id not in text


async def test_health_fails_when_the_database_is_gone(api: Api) -> None:
    await api.services.db.engine.dispose()
    original = api.services.db.ping

    async def broken() -> None:
        raise ConnectionError("down")

    api.services.db.ping = broken  # type: ignore[method-assign]
    try:
        response = await api.client.get("/healthz")
    finally:
        api.services.db.ping = original  # type: ignore[method-assign]
    assert response.status_code == 503
    assert response.json()["status"] == "error"


async def test_request_id_is_echoed_or_made(api: Api) -> None:
    given = await api.client.get("/healthz", headers={"x-request-id": "abc123"})
    assert given.headers["x-request-id"] == "abc123"
    made = await api.client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32


async def test_logs_are_json_with_request_id_and_never_hold_keys(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await send(api)
    await api.client.get("/v1/calls", headers=api.a())
    await api.client.get("/v1/calls", headers={"authorization": "Bearer cw_not_a_real_key"})
    await api.services.auth.flush_last_used()
    formatter = JsonFormatter()
    stamp = _RequestId()
    lines = []
    for record in caplog.records:
        stamp.filter(record)
        lines.append(formatter.format(record))
    text = "\n".join(lines)
    assert api.key_a not in text and "cw_not_a_real_key" not in text
    for line in lines:
        parsed = json.loads(line)
        assert {"ts", "level", "logger", "msg", "request_id"} <= set(parsed)


async def test_server_errors_carry_both_envelopes(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from callwright.api import routes_calls
    from callwright.server import build_test_app

    async def explode(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(routes_calls.store, "get_call", explode)
    transport = httpx.ASGITransport(app=build_test_app(api.services), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/v1/calls/x", headers=api.a())
    assert response.status_code == 500
    assert response.json() == {
        "data": None,
        "errors": [{"error": "INTERNAL_SERVER_ERROR", "message": "Internal server error."}],
        "status": "error",
        "message": "Internal server error.",
    }
    assert "boom" not in response.text
