"""``callwright numbers``: inbound numbers and their agents, through a server's API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from callwright.cli import client

app = typer.Typer(no_args_is_help=True, help="Inbound numbers and the agents that answer them.")
out = Console()


@app.command("add")
def add(
    numbers: Annotated[
        list[str], typer.Argument(help="Numbers your trunk delivers to callwright.")
    ],
    prompt: Annotated[str | None, typer.Option(help="Agent prompt for these numbers.")] = None,
    pathway_id: Annotated[str | None, typer.Option(help="Or: the pathway that answers.")] = None,
) -> None:
    """Register inbound numbers, optionally with their agent."""
    result = client.request("POST", "/v1/inbound/insert", json={"numbers": numbers})
    out.print(result["message"])
    if prompt or pathway_id:
        for number in numbers:
            _update(number, {"prompt": prompt, "pathway_id": pathway_id})


@app.command("list")
def list_numbers() -> None:
    """Inbound numbers and what answers them."""
    table = Table("number", "label", "answers with", "voice", "webhook")
    for n in client.request("GET", "/v1/inbound")["inbound_numbers"]:
        agent = (
            f"pathway {n['pathway_id']}" if n.get("pathway_id") else (n.get("prompt") or "")[:50]
        )
        table.add_row(
            n["phone_number"],
            n.get("label") or "",
            agent,
            n.get("voice") or "",
            n.get("webhook") or "",
        )
    out.print(table)


@app.command("update")
def update(
    number: str,
    prompt: Annotated[str | None, typer.Option()] = None,
    pathway_id: Annotated[str | None, typer.Option()] = None,
    voice: Annotated[str | None, typer.Option()] = None,
    first_sentence: Annotated[str | None, typer.Option()] = None,
    webhook: Annotated[str | None, typer.Option()] = None,
    data: Annotated[str | None, typer.Option(help="Other fields as a JSON object.")] = None,
) -> None:
    """Change the agent that answers a number."""
    fields: dict[str, Any] = {
        "prompt": prompt,
        "pathway_id": pathway_id,
        "voice": voice,
        "first_sentence": first_sentence,
        "webhook": webhook,
    }
    if data:
        fields.update(json.loads(data))
    _update(number, fields)


def _update(number: str, fields: dict[str, Any]) -> None:
    body = {k: v for k, v in fields.items() if v is not None}
    result = client.request("POST", f"/v1/inbound/{number}", json=body)
    out.print(f"{number}: updated {', '.join(sorted(result['updates'])) or 'nothing'}")
