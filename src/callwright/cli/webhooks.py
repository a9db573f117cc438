"""``callwright webhooks``: check a delivery's signature, and manage the signing secret
and deliveries through a server's API."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from callwright.cli import client
from callwright.webhooks import signing

app = typer.Typer(no_args_is_help=True, help="Webhook signatures, secret and deliveries.")
out = Console()
err = Console(stderr=True)


@app.command("verify")
def verify(
    secret: Annotated[
        str, typer.Option(envvar="CALLWRIGHT_WEBHOOK_SECRET", help="The org's signing secret.")
    ],
    signature: Annotated[
        str,
        typer.Option(
            envvar="CALLWRIGHT_WEBHOOK_SIGNATURE",
            help=f"The {signing.SIGNATURE_HEADER} header of the delivery.",
        ),
    ],
) -> None:
    """Check a webhook body (the exact bytes, on stdin) against its signature.
    Exits 0 when it is valid, 1 when not."""
    body = sys.stdin.buffer.read()
    if signing.verify(body, secret, signature):
        err.print("[green]valid signature[/green]")
        return
    err.print("[red]INVALID signature[/red] (other secret, or the body was changed)")
    raise typer.Exit(1)


@app.command("secret")
def secret() -> None:
    """Print the org's signing secret."""
    sys.stdout.write(client.request("GET", "/v1/webhooks/signing_secret")["data"]["secret"] + "\n")


@app.command("rotate")
def rotate() -> None:
    """Replace the signing secret; prints the new one. Receivers must switch to it."""
    result = client.request("POST", "/v1/webhooks/signing_secret/rotate")
    sys.stdout.write(result["data"]["secret"] + "\n")


@app.command("list")
def list_deliveries(call_id: str) -> None:
    """A call's webhook deliveries, with every attempt."""
    table = Table("delivery", "kind", "status", "attempt", "at", "code", "ms", "error")
    for d in client.request("GET", f"/v1/calls/{call_id}/webhooks")["data"]:
        kind = d["kind"] if d["kind"] == "post_call" else f"event:{d['category']}"
        if not d["attempt_log"]:
            table.add_row(d["delivery_id"], kind, d["status"], "", "", "", "", "")
        for a in d["attempt_log"]:
            table.add_row(
                d["delivery_id"],
                kind,
                d["status"],
                str(a["number"]),
                a["at"],
                str(a["status_code"] or ""),
                str(a["latency_ms"]),
                (a["error"] or "")[:60],
            )
    out.print(table)


@app.command("resend")
def resend(call_ids: list[str]) -> None:
    """Queue the post-call webhook of ended calls again (to their own webhook URL)."""
    result = client.request("POST", "/v1/postcall/webhooks/resend", json={"call_ids": call_ids})
    out.print(f"queued {len(result['data'])} webhook(s)")
