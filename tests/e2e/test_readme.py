"""The README's own commands, from a fresh clone in a temporary directory.

This tests what is COMMITTED: the repository is ``git clone``d, so uncommitted changes
in the working tree are not part of the run. In the clone, ``make run`` runs exactly as
the README says (its ``setup`` builds a new ``.venv`` with the ordinary ``pip`` install;
nothing is borrowed from this checkout's environment), then every command of the
"5-minute tour" block runs as written in a shell, with two substitutions the README
implies: the tour's ``http://127.0.0.1:8000`` becomes the free port this test chose
(``CALLWRIGHT_PORT``, with ``CALLWRIGHT_API_URL`` set to match for the CLI), and
``<call_id>`` becomes the id the tour's first send printed. ``make test`` cannot run
inside the suite it starts; ``make -n test`` checks that it resolves.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, free_port, need_peer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README_PORT_URL = "http://127.0.0.1:8000"
TERMINAL = {"completed", "failed", "no-answer", "busy", "canceled"}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(heading the block sits under, block body) for every fenced block."""
    found: list[tuple[str, str]] = []
    heading = ""
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("```"):
            body = []
            for inner in lines:
                if inner.startswith("```"):
                    break
                body.append(inner)
            found.append((heading, "\n".join(body)))
    return found


def shell_commands(block: str) -> list[str]:
    """Commands of a shell block: comments and blank lines dropped, ``\\`` lines joined."""
    commands: list[str] = []
    pending = ""
    for line in block.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        commands.append(pending + stripped)
        pending = ""
    return commands


def without_comment(command: str) -> str:
    return command.split("  #", 1)[0].strip()


def test_readme_from_a_fresh_clone(tmp_path: Path) -> None:
    need_peer("git", (REPO / ".git").exists(), "the suite must run from a git checkout")
    clone = tmp_path / "callwright"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    readme = (clone / "README.md").read_text()
    blocks = code_blocks(readme)

    # The README begins with exactly two commands.
    first = [without_comment(c) for c in shell_commands(blocks[0][1])]
    assert first == ["make run", "make test"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWRIGHT_")}
    env.pop("VIRTUAL_ENV", None)
    dry = subprocess.run(["make", "-n", "test"], cwd=clone, env=env, capture_output=True, text=True)
    assert dry.returncode == 0 and "pytest" in dry.stdout, dry.stderr

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env.update(CALLWRIGHT_PORT=str(port), CALLWRIGHT_API_URL=base)
    log = (tmp_path / "make-run.log").open("wb")
    server = subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make and the server it starts, stopped as one group
    )
    try:
        _wait_healthy(base, server, tmp_path / "make-run.log")
        tour = next(body for heading, body in blocks if "tour" in heading.lower())
        outputs, final = _run_tour(shell_commands(tour), clone, env, base)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()

    key = (clone / "var" / "initial-api-key").read_text().strip()
    assert (clone / "var" / "initial-api-key").stat().st_mode & 0o777 == 0o600
    assert outputs["export"] == key
    assert _call_ids(outputs["list"]) >= {outputs["curl_id"], outputs["cli_id"]}
    assert json.loads(outputs["get"])["call_id"] == outputs["curl_id"]
    assert "queue" in outputs["events"]
    # What the README says happens next: no telephony route, so the call ends failed,
    # its error naming the missing route.
    assert final["status"] == "failed", final
    assert "route" in final["error_message"].lower(), final


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    # `make run` first runs `make setup` in the clone: a new venv and a full install.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"make run exited:\n{log.read_text(errors='replace')[-5000:]}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"make run never became healthy:\n{log.read_text(errors='replace')[-5000:]}")


def _run_tour(
    commands: list[str], clone: Path, env: dict[str, str], base: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """Run the tour's commands one by one; returns their outputs by kind and the first
    call's details once it has ended."""
    seen: dict[str, str] = {}
    call_id = ""
    pathway_id = ""
    for raw in commands:
        command = raw.replace(README_PORT_URL, base)
        if "<call_id>" in command:
            assert call_id, f"{raw!r} needs a call id no earlier command printed"
            command = command.replace("<call_id>", call_id)
        if "<pathway_id>" in command:
            assert pathway_id, f"{raw!r} needs a pathway id no earlier command printed"
            command = command.replace("<pathway_id>", pathway_id)
        export = re.fullmatch(r"export (\w+)=(.+)", command)
        if export:
            name = export.group(1)
            value = _bash(f"printf %s {export.group(2)}", clone, env)
            env[name] = value
            seen["export"] = value
            continue
        out = _bash(command, clone, env)
        assert out.strip(), f"{raw!r} printed nothing"
        if command.startswith("curl") and "/v1/calls" in command and "-d" in command:
            body = json.loads(out)
            assert body["status"] == "success", body
            seen["curl_id"] = call_id = body["call_id"]
        elif " calls send " in command:
            match = re.search(r"queued\s+([0-9a-f-]{36})", out)
            assert match, out
            seen["cli_id"] = match.group(1)
        elif " calls list" in command:
            seen["list"] = out
        elif " calls get " in command:
            seen["get"] = out
        elif " calls events " in command:
            seen["events"] = out
        elif " pathways list" in command:
            demo = [line for line in out.splitlines() if "Demo" in line]
            assert demo, out
            pathway_id = _call_ids(demo[0]).pop()
        elif " chat " in command:
            seen["chat"] = out
            assert "agent>" in out and "node:" in out, out
    key = {"authorization": env.get("CALLWRIGHT_API_KEY", "")}
    deadline = time.monotonic() + 30
    while True:
        final = httpx.get(f"{base}/v1/calls/{call_id}", headers=key).json()
        if final["status"] in TERMINAL or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return seen, final


def _bash(command: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail; " + command],
        cwd=cwd,
        env={**env, "COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        stdin=subprocess.DEVNULL,  # an interactive command (chat) sees the end of input
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{command!r} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _call_ids(text: str) -> set[str]:
    return set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text))
