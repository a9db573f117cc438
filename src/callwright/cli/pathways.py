"""``callwright pathways``: import, export and lint pathway JSON.

``lint`` runs locally on a file (no server needed) so it can gate a CI job: it prints
every finding with its node id and exits 1 when the pathway cannot run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from callwright.cli import client

app = typer.Typer(no_args_is_help=True, help="Conversational pathways: import, export, lint.")
out = Console()
err = Console(stderr=True)

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


@app.command("import")
def import_pathway(
    file: FileArg,
    name: Annotated[str | None, typer.Option(help="Default: the file's name.")] = None,
) -> None:
    """Create a pathway from an exported JSON file; prints the new pathway id."""
    document = _read(file)
    body = {**document, "name": name or document.get("name") or file.stem}
    result = client.request("POST", "/v1/pathway/create", json=body)
    for warning in result.get("warnings") or []:
        err.print(f"[yellow]warning[/] {_where(warning)}{warning['message']}")
    out.print(result["pathway_id"])


@app.command("list")
def list_pathways() -> None:
    """Pathways of the key's org."""
    table = Table("id", "name", "nodes", "live version", "updated")
    for p in client.request("GET", "/v1/pathway"):
        nodes = [n for n in p.get("nodes") or [] if isinstance(n, dict) and "id" in n]
        live = p.get("production_version_number")
        table.add_row(
            p["id"],
            p["name"],
            str(len(nodes)),
            "" if live is None else str(live),
            p.get("updated_at") or "",
        )
    out.print(table)


@app.command("export")
def export_pathway(
    pathway_id: str,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout.")] = None,
) -> None:
    """Write a pathway as JSON, in the format ``import`` reads."""
    pathway = client.request("GET", f"/v1/pathway/{pathway_id}")
    for key in ("id", "pathway_id", "folder_id", "created_at", "updated_at"):
        pathway.pop(key, None)
    text = json.dumps(pathway, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        err.print(f"wrote {output}")


@app.command("lint")
def lint_file(
    file: FileArg,
    llm: Annotated[
        bool, typer.Option(help="Judge as if an LLM is configured (prompt nodes allowed).")
    ] = False,
) -> None:
    """Check a pathway file; exit 1 if it cannot run (warnings alone exit 0)."""
    from callwright.pathways.lint import lint

    report = lint(_read(file), llm_configured=llm)
    if not report.issues:
        out.print(f"{file}: no findings")
        return
    table = Table("severity", "code", "node", "edge", "message")
    for issue in report.issues:
        colour = "red" if issue.severity == "error" else "yellow"
        table.add_row(
            f"[{colour}]{issue.severity}[/]",
            issue.code,
            issue.node_id or "",
            issue.edge_id or "",
            issue.message,
        )
    out.print(table)
    errors = sum(1 for i in report.issues if i.severity == "error")
    out.print(f"{file}: {errors} error(s), {len(report.issues) - errors} warning(s)")
    if errors:
        raise typer.Exit(1)


def _read(file: Path) -> dict[str, Any]:
    try:
        document = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        err.print(f"[red]error[/] {file} is not JSON: {exc}")
        raise typer.Exit(1) from None
    if not isinstance(document, dict):
        err.print(f"[red]error[/] {file}: a pathway is a JSON object with nodes and edges")
        raise typer.Exit(1)
    return document


def _where(issue: dict[str, Any]) -> str:
    return f"node {issue['node_id']}: " if issue.get("node_id") else ""


def chat(
    pathway: Annotated[str | None, typer.Option("--pathway", help="Pathway id to talk to.")] = None,
    task: Annotated[str | None, typer.Option(help="Or: a task prompt (needs an LLM).")] = None,
    version: Annotated[int | None, typer.Option(help="Pathway version (default: live).")] = None,
    data: Annotated[
        str | None, typer.Option(help="request_data for the chat, as a JSON object.")
    ] = None,
) -> None:
    """Talk to an agent in the terminal: its replies, and beside them the current node,
    the variables and any action (end of call, transfer). Empty line or Ctrl-D quits."""
    if (pathway is None) == (task is None):
        err.print("[red]give exactly one of --pathway ID or --task TEXT[/red]")
        raise typer.Exit(2)
    body: dict[str, Any] = {"request_data": json.loads(data) if data else None}
    body.update({"pathway_id": pathway, "pathway_version": version} if pathway else {"task": task})
    created = client.request("POST", "/v1/pathway/chat/create", json=body)["data"]
    chat_id = created["chat_id"]
    out.print(f"[dim]chat {chat_id} - empty line to quit[/dim]")
    reply = client.request("POST", f"/v1/pathway/chat/{chat_id}", json={})["data"]
    seen: dict[str, Any] = {}  # first reply: built-in variables are not news
    seen = {k: v for k, v in (reply.get("variables") or {}).items() if k not in (data or "")}
    while True:
        seen = _show(reply, seen)
        if reply.get("completed"):
            out.print("[dim](the agent ended the conversation)[/dim]")
            return
        try:
            line = input("you> ").strip()
        except EOFError:
            line = ""
        if not line:
            return
        reply = client.request("POST", f"/v1/pathway/chat/{chat_id}", json={"message": line})[
            "data"
        ]


def _show(reply: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    for text in reply.get("assistant_responses") or []:
        out.print(f"[bold cyan]agent>[/] {text}")
    node = reply.get("current_node_name") or reply.get("current_node_id")
    if node:
        out.print(f"  [dim]node:[/] {node} [dim]({reply.get('current_node_id')})[/dim]")
    variables = reply.get("variables") or {}
    changed = {k: v for k, v in variables.items() if seen.get(k) != v and not k.startswith("_")}
    if changed:
        shown = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in changed.items())
        out.print(f"  [dim]variables:[/] {shown}")
    for action in reply.get("actions") or []:
        detail = action.get("number") or action.get("digits") or action.get("reason") or ""
        out.print(f"  [dim]action:[/] {action['type']} {detail}".rstrip())
    return dict(variables)
