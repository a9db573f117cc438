"""HTTP plumbing shared by the network speech back-ends: clients and error mapping."""

from __future__ import annotations

import httpx

from callwright.providers.speech.base import SpeechServiceError

# Connect fast, but give a synthesis or transcription time to produce its first bytes.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_RETRYABLE = frozenset({408, 409, 425, 429})


def make_client(client: httpx.AsyncClient | None) -> tuple[httpx.AsyncClient, bool]:
    """The client to use and whether we own it (and so must close it)."""
    if client is not None:
        return client, False
    return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT), True


def retryable_status(status: int) -> bool:
    return status in _RETRYABLE or status >= 500


async def check_response(service: str, response: httpx.Response) -> None:
    """Raise ``SpeechServiceError`` for an error status, with the start of the body."""
    if response.status_code < 400:
        return
    body = (await response.aread())[:300].decode("utf-8", "replace")
    raise SpeechServiceError(
        f"{service} answered {response.status_code}: {body}",
        status=response.status_code,
        retryable=retryable_status(response.status_code),
    )


def transport_error(service: str, exc: httpx.HTTPError) -> SpeechServiceError:
    return SpeechServiceError(
        f"{service} request failed: {type(exc).__name__}: {exc}", retryable=True
    )
