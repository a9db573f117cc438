"""``callwright simulate``: try an agent with no phone line.

A scripted caller (``conversation.simulate``) talks to a pathway or a task prompt in this
process, over the configured store (no server needed), through the full media path at
8 kHz mu-law. The live transcript and each turn's latency are printed as they are
stored; the call stays in the store like any other.

The models and the store are imported when the command runs, so ``callwright --help``
stays quick.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from callwright.config import Settings

if TYPE_CHECKING:
    from callwright.conversation.simulate import LiveLine, SimulationResult

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def simulate_command(
    script: Annotated[
        Path, typer.Argument(help="Caller script, YAML or JSON.", dir_okay=False, exists=True)
    ],
    pathway: Annotated[str | None, typer.Option("--pathway", help="Pathway id to call.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Task prompt to call instead.")] = None,
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime/--fast",
            help="Play audio in real time, or skip the time it takes to play (latencies "
            "stay real).",
        ),
    ] = True,
    org: Annotated[str, typer.Option(help="Org that owns a --task call.")] = "default",
    voice: Annotated[str | None, typer.Option(help="The agent's voice.")] = None,
    record: Annotated[bool, typer.Option("--record/--no-record", help="Record the call.")] = True,
    data: Annotated[
        str | None, typer.Option(help="request_data for the call, as a JSON object.")
    ] = None,
) -> None:
    """Call an agent with a scripted caller and print the live transcript."""
    from callwright.conversation.simulate import ScriptError, load_script, simulate
    from callwright.server import INITIAL_KEY_FILE, announce_initial_key, running_services

    if (pathway is None) == (task is None):
        err.print("[red]give exactly one of --pathway and --task[/red]")
        raise typer.Exit(2)
    try:
        parsed = load_script(script)
        request_data = json.loads(data) if data else {}
    except (ScriptError, json.JSONDecodeError) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    if not isinstance(request_data, dict):
        err.print("[red]--data must be a JSON object[/red]")
        raise typer.Exit(2)
    params = {"voice": voice} if voice else {}
    settings = Settings()

    async def run() -> SimulationResult:
        async with running_services(settings, start_dispatcher=False) as (services, key):
            if key:
                announce_initial_key(key, settings.data_dir / INITIAL_KEY_FILE)
            org_id = await _owner(services, pathway, org)
            mode = "real time" if realtime else "fast"
            err.print(f"[dim]loading speech models; the call plays in {mode}[/dim]")
            return await simulate(
                services,
                parsed,
                org_id=org_id,
                pathway_id=pathway,
                task=task,
                request_data=request_data,
                params=params,
                record=record,
                realtime=realtime,
                on_line=LivePrinter().show,
            )

    try:
        result = asyncio.run(run())
    except (LookupError, ValueError) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[yellow]simulation interrupted[/yellow]")
        raise typer.Exit(130) from None
    colour = "green" if result.status == "completed" else "red"
    out.print(
        f"\n[{colour}]{result.status}[/{colour}] call {result.call_id}"
        f" (ended by {result.ended_by or 'error'})"
    )
    out.print(
        f"  with the server running on this store: [bold]callwright calls get {result.call_id}"
        f"[/bold] (events: [bold]callwright calls events {result.call_id}[/bold])"
    )
    if result.status != "completed":
        raise typer.Exit(1)


async def _owner(services: Any, pathway_id: str | None, org_name: str) -> str:
    from sqlalchemy import select

    from callwright.store.models import Org
    from callwright.store.pathway_models import Pathway

    async with services.db.session() as session:
        if pathway_id is not None:
            found = await session.get(Pathway, pathway_id)
            if found is None:
                raise LookupError(f"no pathway {pathway_id!r} in this store")
            return str(found.org_id)
        org_id = await session.scalar(select(Org.id).where(Org.name == org_name))
    if org_id is None:
        raise LookupError(f"no org named {org_name!r} in this store")
    return str(org_id)


class LivePrinter:
    """Prints a simulated call's stored events as they come."""

    def __init__(self, console: Console = out) -> None:
        self.console = console
        self._node: str | None = None

    def show(self, line: LiveLine) -> None:
        data = line.data or {}
        if line.type in ("transcript.user", "transcript.assistant"):
            text = line.message.split(": ", 1)[-1]
            who = (
                "[cyan] caller[/cyan]"
                if line.type == "transcript.user"
                else "[green]  agent[/green]"
            )
            at = data.get("start_ms")
            stamp = f"[dim]{at / 1000:6.1f}s[/dim] " if isinstance(at, int) else ""
            self.console.print(f"{stamp}{who}  {escape(text)}")
        elif line.type == "turn.latency":
            self.console.print(f"[dim]{'':8}{_latency(data)}[/dim]")
        elif line.type == "pathway.log":
            node = data.get("chosen_node_id")
            if node and node != self._node:
                self._node = node
                self.console.print(f"[dim]{'':8}node: {escape(str(node))}[/dim]")
        elif line.type in ("turn.interrupted", "call.dtmf", "call.transfer", "call.end_requested"):
            self.console.print(f"[yellow]{'':8}{escape(line.message)}[/yellow]")
        elif line.type == "conversation.error" or line.type == "status.failed":
            self.console.print(f"[red]{'':8}{escape(line.message)}[/red]")


def _latency(data: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        value = data.get(key)
        return "-" if value is None else f"{value:.0f} ms"

    return (
        f"latency {ms('platform_ms')} after {ms('endpoint_ms')} of silence:"
        f" stt {ms('stt_ms')}, first token {ms('llm_first_token_ms')},"
        f" first audio {ms('tts_first_audio_ms')}"
    )
