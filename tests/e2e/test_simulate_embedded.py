"""``callwright simulate`` with the real embedded models: Piper speaks the caller's
lines, the call crosses G.711 mu-law at 8 kHz both ways, Silero endpoints, Whisper
transcribes, MiniLM steers the demo pathway, and Piper answers.

It checks what a user would: the call walks the booking scenario's nodes, the stored
caller transcript is what the script said (word error rate printed, at most 25%), what
the caller heard of the agent transcribes back to the agent's lines and the nodes'
text, and the call reads back through the API like any other.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from callwright.config import Settings
from callwright.conversation.runner import SpeechLoader
from callwright.conversation.simulate import Say, Script, SimulationResult, simulate
from callwright.media.resample import resample_block
from callwright.providers.speech.registry import speech_from_settings
from callwright.server import build_test_app, running_services
from callwright.store.pathway_models import Pathway

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DEMO = json.loads((REPO / "src/callwright/pathways/library/demo_appointment.json").read_text())
SCENARIO = next(
    s
    for s in json.loads((REPO / "tests/data/conversations/demo_appointment.json").read_text())[
        "scenarios"
    ]
    if s["name"] == "book_appointment"
)
MAX_WER = 0.25


def words(text: str) -> list[str]:
    """Lower case, punctuation dropped, "555-123" and "8am" split into two words each."""
    text = re.sub(r"(\d)(am|pm)\b", r"\1 \2", text.lower())
    return re.sub(r"[^a-z0-9' ]+", " ", text).replace("'", "").split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference's length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(len(ref), 1)


def test_wer() -> None:
    assert wer("a b c d", "a b c d") == 0.0
    assert wer("a b c d", "a x c") == 0.5
    assert wer("It's 555-123-4567.", "its 555 123 4567") == 0.0
    assert wer("From 8 AM to 5 PM.", "from 8am to 5pm") == 0.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Any, str, Settings]]:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/cw.db")
    async with running_services(settings, start_dispatcher=False) as (services, key):
        assert key is not None  # a fresh store: org "default", its key and the demo agent
        yield services, key, settings


async def test_booking_call_with_the_embedded_models(
    server: tuple[Any, str, Settings],
) -> None:
    services, key, settings = server
    async with services.db.session() as session:
        demo = (await session.execute(select(Pathway))).scalars().one()
    caller_lines = [t["caller"] for t in SCENARIO["turns"] if t["caller"]]
    script = Script(tuple(Say(line) for line in caller_lines), gap_ms=1000)
    speech = SpeechLoader(lambda: speech_from_settings(settings))
    started = time.monotonic()
    try:
        result = await simulate(
            services,
            script,
            org_id=demo.org_id,
            pathway_id=demo.id,
            realtime=False,
            speech=speech,
        )
        simulated = time.monotonic() - started
        stt = (await speech.get()).stt
        heard = [
            (await stt.transcribe(resample_block(pcm, 8000, 16000), 16000)).text
            for pcm in result.port.agent_turns()
        ]
    finally:
        await speech.aclose()
    report(result, caller_lines, heard, simulated)

    # The scenario's nodes, in order, from the stored pathway log.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_test_app(services)), base_url="http://test"
    ) as client:
        got = await client.get(f"/v1/calls/{result.call_id}", headers={"authorization": key})
        call = got.json()
        events = await client.get(
            f"/v1/calls/{result.call_id}/events", headers={"authorization": key}
        )
        recording = await client.get(
            httpx.URL(call["recording_url"]).path, headers={"authorization": key}
        )
    visited = []
    for entry in call["pathway_logs"]:
        node = entry.get("chosen_node_id")
        if node and (not visited or visited[-1] != node):
            visited.append(node)
    expected = [t["expect_node"] for t in SCENARIO["turns"]]
    assert [n for n in visited if n in expected] == expected, visited
    assert call["status"] == "completed" and result.ended_by == "agent"

    # The caller's stored lines are what the script said.
    user = [t["text"] for t in call["transcripts"] if t["user"] == "user"]
    caller_wer = wer(" ".join(caller_lines), " ".join(user))
    assert caller_wer <= MAX_WER, (caller_wer, user)

    # The agent's audio, as the caller heard it, says the agent's lines...
    agent = [t["text"] for t in call["transcripts"] if t["user"] == "assistant"]
    agent_wer = wer(" ".join(agent), " ".join(heard))
    assert agent_wer <= MAX_WER, (agent_wer, heard)
    # ...and those are the nodes' text (the static ones verbatim).
    texts = {n.get("id"): n.get("data", {}).get("text", "") for n in DEMO["nodes"]}
    for node in expected:
        if "{{" not in texts[node]:
            assert texts[node] in agent, node

    assert len(result.latencies) == len(caller_lines)
    assert recording.status_code == 200 and recording.content[:4] == b"RIFF"
    types = [e["type"] for e in events.json()["data"]]
    assert types.count("turn.latency") == len(caller_lines) and "status.completed" in types


def report(
    result: SimulationResult, caller_lines: list[str], heard: list[str], seconds: float
) -> None:
    user = [t["text"] for t in result.transcript if t["user"] == "user"]
    agent = [t["text"] for t in result.transcript if t["user"] == "assistant"]
    print(f"\nsimulated call {result.call_id} in {seconds:.1f} s, ended by {result.ended_by}")
    for line in result.transcript:
        print(f"  {line['user']:>9}: {line['text']}")
    for lat in result.latencies:
        print(f"  latency: {lat}")
    print(f"caller WER {wer(' '.join(caller_lines), ' '.join(user)):.1%}")
    print(f"agent WER {wer(' '.join(agent), ' '.join(heard)):.1%}; heard: {heard}")
