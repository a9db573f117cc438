"""``callwright secrets``: the org's secrets for ``{{SECRET.NAME}}``, via a server's API.

A value is never taken as an argument (shell history, ``ps``): it is read from stdin
when piped, else typed at a prompt that does not echo. Values are never shown again.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from callwright.cli import client

app = typer.Typer(no_args_is_help=True, help="Secrets webhooks and tools use as {{SECRET.NAME}}.")
out = Console()


@app.command("set")
def set_secret(name: Annotated[str, typer.Argument(help="The secret's name.")]) -> None:
    """Create the secret, or replace its value (value from stdin, or typed)."""
    if sys.stdin.isatty():
        value = typer.prompt(f"Value of {name}", hide_input=True)
    else:
        value = sys.stdin.read().removesuffix("\n")
    existing = {s["name"].lower() for s in _list()}
    if name.lower() in existing:
        result = client.request("PATCH", f"/v1/secrets/{name}", json={"value": value})
        verb = "updated"
    else:
        result = client.request("POST", "/v1/secrets", json={"name": name, "value": value})
        verb = "created"
    secret = result["data"]
    out.print(f"{verb} {secret['reference']} ({secret['masked_value']})")


@app.command("list")
def list_secrets() -> None:
    """Names, references and masked values."""
    table = Table("id", "name", "reference", "value", "updated")
    for s in _list():
        table.add_row(s["secret_id"], s["name"], s["reference"], s["masked_value"], s["updated_at"])
    out.print(table)


@app.command("remove")
def remove(secret: Annotated[str, typer.Argument(help="Secret id or name.")]) -> None:
    """Delete a secret (requests that still reference it will not resolve it)."""
    result = client.request("DELETE", f"/v1/secrets/{secret}")["data"]
    out.print(f"removed {result['secret_id']}")


def _list() -> list[dict[str, str]]:
    secrets: list[dict[str, str]] = client.request("GET", "/v1/secrets")["data"]["secrets"]
    return secrets
