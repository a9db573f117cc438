"""``callwright``: run the server, manage keys and the store, and drive a server's API."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from callwright.cli import client
from callwright.cli import numbers as numbers_cli
from callwright.cli import pathways as pathways_cli
from callwright.cli import secrets as secrets_cli
from callwright.cli import simulate as simulate_cli
from callwright.cli import trunks as trunks_cli
from callwright.cli import webhooks as webhooks_cli
from callwright.config import Settings, masked

app = typer.Typer(no_args_is_help=True, help="Self-hosted voice-AI phone agents.")
keys_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
config_app = typer.Typer(no_args_is_help=True, help="Show the effective configuration.")
calls_app = typer.Typer(no_args_is_help=True, help="Send and inspect calls on a server.")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(calls_app, name="calls")
app.add_typer(numbers_cli.app, name="numbers")
app.add_typer(pathways_cli.app, name="pathways")
app.command("chat")(pathways_cli.chat)
app.command("simulate")(simulate_cli.simulate_command)
app.add_typer(webhooks_cli.app, name="webhooks")
app.add_typer(trunks_cli.app, name="trunks")
app.add_typer(secrets_cli.app, name="secrets")

out = Console()
err = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (CALLWRIGHT_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CALLWRIGHT_PORT).")] = None,
) -> None:
    """Apply migrations and run the API server and dispatcher."""
    import uvicorn

    from callwright import logs
    from callwright.server import build_app, tune_gc

    settings = Settings()
    logs.setup(settings.log_format, settings.log_level)
    tune_gc()
    uvicorn.run(
        build_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from callwright.store.migrate import upgrade

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    err.print("[green]database is up to date[/green]")


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (secrets masked)."""
    out.print_json(json.dumps(masked(Settings()), default=str))


@keys_app.command("create")
def keys_create(org: Annotated[str, typer.Option(help="Org name; created if new.")]) -> None:
    """Create a key; prints the key alone on stdout (shown once)."""
    from callwright.cli import admin

    raw = asyncio.run(admin.create_key(Settings(), org))
    sys.stdout.write(raw + "\n")


@keys_app.command("list")
def keys_list() -> None:
    """List keys: prefix, org, created, last used."""
    from callwright.cli import admin

    rows = asyncio.run(admin.list_keys(Settings()))
    table = Table("id", "prefix", "org", "created", "last used", "revoked")
    for k in rows:
        table.add_row(
            k.id,
            k.prefix + "…",
            k.org_name,
            _ts(k.created_at),
            _ts(k.last_used_at),
            _ts(k.revoked_at),
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id or its shown prefix.")]) -> None:
    """Revoke a key (takes effect on running servers within seconds)."""
    from callwright.cli import admin

    try:
        count = asyncio.run(admin.revoke_key(Settings(), key))
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if count == 0:
        err.print(f"[red]no live key matches {key!r}[/red]")
        raise typer.Exit(1)
    err.print(f"revoked {count} key")


@calls_app.command("send")
def calls_send(
    to: Annotated[str, typer.Option("--to", help="Number to call.")],
    task: Annotated[str | None, typer.Option(help="What the agent should do.")] = None,
    pathway_id: Annotated[str | None, typer.Option(help="Run this pathway instead.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Caller id.")] = None,
    first_sentence: Annotated[str | None, typer.Option(help="Fixed first utterance.")] = None,
    voice: Annotated[str | None, typer.Option()] = None,
    webhook: Annotated[str | None, typer.Option()] = None,
    start_time: Annotated[str | None, typer.Option(help="'YYYY-MM-DD HH:MM:SS -HH:MM'")] = None,
    record: Annotated[bool, typer.Option(help="Record the call.")] = False,
    data: Annotated[
        str | None, typer.Option(help="Extra JSON fields merged into the body.")
    ] = None,
) -> None:
    """Queue an outbound call."""
    body: dict[str, Any] = {"phone_number": to, "record": record}
    for name, value in (
        ("task", task),
        ("pathway_id", pathway_id),
        ("from", from_),
        ("first_sentence", first_sentence),
        ("voice", voice),
        ("webhook", webhook),
        ("start_time", start_time),
    ):
        if value is not None:
            body[name] = value
    if data:
        body.update(json.loads(data))
    result = client.request("POST", "/v1/calls", json=body)
    out.print(f"[green]queued[/green] {result['call_id']}")


@calls_app.command("list")
def calls_list(
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Raw JSON.")] = False,
) -> None:
    """List recent calls."""
    result = client.request("GET", "/v1/calls", params={"limit": limit})
    if as_json:
        out.print_json(json.dumps(result))
        return
    table = Table(
        "call_id",
        "created",
        "to",
        "status",
        "queue",
        "minutes",
        "error",
        title=f"{result['count']} of {result['total_count']} calls",
    )
    for c in result["calls"]:
        table.add_row(
            c["call_id"],
            c["created_at"],
            c["to"],
            c["status"],
            c["queue_status"],
            f"{c['call_length']:.2f}",
            c["error_message"][:60],
        )
    out.print(table)


@calls_app.command("get")
def calls_get(call_id: str) -> None:
    """Full call details as JSON."""
    out.print_json(json.dumps(client.request("GET", f"/v1/calls/{call_id}")))


@calls_app.command("events")
def calls_events(call_id: str) -> None:
    """The call's event log, in order."""
    result = client.request("GET", f"/v1/calls/{call_id}/events")
    table = Table("#", "time", "level", "type", "message")
    for e in result["data"]:
        table.add_row(str(e["seq"]), e["timestamp"], e["level"], e["type"], e["message"])
    out.print(table)


@calls_app.command("stop")
def calls_stop(call_id: str) -> None:
    """Hang up a live call or cancel a queued one."""
    out.print(client.request("POST", f"/v1/calls/{call_id}/stop")["message"])


def _ts(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
