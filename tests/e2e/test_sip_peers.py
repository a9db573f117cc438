"""callwright's SIP user agent against real peers on loopback: sipp and baresip.

- sipp calls us with G.711 audio (its sample capture) and RFC 4733 keys: the call is
  answered, the audio and both keys reach ``on_call``, sipp's BYE ends it cleanly.
- sipp places 20 concurrent calls with audio: all answered, none failed.
- baresip calls us; the real conversation loop answers with a scripted agent whose
  "voice" is a 440 Hz tone: baresip's recording of what it heard carries that tone, and
  we heard baresip's 1 kHz tone.
"""

from __future__ import annotations

import asyncio
import shutil
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callwright.conversation.loop import CallLoop
from callwright.conversation.ports import CallerAudio, Pcm, PortEvent, TranscriptLine
from callwright.dispatch.sip import SipPort
from callwright.telephony.rtp_session import CallEnded, CallerDigit, CallerFrame
from callwright.telephony.sip_call import InboundCall, SipCall
from callwright.telephony.sip_ua import UserAgent
from tests.conftest import free_port, need_peer

pytestmark = [pytest.mark.e2e, pytest.mark.peer]

SCENARIOS = Path(__file__).parent / "sip"
PCAP_DIRS = [Path("/usr/share/sip-tester"), Path("/usr/share/sipp"), Path("/usr/local/share/sipp")]
BARESIP_MODULES = [Path("/usr/lib/baresip/modules"), Path("/usr/local/lib/baresip/modules")]


def pcap_dir() -> Path | None:
    return next((d for d in PCAP_DIRS if (d / "g711a.pcap").exists()), None)


@dataclass
class Heard:
    """What ``on_call`` saw of each call."""

    calls: list[InboundCall] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    loud: list[int] = field(default_factory=list)
    digits: list[list[str]] = field(default_factory=list)
    ended: list[bool] = field(default_factory=list)

    async def on_call(self, call: SipCall, info: InboundCall) -> None:
        self.calls.append(info)
        frames = loud = 0
        digits: list[str] = []
        ended = False
        async for event in call.events():
            if isinstance(event, CallerFrame):
                frames += 1
                loud += int(np.abs(event.pcm).max() > 300)
                await call.send(np.zeros(160, dtype=np.int16))
            elif isinstance(event, CallerDigit):
                digits.append(event.digit)
            elif isinstance(event, CallEnded):
                ended = True
        self.frames.append(frames)
        self.loud.append(loud)
        self.digits.append(digits)
        self.ended.append(ended)


@pytest.fixture
async def ua_factory() -> AsyncIterator[Any]:
    agents: list[UserAgent] = []

    async def make(**kwargs: Any) -> UserAgent:
        ua = UserAgent(
            listen=f"udp:127.0.0.1:{free_port()}",
            advertise="127.0.0.1",
            rtp_host="127.0.0.1",
            rtp_ports=(44000, 45999),
            **kwargs,
        )
        await ua.start()
        agents.append(ua)
        return ua

    yield make
    for ua in agents:
        await ua.close()


async def run_sipp(ua: UserAgent, workdir: Path, calls: int, timeout: float = 45.0) -> int:
    pcaps = pcap_dir()
    assert pcaps is not None
    (workdir / "pcap").symlink_to(pcaps, target_is_directory=True)
    args = [
        "sipp",
        "-sf",
        str(SCENARIOS / "uac_media_dtmf.xml"),
        f"127.0.0.1:{ua.port}",
        "-s",
        "+15550100",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mp",
        str(free_port()),
        "-m",
        str(calls),
        "-l",
        str(calls),
        "-r",
        str(calls),
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
    ]
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=workdir,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        return await asyncio.wait_for(process.wait(), timeout + 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def sipp_errors(workdir: Path) -> str:
    return "\n".join(log.read_text()[-2000:] for log in workdir.glob("*errors.log"))


def need_sipp() -> None:
    need_peer("sipp", shutil.which("sipp") is not None, "apt-get install sip-tester")
    need_peer("sipp sample captures", pcap_dir() is not None, "sip-tester's g711a.pcap")


async def wait_for(condition: Any, tries: int = 500) -> None:
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)


async def test_sipp_call_with_audio_and_dtmf(ua_factory: Any, tmp_path: Path) -> None:
    need_sipp()
    heard = Heard()
    ua = await ua_factory(on_call=heard.on_call)
    code = await run_sipp(ua, tmp_path, calls=1)
    await wait_for(lambda: len(heard.ended) == 1)
    assert code == 0, sipp_errors(tmp_path)
    assert heard.calls[0].to_number == "+15550100"
    assert heard.ended == [True]
    assert heard.digits == [["1", "2"]]
    assert heard.frames[0] >= 100  # about 3 s of 20 ms frames
    assert heard.loud[0] >= 25  # sipp's capture is speech, with pauses
    assert ua.stats.malformed == 0 and not ua.calls


async def test_sipp_twenty_concurrent_calls(ua_factory: Any, tmp_path: Path) -> None:
    need_sipp()
    heard = Heard()
    ua = await ua_factory(on_call=heard.on_call, max_calls=40)
    code = await run_sipp(ua, tmp_path, calls=20)
    await wait_for(lambda: len(heard.ended) == 20)
    assert code == 0, sipp_errors(tmp_path)
    assert ua.stats.calls_in == 20 and ua.stats.overload == 0
    assert heard.ended == [True] * 20
    assert all(d == ["1", "2"] for d in heard.digits)
    assert min(heard.loud) >= 25
    assert not ua.calls


# -- baresip and the conversation loop ------------------------------------------------------
class CountingPort(SipPort):
    """The production port, counting the loud caller frames."""

    def __init__(self, call: SipCall) -> None:
        super().__init__(call)
        self.loud = 0

    async def events(self) -> AsyncIterator[PortEvent]:
        async for event in super().events():
            if isinstance(event, CallerAudio):
                self.loud += int(np.abs(event.pcm).max() > 1000)
            yield event


TONE_HZ = 440
RATE = 8000


class ToneTts:
    """Speaks each word as 300 ms of a 440 Hz tone."""

    sample_rate = RATE

    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        t = np.arange(RATE * 3 // 10) / RATE
        for _ in text.split():
            await asyncio.sleep(0)
            yield (6000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)


class Greeter:
    async def _say(self, text: str) -> AsyncIterator[Any]:
        await asyncio.sleep(0)
        yield text

    def greet(self) -> AsyncIterator[Any]:
        return self._say("hello there friend")

    def reply(self, caller_text: str) -> AsyncIterator[Any]:
        return self._say("okay")

    def keypress(self, digit: str) -> AsyncIterator[Any]:
        return self._say("okay")

    def reprompt(self) -> AsyncIterator[Any]:
        return self._say("okay")


class Deaf:
    """No speech is ever detected, so the greeting plays out uninterrupted."""

    def probability(self, pcm16k: Pcm) -> float:
        return 0.0

    async def transcribe(self, pcm16k: Pcm) -> str:
        return ""


@dataclass
class Lines:
    lines: list[TranscriptLine] = field(default_factory=list)

    async def transcript(self, line: TranscriptLine) -> None:
        self.lines.append(line)

    async def event(self, type: str, message: str, data: dict[str, Any] | None = None) -> None:
        return None


def write_tone(path: Path, hz: int, seconds: float) -> None:
    t = np.arange(int(RATE * seconds)) / RATE
    samples = (8000 * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())


def tone_frames(samples: np.ndarray[Any, np.dtype[np.int16]], hz: int) -> int:
    """20 ms frames whose strongest frequency is ``hz`` (within 25 Hz) and are not quiet."""
    found = 0
    for start in range(0, len(samples) - 160, 160):
        frame = samples[start : start + 160].astype(np.float64)
        if np.sqrt(np.mean(frame**2)) < 500:
            continue
        spectrum = np.abs(np.fft.rfft(frame * np.hanning(160), n=1600))
        peak = np.argmax(spectrum) * RATE / 1600
        found += int(abs(peak - hz) <= 25)
    return found


async def test_baresip_calls_the_agent(ua_factory: Any, tmp_path: Path) -> None:
    need_peer("baresip", shutil.which("baresip") is not None, "apt-get install baresip")
    modules = next((d for d in BARESIP_MODULES if (d / "sndfile.so").exists()), None)
    need_peer("baresip modules aufile+sndfile", modules is not None)
    ports: list[CountingPort] = []
    results: list[Any] = []

    async def on_call(call: SipCall, info: InboundCall) -> None:
        port = CountingPort(call)
        ports.append(port)
        loop = CallLoop(port, Greeter(), stt=Deaf(), tts=ToneTts(), vad=Deaf(), sink=Lines())
        results.append(await loop.run())

    ua = await ua_factory(on_call=on_call)
    write_tone(tmp_path / "caller.wav", 1000, 3.0)
    (tmp_path / "rec").mkdir()
    (tmp_path / "accounts").write_text("<sip:bob@127.0.0.1>;regint=0\n")
    (tmp_path / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                f"sip_listen 127.0.0.1:{free_port()}",
                f"audio_source aufile,{tmp_path / 'caller.wav'}",
                "audio_player aufile,/dev/null",
                "audio_alert aufile,/dev/null",
                "audio_srate 8000",
                "audio_channels 1",
                f"snd_path {tmp_path / 'rec'}",
                f"module_path {modules}",
                "module g711.so",
                "module aufile.so",
                "module sndfile.so",
                "module account.so",
                "module menu.so",
                "",
            ]
        )
    )
    with (tmp_path / "baresip.log").open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            "baresip",
            "-f",
            str(tmp_path),
            "-e",
            f"/dial sip:+15550100@127.0.0.1:{ua.port}",
            "-t",
            "12",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        # baresip hangs up when its file ends but lingers until -t: stop it then.
        await wait_for(lambda: len(results) == 1 or process.returncode is not None, 3000)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
    log = (tmp_path / "baresip.log").read_text(errors="replace")[-3000:]
    assert len(results) == 1, log
    assert results[0].ended_by == "caller"  # baresip hung up when its file ended
    assert ports[0].loud >= 100  # we heard most of baresip's 3 s tone
    recorded = list((tmp_path / "rec").glob("*-dec.wav"))
    assert len(recorded) == 1
    with wave.open(str(recorded[0])) as heard_by_baresip:
        rate = heard_by_baresip.getframerate()
        samples = np.frombuffer(heard_by_baresip.readframes(heard_by_baresip.getnframes()), "<i2")
    assert rate == RATE
    assert 2.0 <= len(samples) / RATE <= 4.0  # the length of the call
    # The greeting is three "words" of 300 ms each: 45 frames of tone, give or take.
    assert 35 <= tone_frames(samples, TONE_HZ) <= 50
    assert not ua.calls
