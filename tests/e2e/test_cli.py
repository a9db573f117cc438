"""The ``callwright`` command against a real server process and a real store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.serverproc import ServerProcess

pytestmark = pytest.mark.e2e


def cli(
    args: list[str], env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callwright.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path / "data",
        {"CALLWRIGHT_SANDBOX_NUMBERS": "true", "CALLWRIGHT_SANDBOX_CALL_SECONDS": "30"},
    )
    proc.start()
    yield proc
    proc.stop()


def client_env(server: ServerProcess, key: str) -> dict[str, str]:
    env = server.env()
    env.update({"CALLWRIGHT_API_URL": server.url, "CALLWRIGHT_API_KEY": key})
    return env


def test_first_serve_creates_default_org_and_a_0600_key_file(server: ServerProcess) -> None:
    key_file = server.data_dir / "initial-api-key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key = server.initial_key()
    assert key in server.log()  # shown once, on the console...
    response = httpx.get(server.url + "/v1/calls", headers={"authorization": key})
    assert response.status_code == 200
    server.stop()
    server.start()
    assert server.log().count(key) == 0  # ...and never again


def test_keys_create_list_revoke(server: ServerProcess) -> None:
    env = server.env()
    created = cli(["keys", "create", "--org", "acme"], env)
    assert re.fullmatch(r"cw_[A-Za-z0-9_-]{43}\n", created.stdout), created.stdout
    key = created.stdout.strip()
    assert httpx.get(server.url + "/v1/calls", headers={"authorization": key}).status_code == 200
    listing = cli(["keys", "list"], {**env, "COLUMNS": "200"}).stdout
    assert "acme" in listing and key[:10] in listing and key not in listing
    revoked = cli(["keys", "revoke", key[:10]], env)
    assert revoked.returncode == 0
    deadline = time.monotonic() + 15
    status = 200
    while time.monotonic() < deadline and status != 401:
        status = httpx.get(server.url + "/v1/calls", headers={"authorization": key}).status_code
        time.sleep(0.5)
    assert status == 401
    assert cli(["keys", "revoke", "cw_nothing"], env, check=False).returncode == 1


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWRIGHT_")}
    env.update(
        {
            "CALLWRIGHT_DATA_DIR": str(tmp_path),
            "CALLWRIGHT_API_KEY": "cw_supersecret",
            "CALLWRIGHT_DATABASE_URL": "postgresql+asyncpg://user:hunter2@db.example/cw",
        }
    )
    shown = cli(["config", "show"], env).stdout
    assert "cw_supersecret" not in shown and "hunter2" not in shown
    data = json.loads(shown)
    assert data["api_key"] == "****"
    assert data["database_url"] == "postgresql+asyncpg://user:***@db.example/cw"
    assert data["data_dir"] == str(tmp_path)


def test_config_file_is_read(tmp_path: Path) -> None:
    config = tmp_path / "cw.toml"
    config.write_text("port = 9123\nmax_calls_per_org = 3\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWRIGHT_")}
    env.update({"CALLWRIGHT_CONFIG": str(config), "CALLWRIGHT_MAX_CALLS_PER_ORG": "4"})
    data = json.loads(cli(["config", "show"], env).stdout)
    assert data["port"] == 9123
    assert data["max_calls_per_org"] == 4  # the environment wins over the file


def test_calls_send_list_get_events_stop(server: ServerProcess) -> None:
    env = client_env(server, server.initial_key())
    sent = cli(["calls", "send", "--to", "+14155550123", "--task", "Say hello."], env)
    call_id = sent.stdout.split()[-1]
    listing = cli(["calls", "list"], {**env, "COLUMNS": "250"}).stdout
    assert call_id in listing
    details = json.loads(cli(["calls", "get", call_id], env).stdout)
    assert details["call_id"] == call_id and details["to"] == "+14155550123"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = json.loads(cli(["calls", "get", call_id], env).stdout)["status"]
        if status == "in-progress":
            break
        time.sleep(0.2)
    assert cli(["calls", "stop", call_id], env).stdout.strip() == "Call ended successfully."
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        details = json.loads(cli(["calls", "get", call_id], env).stdout)
        if details["completed"]:
            break
        time.sleep(0.2)
    assert details["status"] == "completed" and details["call_ended_by"] == "ASSISTANT"
    events = cli(["calls", "events", call_id], {**env, "COLUMNS": "250"}).stdout
    for kind in (
        "queue.accepted",
        "status.allocated",
        "status.in-progress",
        "stop.requested",
        "status.completed",
    ):
        assert kind in events


def test_cli_reports_errors_clearly(server: ServerProcess) -> None:
    env = client_env(server, "cw_wrong")
    failed = cli(["calls", "list"], env, check=False)
    assert failed.returncode == 1 and "401" in failed.stderr
    env.pop("CALLWRIGHT_API_KEY")
    missing = cli(["calls", "list"], env, check=False)
    assert missing.returncode == 2 and "CALLWRIGHT_API_KEY" in missing.stderr
    bad = cli(
        ["calls", "send", "--to", "nope", "--task", "x"],
        client_env(server, server.initial_key()),
        check=False,
    )
    assert bad.returncode == 1 and "phone_number" in bad.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    import sqlite3

    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWRIGHT_")}
    env["CALLWRIGHT_DATA_DIR"] = str(tmp_path)
    cli(["db", "upgrade"], env)
    cli(["db", "upgrade"], env)  # idempotent
    with sqlite3.connect(tmp_path / "callwright.db") as conn:
        tables = {
            row[0] for row in conn.execute("select name from sqlite_master where type='table'")
        }
    assert {"orgs", "api_keys", "calls", "call_events", "alembic_version"} <= tables


def test_numbers_add_update_list(server: ServerProcess) -> None:
    env = {**client_env(server, server.initial_key()), "COLUMNS": "250"}
    added = cli(["numbers", "add", "+14155550111", "--prompt", "Answer for the clinic."], env)
    assert "Inserted 1 numbers." in added.stdout
    cli(
        ["numbers", "update", "+14155550111", "--voice", "joe", "--data", '{"max_duration": 5}'],
        env,
    )
    listing = cli(["numbers", "list"], env).stdout
    assert "+14155550111" in listing and "Answer for the clinic." in listing and "joe" in listing
    details = httpx.get(
        server.url + "/v1/inbound/+14155550111", headers={"authorization": server.initial_key()}
    ).json()
    assert details["max_duration"] == 5


REPO_ROOT = Path(__file__).resolve().parents[2]
LIBRARY = REPO_ROOT / "src" / "callwright" / "pathways" / "library"


def test_pathways_lint_import_export_list(server: ServerProcess, tmp_path: Path) -> None:
    env = client_env(server, server.initial_key())
    wide = {**env, "COLUMNS": "250"}
    clinic = LIBRARY / "clinic_appointment.json"
    linted = cli(["pathways", "lint", str(clinic)], wide, check=False)
    assert linted.returncode == 0, linted.stdout  # warnings only
    assert "warning" in linted.stdout and "error(s)" in linted.stdout

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"nodes": [{"id": "a", "type": "Default", "data": {}}]}))
    failed = cli(["pathways", "lint", str(broken)], wide, check=False)
    assert failed.returncode == 1 and "error" in failed.stdout  # no start node
    not_json = tmp_path / "x.json"
    not_json.write_text("{nope")
    assert cli(["pathways", "lint", str(not_json)], wide, check=False).returncode == 1

    imported = cli(["pathways", "import", str(clinic), "--name", "Clinic"], env)
    pathway_id = imported.stdout.strip()
    exported = tmp_path / "out.json"
    cli(["pathways", "export", pathway_id, "-o", str(exported)], env)
    original = json.loads(clinic.read_text())
    again = json.loads(exported.read_text())
    assert again["nodes"] == original["nodes"] and again["edges"] == original["edges"]
    listing = cli(["pathways", "list"], wide).stdout
    assert "Clinic" in listing and "Demo: appointment" in listing, listing


def test_chat_with_the_demo_agent_in_the_terminal(server: ServerProcess) -> None:
    key = server.initial_key()
    env = client_env(server, key)
    listed = httpx.get(server.url + "/v1/pathway", headers={"authorization": key}).json()
    demo = next(p for p in listed if p["name"].startswith("Demo"))
    talk = subprocess.run(
        [sys.executable, "-m", "callwright.cli.main", "chat", "--pathway", demo["id"]],
        env={**env, "COLUMNS": "200"},
        input="I'd like to book an appointment\nMy name is Maria Lopez\n\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = talk.stdout
    assert out.count("agent>") >= 3, out
    assert "node:" in out and "(ask_name)" in out and "(ask_date)" in out
    assert "caller_name=" in out and "Maria Lopez" in out
