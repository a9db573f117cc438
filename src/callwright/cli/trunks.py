"""``callwright trunks``: the SIP trunks calls go out through, via a server's API.

A password is never taken as a plain argument (it would sit in shell history and in
``ps``): give it in ``CALLWRIGHT_TRUNK_PASSWORD`` or type it at ``--ask-password``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from callwright.cli import client

app = typer.Typer(no_args_is_help=True, help="SIP trunks to your carrier or PBX.")
out = Console()
err = Console(stderr=True)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the trunk.")],
    endpoint: Annotated[
        str,
        typer.Option(
            help="Where to send calls: host, host:port, sip:host:port;transport=tcp, "
            "sips:host or tls://host:port."
        ),
    ],
    username: Annotated[str | None, typer.Option(help="SIP (digest) username.")] = None,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="CALLWRIGHT_TRUNK_PASSWORD",
            hidden=True,
            help="SIP password (from the environment).",
        ),
    ] = None,
    ask_password: Annotated[
        bool, typer.Option("--ask-password", help="Type the SIP password (not echoed).")
    ] = False,
    register: Annotated[
        bool, typer.Option(help="Register to the trunk (needs username and password).")
    ] = False,
    caller_id: Annotated[
        str | None, typer.Option(help="Caller id presented on calls through the trunk.")
    ] = None,
    number: Annotated[
        list[str] | None,
        typer.Option(help="A number, DID or extension the trunk carries (repeatable)."),
    ] = None,
    direction: Annotated[str, typer.Option(help="outbound, inbound or both.")] = "outbound",
    provider: Annotated[str | None, typer.Option(help="Provider label.")] = None,
) -> None:
    """Add a trunk; prints its id."""
    if ask_password:
        password = typer.prompt("SIP password", hide_input=True)
    body: dict[str, Any] = {
        "name": name,
        "sip_endpoint": endpoint,
        "direction": direction,
        "auth_mode": "register" if register else "ip",
    }
    for field, value in (
        ("username", username),
        ("password", password),
        ("caller_id", caller_id),
        ("provider", provider),
        ("numbers", number),
    ):
        if value:
            body[field] = value
    trunk = client.request("POST", "/v1/sip/trunks", json=body)["data"]
    out.print(f"[green]added[/green] {trunk['trunk_id']} ({trunk['sip_endpoint']})")


@app.command("list")
def list_trunks() -> None:
    """Trunks, where they point, and how they authenticate (passwords never shown)."""
    table = Table("id", "name", "direction", "endpoint", "auth", "user", "password", "caller id")
    for t in client.request("GET", "/v1/sip/trunks")["data"]["trunks"]:
        table.add_row(
            t["trunk_id"],
            t["name"],
            t["direction"],
            t["sip_endpoint"],
            t["auth_mode"],
            t["username"] or "",
            "set" if t["has_password"] else "",
            t["caller_id"] or "",
        )
        for bound in t["bound_numbers"]:
            table.add_row("", f"  {bound['phone_number']}", "", "", "", "", "", "")
    out.print(table)


@app.command("remove")
def remove(trunk: Annotated[str, typer.Argument(help="Trunk id, or its name.")]) -> None:
    """Delete a trunk; its numbers stay, unbound."""
    trunk_id = _resolve(trunk)
    result = client.request("DELETE", f"/v1/sip/trunks/{trunk_id}")["data"]
    out.print(f"removed {result['trunk_id']} ({result['unbound_number_count']} number(s) unbound)")


def _resolve(trunk: str) -> str:
    if trunk.startswith("trk_"):
        return trunk
    trunks = client.request("GET", "/v1/sip/trunks")["data"]["trunks"]
    matches = [t["trunk_id"] for t in trunks if t["name"] == trunk]
    if len(matches) != 1:
        err.print(f"[red]{len(matches)} trunks are named {trunk!r}; give the trunk id[/red]")
        raise typer.Exit(1)
    return str(matches[0])
