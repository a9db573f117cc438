"""A conversation writes its record into the store as it goes, and the Calls API shows
it in the reference's shapes (transcripts, concatenated_transcript, pathway_logs)."""

from __future__ import annotations

from tests.integration.conftest import Api
from tests.unit.conversation.fakes import (
    CodeStt,
    LevelTts,
    LevelVad,
    ScriptedAgent,
    ScriptedPort,
)

from callwright.conversation.loop import CallLoop
from callwright.conversation.ports import EndCall, Note
from callwright.conversation.turns import TurnConfig
from callwright.store import calls
from callwright.store.call_record import CallRecordSink


async def test_a_conversation_leaves_its_record(api: Api) -> None:
    sent = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550123", "task": "book"}, headers=api.a()
    )
    call_id = sent.json()["call_id"]
    async with api.services.db.transaction() as session:
        call = await calls.lock_call(session, call_id)
        assert call is not None
        now = api.services.clock.now()
        await calls.transition(session, call, "allocated", now, "allocated")
        await calls.transition(session, call, "in-progress", now, "answered")

    agent = ScriptedAgent(
        greeting=["Hello, Elm Clinic."],
        replies={
            "i need an appointment": [
                Note(
                    "pathway.log",
                    "Entered Booking",
                    {"role": "assistant", "chosen_node_id": "book", "decision": {"edge": "e1"}},
                ),
                "Sure, what day?",
                EndCall(),
            ]
        },
    )
    port = ScriptedPort([("quiet", 10), ("say", "i need an appointment", 40), ("quiet", 100)])
    loop = CallLoop(
        port,
        agent,
        stt=CodeStt(port),
        tts=LevelTts(),
        vad=LevelVad(),
        sink=CallRecordSink(api.services.db, api.services.clock, call_id),
        turns=TurnConfig(silence_timeout_ms=None),
    )
    assert (await loop.run()).ended_by == "agent"

    got = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert [(t["id"], t["user"], t["text"]) for t in got["transcripts"]] == [
        (1, "assistant", "Hello, Elm Clinic."),
        (2, "user", "i need an appointment"),
        (3, "assistant", "Sure, what day?"),
    ]
    assert got["concatenated_transcript"] == (
        "assistant: Hello, Elm Clinic. \nuser: i need an appointment \n"
        "assistant: Sure, what day? \n"
    )
    assert got["pathway_logs"][0]["chosen_node_id"] == "book"
    assert got["pathway_logs"][0]["decision"] == '{"edge":"e1"}'

    events = (await api.client.get(f"/v1/calls/{call_id}/events", headers=api.a())).json()
    items = events["data"] if isinstance(events, dict) else events
    types = [e["type"] for e in items]
    assert types.count("transcript.user") == 1 and types.count("transcript.assistant") == 2
    latency = [e for e in items if e["type"] == "turn.latency"]
    assert latency and latency[0]["category"] == "performance"
    assert types[-1] == "conversation.ended"
    seqs = [e["seq"] for e in items]
    assert seqs == list(range(1, len(seqs) + 1))

    # Other orgs see none of it.
    assert (await api.client.get(f"/v1/calls/{call_id}", headers=api.b())).status_code == 404
