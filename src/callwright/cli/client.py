"""HTTP client for the CLI: ``CALLWRIGHT_API_URL`` + ``CALLWRIGHT_API_KEY``."""

from __future__ import annotations

from typing import Any

import httpx
import typer
from rich.console import Console

from callwright.config import Settings

err = Console(stderr=True)


def request(method: str, path: str, **kwargs: Any) -> Any:
    settings = Settings()
    if settings.api_key is None:
        err.print(
            "[red]Set CALLWRIGHT_API_KEY (see var/initial-api-key after the first "
            "`make run`).[/red]"
        )
        raise typer.Exit(2)
    headers = {"authorization": settings.api_key.get_secret_value()}
    try:
        response = httpx.request(
            method, settings.api_url.rstrip("/") + path, headers=headers, timeout=30, **kwargs
        )
    except httpx.HTTPError as exc:
        err.print(f"[red]cannot reach {settings.api_url}: {type(exc).__name__}[/red]")
        raise typer.Exit(1) from None
    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text}
    if response.status_code >= 400:
        err.print(f"[red]{response.status_code}: {body.get('message', body)}[/red]")
        raise typer.Exit(1)
    return body
