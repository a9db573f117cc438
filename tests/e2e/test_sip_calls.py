"""Phone calls end to end: a real ``callwright serve`` with SIP enabled, real peers on
loopback, the embedded speech models on both sides.

- baresip calls an inbound number configured through the API (the demo pathway): what
  baresip recorded contains the agent's greeting (transcribed with the embedded
  Whisper) and the call record has the caller's words (Piper speech baresip played).
- The agent calls baresip through a trunk pointed at it (``POST /v1/calls``): ringing,
  in progress, completed, with a transcript, events and a recording.
- Refusals: an unknown number gets 404, a blocked caller 403, a number without an agent
  480; ``/metrics`` counts them.
- sipp presses 1 (RFC 4733) in a pathway menu: the pathway takes the "1" branch.
- Limits, in process with a scripted conversation: beyond the org's limit an INVITE is
  refused 486 and recorded; beyond the process's capacity 503 with Retry-After; a stop
  requested through the store hangs the call up and completes it.

The server is started once for the module and warmed up by one call, so every test
meets loaded models.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from callwright.clock import SystemClock
from callwright.conversation.loop import LoopResult
from callwright.conversation.ports import AudioPort, CallerHungUp
from callwright.dispatch.inbound import InboundCalls
from callwright.providers.speech import PiperTTS, WhisperSTT
from callwright.providers.speech._audio import resample
from callwright.store import calls, keys
from callwright.store.db import Database
from callwright.store.migrate import upgrade_async
from callwright.store.models import Call
from callwright.store.number_models import InboundNumber
from callwright.telephony.rtp_session import CallerFrame
from callwright.telephony.sip_call import DialFailed, DialTarget
from callwright.telephony.sip_ua import UserAgent
from tests.conftest import free_port, need_peer
from tests.e2e.serverproc import ServerProcess
from tests.e2e.sipkit import running_server, sip_env
from tests.e2e.test_sip_peers import BARESIP_MODULES, SCENARIOS, need_sipp, pcap_dir

pytestmark = pytest.mark.e2e
T = TypeVar("T")

RATE = 8000
DEMO_NUMBER = "+15550100"
MENU_NUMBER = "+15550111"
IDLE_NUMBER = "+15550133"  # inserted, no agent configured
CALLER = "+15550177"
BLOCKED_CALLER = "+15550142"
CALLEE = "+15551230000"  # baresip's account when the agent calls it
TRUNK_CALLER_ID = "+15550199"
CALLER_WORDS = "I'd like to book an appointment."
SERVER_RTP = (47000, 47999)
TEST_RTP = (48000, 48999)

MENU_PATHWAY: dict[str, Any] = {
    "name": "Keypad menu",
    "nodes": [
        {
            "id": "menu",
            "type": "Default",
            "data": {
                "name": "Menu",
                "isStart": True,
                "text": "Press 1 for sales, or 2 for support.",
            },
        },
        {
            "id": "sales",
            "type": "Default",
            "data": {"name": "Sales", "text": "You chose sales. Please hold for a moment."},
        },
        {
            "id": "support",
            "type": "Default",
            "data": {"name": "Support", "text": "You chose support. Please hold for a moment."},
        },
    ],
    "edges": [
        {
            "id": "menu-sales",
            "source": "menu",
            "target": "sales",
            "data": {"label": "1", "description": "The caller pressed 1 for sales."},
        },
        {
            "id": "menu-support",
            "source": "menu",
            "target": "support",
            "data": {"label": "2", "description": "The caller pressed 2 for support."},
        },
    ],
}


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 40.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


@dataclass
class Server:
    process: ServerProcess
    api: httpx.Client
    sip_port: int
    demo_pathway: str

    def call(self, call_id: str) -> dict[str, Any]:
        response = self.api.get(f"/v1/calls/{call_id}")
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def events(self, call_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/v1/calls/{call_id}/events")
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["data"]
        return found

    def inbound_calls(self, to: str) -> list[dict[str, Any]]:
        response = self.api.get("/v1/calls", params={"inbound": "true", "to_number": to})
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["calls"]
        return found

    def finished(self, call_id: str) -> dict[str, Any] | None:
        call = self.call(call_id)
        return call if call["status"] in ("completed", "failed", "no-answer", "busy") else None

    def configure(self, number: str, **agent: Any) -> None:
        inserted = self.api.post("/v1/inbound/insert", json={"numbers": [number]})
        assert inserted.status_code == 200, inserted.text
        if agent:
            updated = self.api.post(f"/v1/inbound/{number}", json=agent)
            assert updated.status_code == 200, updated.text


# -- fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    return PiperTTS()


@pytest.fixture(scope="module")
def whisper() -> WhisperSTT:
    return WhisperSTT()


@pytest.fixture(scope="module")
def caller_wav(tmp_path_factory: pytest.TempPathFactory, piper: PiperTTS) -> Path:
    """The caller: 5 s of silence (the greeting plays), the request, 7 s to hear the reply."""

    async def speak() -> np.ndarray[Any, np.dtype[np.int16]]:
        return np.concatenate([chunk.pcm async for chunk in piper.synthesize(CALLER_WORDS)])

    speech = resample(asyncio.run(speak()), piper.sample_rate, RATE)
    silence = np.zeros(RATE, dtype=np.int16)
    samples = np.concatenate([silence] * 5 + [speech] + [silence] * 7)
    path = tmp_path_factory.mktemp("speech") / "caller.wav"
    write_wav(path, samples)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with demo_server(tmp_path_factory, SERVER_RTP) as found:
        yield found


@contextlib.contextmanager
def demo_server(
    tmp_path_factory: pytest.TempPathFactory, rtp_ports: tuple[int, int]
) -> Iterator[Server]:
    """A server whose ``DEMO_NUMBER`` answers with the demo pathway, warmed up by one call
    (the models load before the calls that count); needs baresip like its callers."""
    need_baresip()
    sip_port = free_port()
    env = sip_env(sip_port, rtp_ports, SPEECH_THREADS="1")
    with running_server(tmp_path_factory.mktemp("server"), env) as (process, api):
        pathways = api.get("/v1/pathway").json()
        demo = next(p["id"] for p in pathways if p["name"].startswith("Demo"))
        found = Server(process, api, sip_port, demo)
        found.configure(DEMO_NUMBER, pathway_id=demo)
        asyncio.run(warm_up(found))
        yield found


async def warm_up(server: Server) -> None:
    """One call that waits for the greeting: the models are loaded after it."""
    ua = await make_ua()
    try:
        call = await ua.dial(
            DialTarget("127.0.0.1", server.sip_port, caller_id=CALLER), DEMO_NUMBER
        )
        async with asyncio.timeout(45):
            async for event in call.events():
                if isinstance(event, CallerFrame) and np.abs(event.pcm).max() > 1000:
                    break
        await call.hang_up()
        await call.media.close()
    finally:
        await ua.close()


async def make_ua() -> UserAgent:
    ua = UserAgent(
        listen=f"udp:127.0.0.1:{free_port()}",
        advertise="127.0.0.1",
        rtp_host="127.0.0.1",
        rtp_ports=TEST_RTP,
    )
    await ua.start()
    return ua


# -- peers --------------------------------------------------------------------------------
def baresip_modules() -> Path | None:
    return next((d for d in BARESIP_MODULES if (d / "sndfile.so").exists()), None)


def need_baresip() -> None:
    need_peer("baresip", shutil.which("baresip") is not None, "apt-get install baresip")
    need_peer("baresip modules aufile+sndfile", baresip_modules() is not None)


def write_wav(path: Path, samples: np.ndarray[Any, np.dtype[np.int16]]) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.astype("<i2").tobytes())


def read_wav(path: Path) -> np.ndarray[Any, np.dtype[np.int16]]:
    with wave.open(str(path)) as heard:
        assert heard.getframerate() == RATE
        return np.frombuffer(heard.readframes(heard.getnframes()), "<i2")


@dataclass
class Baresip:
    """A baresip that plays ``source`` into its calls and records what it hears."""

    workdir: Path
    source: Path
    user: str
    port: int = 0

    def configure(self) -> None:
        self.port = free_port()
        (self.workdir / "rec").mkdir()
        (self.workdir / "accounts").write_text(
            f"<sip:{self.user}@127.0.0.1>;regint=0;answermode=auto\n"
        )
        (self.workdir / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    f"sip_listen 127.0.0.1:{self.port}",
                    f"audio_source aufile,{self.source}",
                    "audio_player aufile,/dev/null",
                    "audio_alert aufile,/dev/null",
                    "audio_srate 8000",
                    "audio_channels 1",
                    f"snd_path {self.workdir / 'rec'}",
                    f"module_path {baresip_modules()}",
                    "module g711.so",
                    "module aufile.so",
                    "module sndfile.so",
                    "module account.so",
                    "module menu.so",
                    "",
                ]
            )
        )

    async def start(self, *commands: str, seconds: int) -> asyncio.subprocess.Process:
        self.configure()
        args = ["baresip", "-f", str(self.workdir), "-t", str(seconds)]
        for command in commands:
            args += ["-e", command]
        with (self.workdir / "baresip.log").open("wb") as output:
            return await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
            )

    def recording(self) -> Path | None:
        """What baresip heard, once the call is over (``-dec``: decoded from the wire)."""
        found = list((self.workdir / "rec").glob("*-dec.wav"))
        return found[0] if len(found) == 1 else None

    def log(self) -> str:
        return (self.workdir / "baresip.log").read_text(errors="replace")[-3000:]


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        await process.wait()


async def transcribe(whisper: WhisperSTT, path: Path) -> str:
    return (await whisper.transcribe(read_wav(path), RATE, language="en")).text


def user_text(call: dict[str, Any]) -> str:
    return " ".join(line["text"] for line in call["transcripts"] if line["user"] == "user")


def agent_text(call: dict[str, Any]) -> str:
    return " ".join(line["text"] for line in call["transcripts"] if line["user"] == "assistant")


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("status.") for e in events if e["type"].startswith("status.")]


def heard_request(text: str) -> bool:
    heard = set(words(text))
    return {"book", "appointment"} <= heard


# -- the tests ----------------------------------------------------------------------------
@pytest.mark.peer
@pytest.mark.slow
async def test_baresip_calls_an_inbound_number(
    server: Server, caller_wav: Path, whisper: WhisperSTT, tmp_path: Path
) -> None:
    baresip = Baresip(tmp_path, caller_wav, CALLER)
    before = {c["call_id"] for c in server.inbound_calls(DEMO_NUMBER)}
    process = await baresip.start(
        f"/dial sip:{DEMO_NUMBER}@127.0.0.1:{server.sip_port}", seconds=25
    )
    try:
        # baresip hangs up when its file ends (~15 s); the record then completes.
        call_id = await asyncio.to_thread(
            wait_for,
            "the inbound call",
            lambda: next(
                (
                    c["call_id"]
                    for c in server.inbound_calls(DEMO_NUMBER)
                    if c["call_id"] not in before
                ),
                None,
            ),
        )
        call = await asyncio.to_thread(
            wait_for, "the call to end", lambda: server.finished(call_id)
        )
    finally:
        await stop(process)
    recorded = baresip.recording()
    assert recorded is not None, baresip.log()
    heard = await transcribe(whisper, recorded)
    print(f"baresip heard: {heard!r}")
    print(f"call transcript: {call['concatenated_transcript']!r}")
    assert {"thanks", "calling", "dental"} <= set(words(heard)), heard
    assert call["status"] == "completed", call
    assert call["inbound"] is True
    assert call["from"] == CALLER and call["to"] == DEMO_NUMBER
    assert call["call_ended_by"] == "USER"
    assert heard_request(user_text(call)), call["transcripts"]
    assert "maple street dental" in agent_text(call).lower()
    assert statuses(server.events(call_id)) == ["allocated", "in-progress", "completed"]


@pytest.mark.peer
@pytest.mark.slow
async def test_agent_calls_baresip_through_a_trunk(
    server: Server, caller_wav: Path, tmp_path: Path
) -> None:
    baresip = Baresip(tmp_path, caller_wav, CALLEE)
    process = await baresip.start(seconds=40)
    try:
        trunk = server.api.post(
            "/v1/sip/trunks",
            json={
                "name": "baresip",
                "host": "127.0.0.1",
                "port": baresip.port,
                "caller_id": TRUNK_CALLER_ID,
            },
        )
        assert trunk.status_code == 200, trunk.text
        sent = server.api.post(
            "/v1/calls",
            json={
                "phone_number": CALLEE,
                "from": TRUNK_CALLER_ID,
                "pathway_id": server.demo_pathway,
                "record": True,
            },
        )
        assert sent.status_code == 200, sent.text
        call_id = sent.json()["call_id"]
        call = await asyncio.to_thread(
            wait_for, "the call to end", lambda: server.finished(call_id)
        )
    finally:
        await stop(process)
        deleted = server.api.delete(f"/v1/sip/trunks/{trunk.json()['data']['trunk_id']}")
        assert deleted.status_code == 200, deleted.text
    print(f"call transcript: {call['concatenated_transcript']!r}")
    assert call["status"] == "completed", call
    assert call["inbound"] is False and call["to"] == CALLEE
    assert call["call_ended_by"] == "USER", baresip.log()
    assert heard_request(user_text(call)), call["transcripts"]
    assert "maple street dental" in agent_text(call).lower()
    assert statuses(server.events(call_id)) == [
        "allocated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert call["recording_url"], call
    recording = server.api.get(f"/v1/recordings/{call_id}")
    assert recording.status_code == 200 and recording.content[:4] == b"RIFF"
    assert baresip.recording() is not None


@pytest.mark.peer
@pytest.mark.slow
async def test_unknown_blocked_and_unconfigured_numbers_are_refused(server: Server) -> None:
    server.configure(IDLE_NUMBER)
    blocked = server.api.post(
        "/v1/blocked_numbers", json={"numbers": [BLOCKED_CALLER], "is_global": True}
    )
    assert blocked.status_code == 200, blocked.text
    ua = await make_ua()
    refused: dict[str, int | None] = {}
    try:
        for name, caller, number in [
            ("unknown", CALLER, "+15559999999"),
            ("blocked", BLOCKED_CALLER, DEMO_NUMBER),
            ("no agent", CALLER, IDLE_NUMBER),
        ]:
            target = DialTarget("127.0.0.1", server.sip_port, caller_id=caller)
            with pytest.raises(DialFailed) as failed:
                await ua.dial(target, number, ring_timeout=10)
            refused[name] = failed.value.sip_status
    finally:
        await ua.close()
    assert refused == {"unknown": 404, "blocked": 403, "no agent": 480}
    metrics = server.api.get("/metrics").text
    for reason in ("unknown_number", "blocked", "no_agent"):
        assert re.search(
            rf'callwright_sip_requests_refused_total{{reason="{reason}"}} [1-9]', metrics
        ), reason
    assert not [c for c in server.inbound_calls(IDLE_NUMBER)]


@pytest.mark.peer
@pytest.mark.slow
async def test_sipp_keypress_drives_a_pathway_branch(server: Server, tmp_path: Path) -> None:
    need_sipp()
    created = server.api.post("/v1/pathway/create", json=MENU_PATHWAY)
    assert created.status_code == 200, created.text
    server.configure(MENU_NUMBER, pathway_id=created.json()["pathway_id"])
    pcaps = pcap_dir()
    assert pcaps is not None
    (tmp_path / "pcap").symlink_to(pcaps, target_is_directory=True)
    process = await asyncio.create_subprocess_exec(
        "sipp",
        "-sf",
        str(SCENARIOS / "uac_dtmf_menu.xml"),
        f"127.0.0.1:{server.sip_port}",
        "-s",
        MENU_NUMBER,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mp",
        str(free_port()),
        "-m",
        "1",
        "-timeout",
        "30s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        code = await asyncio.wait_for(process.wait(), 40)
    finally:
        await stop(process)
    errors = "\n".join(log.read_text()[-2000:] for log in tmp_path.glob("*errors.log"))
    assert code == 0, errors
    calls = server.inbound_calls(MENU_NUMBER)
    assert len(calls) == 1
    call_id = calls[0]["call_id"]
    call = await asyncio.to_thread(wait_for, "the call to end", lambda: server.finished(call_id))
    events = server.events(call_id)
    print(f"call transcript: {call['concatenated_transcript']!r}")
    assert call["status"] == "completed", call
    assert [e["data"]["digit"] for e in events if e["type"] == "call.dtmf"] == ["1"]
    spoken = agent_text(call).lower()
    assert "press 1 for sales" in spoken and "you chose sales" in spoken, spoken
    assert "you chose support" not in spoken


# -- limits and stop, in process ------------------------------------------------------------
class Listener:
    """A conversation that listens until the line drops."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def __call__(self, port: AudioPort, call_id: str) -> LoopResult:
        self.started.set()
        frames = 0
        async for event in port.events():
            if isinstance(event, CallerHungUp):
                break
            frames += 1
            await port.send(np.zeros(160, dtype=np.int16))
        return LoopResult("caller", frames)


async def test_org_limit_overload_and_stop(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'cw.db'}")
    await upgrade_async(db.url)
    clock = SystemClock()
    async with db.transaction() as session:
        org = await keys.get_or_create_org(session, "default", clock.now())
        session.add(
            InboundNumber(
                id=str(uuid.uuid4()),
                org_id=org.id,
                phone_number=DEMO_NUMBER,
                config={"prompt": "Answer the phone.", "first_sentence": "Hello."},
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    converse = Listener()
    inbound = InboundCalls(db, clock, converse, worker_id="w1", lease_seconds=30, per_org_limit=1)
    server = UserAgent(
        listen=f"udp:127.0.0.1:{free_port()}",
        advertise="127.0.0.1",
        rtp_host="127.0.0.1",
        rtp_ports=TEST_RTP,
        admit=inbound.admit,
        on_call=inbound.on_call,
        max_calls=2,
        retry_after=7,
    )
    await server.start()
    caller = await make_ua()
    target = DialTarget("127.0.0.1", server.port, caller_id=CALLER)
    try:
        first = await caller.dial(target, DEMO_NUMBER)
        await asyncio.wait_for(converse.started.wait(), 5)
        with pytest.raises(DialFailed) as org_busy:
            await caller.dial(target, DEMO_NUMBER)
        # Capacity down to the one live call: the user agent answers 503 before admit.
        server.max_calls = 1
        with pytest.raises(DialFailed) as overloaded:
            await caller.dial(target, DEMO_NUMBER)
        async with db.transaction() as session:
            live = await session.execute(select(Call).where(Call.status == "in-progress"))
            row = live.scalar_one()
            row.stop_requested = True
        await inbound.renew_once()
        async with asyncio.timeout(5):
            await first.ended.wait()
        for _ in range(100):
            if not inbound.live:
                break
            await asyncio.sleep(0.02)
        await first.media.close()
    finally:
        await caller.close()
        await server.close()
    assert org_busy.value.sip_status == 486
    assert overloaded.value.sip_status == 503
    assert server.stats.overload == 1 and inbound.stats.org_limit == 1
    assert first.ended_by == "remote"
    async with db.session() as session:
        rows = (await session.execute(select(Call).order_by(Call.created_at))).scalars().all()
        answered, refused = rows
        events = await calls.list_events(session, org.id, answered.id)
    await db.close()
    assert answered.inbound and answered.status == "completed"
    assert answered.call_ended_by == "ASSISTANT" and answered.from_number == CALLER
    assert answered.params["task"] == "Answer the phone."
    assert [e.type for e in events if e.type.startswith("status.")] == [
        "status.allocated",
        "status.in-progress",
        "status.completed",
    ]
    assert events[-1].message == "Call ended by API request."
    assert refused.inbound and refused.status == "failed"
    assert "max_calls_per_org" in (refused.error_message or "")
