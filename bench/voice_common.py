"""Shared harness of the live-loop benchmarks (P1, P2/P6, P3): caller audio, a phone
port, zero-latency fakes, measurement points and statistics.

It mirrors the Pipecat peer harness (``shared/bench-peers/pipecat/bench_pipecat.py``)
so the two sides see the same caller, the same fakes and the same criteria:

- the caller is the same six Asterisk prompts (8 kHz, 16-bit), one prompt then
  ``gap`` seconds of silence, repeated in the same shuffled order (same seed, same
  shuffling), 20 ms frames paced in real time against an absolute clock;
- the zero-latency STT answers a fixed sentence, the agent answers one fixed sentence
  at once, and the fake TTS yields 1.0 s of audio (a 440 Hz tone) at once;
- the times are ``time.monotonic()`` at the same places: the end-of-speech decision,
  the port's ``send`` of the first frame of the reply, the moment the port hands the
  loop the utterance's last frame above -45 dBFS.

``PhonePort`` is a transport as a SIP leg would be: each 20 ms the caller's packet
(G.711 mu-law, encoded once up front, as the remote phone would) arrives, is decoded
and goes through a ``JitterBuffer``; the port hands the loop every frame that is due
(silence while the buffer fills), and mu-law-encodes every frame the loop sends.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
import wave
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callwright.conversation.ports import (
    CallerAudio,
    Pcm,
    PortEvent,
    ReplyItem,
    TranscriptLine,
)
from callwright.conversation.turns import CallerTurn, TurnAction, TurnTaker
from callwright.media import (
    JitterBuffer,
    JitterConfig,
    MediaPacket,
    ulaw_decode,
    ulaw_encode,
)

RATE = 8000
FRAME_MS = 20
FRAME = RATE * FRAME_MS // 1000
STEP = FRAME_MS / 1000
# The Pipecat harness's prompts, in its order (the shuffles index into this list).
PROMPTS = (
    "agent-loginok.wav",
    "conf-getpin.wav",
    "vm-undelete.wav",
    "queue-thankyou.wav",
    "hello-world.wav",
    "vm-passchanged.wav",
)
USER_TEXT = "I would like to check the status of my order please."
BOT_TEXT = "Sure, I can help you with your order today."
SPEECH_DBFS = -45.0
RESULTS = Path(__file__).parent / "results"
DEFAULT_AUDIO = os.environ.get("BENCH_AUDIO_DIR", "/tmp/pipecat-bench-audio")


# -- caller audio --------------------------------------------------------------------
@dataclass(frozen=True)
class Utterance:
    name: str
    frames: list[Pcm]
    last_speech: int  # index of the last frame above SPEECH_DBFS


def load_utterances(audio_dir: str) -> list[Utterance]:
    """The prompts cut into 20 ms frames, trimmed after their last speech frame."""
    out = []
    for name in PROMPTS:
        with wave.open(os.path.join(audio_dir, name), "rb") as wav:
            if (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) != (RATE, 2, 1):
                raise SystemExit(f"{name}: expected 8 kHz 16-bit mono")
            data = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.int16)
        data = np.concatenate([data, np.zeros((-len(data)) % FRAME, np.int16)])
        frames = [data[i : i + FRAME] for i in range(0, len(data), FRAME)]
        last = 0
        for i, chunk in enumerate(frames):
            rms = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2)))
            if 20 * np.log10(max(rms, 1.0) / 32768.0) > SPEECH_DBFS:
                last = i
        out.append(Utterance(name, frames[: last + 1], last))
    return out


@dataclass(frozen=True, slots=True)
class Step:
    wire: bytes  # the caller's mu-law packet
    utt: int  # turn number (-1 before the first)
    first: bool  # first frame of an utterance
    last_speech: bool  # last frame above SPEECH_DBFS


def build_script(
    utts: list[Utterance], n_turns: int, gap_s: float, offset_s: float, rng: random.Random
) -> list[Step]:
    """Offset silence, then n_turns x (utterance, gap): the Pipecat harness's script."""
    silence = ulaw_encode(np.zeros(FRAME, np.int16)).tobytes()
    wires = [[ulaw_encode(f).tobytes() for f in u.frames] for u in utts]
    script = [Step(silence, -1, False, False)] * int(round(offset_s * 1000 / FRAME_MS))
    gap = int(round(gap_s * 1000 / FRAME_MS))
    order = list(range(len(utts)))
    for t in range(n_turns):
        if t % len(order) == 0:
            rng.shuffle(order)
        u = order[t % len(order)]
        for i, wire in enumerate(wires[u]):
            script.append(Step(wire, t, i == 0, i == utts[u].last_speech))
        script.extend([Step(silence, t, False, False)] * gap)
    return script


def tone(seconds: float, rate: int = RATE) -> Pcm:
    t = np.arange(int(rate * seconds)) / rate
    return (0.1 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


# -- per-call bookkeeping (outside the code being measured) ---------------------------
@dataclass
class Probe:
    """What one call saw, stamped with ``time.monotonic()``."""

    window: tuple[float, float] = (0.0, float("inf"))
    cur_utt: int = -1
    speech_end: dict[int, float] = field(default_factory=dict)  # utt -> last speech frame
    pending: dict[str, Any] | None = None
    turns: list[dict[str, Any]] = field(default_factory=list)
    abandoned: int = 0  # a turn ended again before the previous one was answered
    mid_utterance: int = 0  # a turn ended before the utterance's last speech frame
    lateness: list[float] = field(default_factory=list)  # caller frame due -> answered
    feed_late: list[float] = field(default_factory=list)  # port wake-up lateness
    reply_frames: int = 0

    def in_window(self, t: float) -> bool:
        return self.window[0] <= t < self.window[1]

    def turn_ended(self) -> None:
        now = time.monotonic()
        if self.pending is not None:
            self.abandoned += 1
        end = self.speech_end.get(self.cur_utt)
        if end is None:
            self.mid_utterance += 1
        self.pending = {"utt": self.cur_utt, "vad_stop": now, "speech_end": end}

    def audio_sent(self, now: float) -> None:
        self.reply_frames += 1
        if self.pending is not None:
            rec, self.pending = self.pending, None
            rec["out"] = now
            self.turns.append(rec)


class ProbedTurnTaker(TurnTaker):
    """Stamps the end-of-speech decision: the frame on which the endpointer's
    end_silence ran out and the turn-taker handed the loop a ``CallerTurn``."""

    probe: Probe

    def frame(self, speech_probability: float) -> list[TurnAction]:
        actions = super().frame(speech_probability)
        if actions and any(isinstance(a, CallerTurn) for a in actions):
            self.probe.turn_ended()
        return actions


def probe_loop(loop: Any, probe: Probe) -> None:
    """Swap the loop's turn-taker for one that stamps turn ends (same config)."""
    taker = ProbedTurnTaker(loop.turns.config)
    taker.probe = probe
    loop.turns = taker


# -- the transport -----------------------------------------------------------------
class PhonePort:
    """A phone leg: mu-law packets in through a jitter buffer, mu-law out, real time."""

    sample_rate = RATE

    def __init__(self, script: Sequence[Step], probe: Probe, *, start_at: float) -> None:
        self.script = script
        self.probe = probe
        self.start_at = start_at
        self.jitter = JitterBuffer(JitterConfig(sample_rate=RATE))
        self._due: deque[float] = deque()  # due time of each frame handed over, unanswered
        self._silence = np.zeros(FRAME, np.int16)
        self.sent_bytes = 0
        self.wire_out: bytes = b""

    async def events(self) -> AsyncIterator[PortEvent]:
        probe, jitter, script = self.probe, self.jitter, self.script
        slot = 0  # the next jitter-buffer slot == script index
        for k, step in enumerate(script):
            due = self.start_at + k * STEP
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
                now = time.monotonic()
            if probe.in_window(due):
                probe.feed_late.append(now - due)
            # The packet arrived on time; playout decisions run on the sender's clock.
            jitter.push(MediaPacket(k & 0xFFFF, k * FRAME, ulaw_decode(step.wire)), due)
            handed = False
            while (played := jitter.pop(due)) is not None:
                played_step = script[slot]
                slot += 1
                if played_step.first:
                    probe.cur_utt = played_step.utt
                self._due.append(due)
                handed = True
                yield CallerAudio(played.frame.samples)
                if played_step.last_speech:
                    probe.speech_end[played_step.utt] = time.monotonic()
            if not handed:
                self._due.append(due)
                yield CallerAudio(self._silence)

    async def send(self, pcm: Pcm) -> None:
        now = time.monotonic()
        self.wire_out = ulaw_encode(pcm).tobytes()  # what would go into the RTP packet
        self.sent_bytes += len(self.wire_out)
        if pcm.any():
            self.probe.audio_sent(now)
        if self._due:
            due = self._due.popleft()
            if self.probe.in_window(due):
                self.probe.lateness.append(now - due)

    async def send_digits(self, digits: str) -> None:
        return None

    async def transfer(self, number: str) -> None:
        return None

    async def hang_up(self) -> None:
        return None


# -- zero-latency fakes ----------------------------------------------------------------
class InstantStt:
    """Answers the fixed sentence at once (empty audio: nothing heard)."""

    def __init__(self) -> None:
        self.calls = 0

    async def transcribe(self, pcm16k: Pcm) -> str:
        self.calls += 1
        return USER_TEXT if len(pcm16k) else ""


class OneSentenceAgent:
    """Answers every caller turn with one fixed sentence, at once."""

    def __init__(self, text: str = BOT_TEXT) -> None:
        self.text = text
        self.heard = 0

    async def _say(self, text: str) -> AsyncIterator[ReplyItem]:
        yield text

    async def _nothing(self) -> AsyncIterator[ReplyItem]:
        return
        yield

    def greet(self) -> AsyncIterator[ReplyItem]:
        return self._nothing()

    def reply(self, caller_text: str) -> AsyncIterator[ReplyItem]:
        self.heard += 1
        return self._say(self.text)

    def keypress(self, digit: str) -> AsyncIterator[ReplyItem]:
        return self._nothing()

    def reprompt(self) -> AsyncIterator[ReplyItem]:
        return self._say("Are you still there?")


class InstantTts:
    """Yields ``seconds`` of audio at once per request, at the port's rate (like
    Pipecat's FakeTTS, which yields 1.0 s as 20 ms chunks without waiting)."""

    sample_rate = RATE

    def __init__(self, seconds: float = 1.0) -> None:
        self.audio = tone(seconds)
        self.requests = 0

    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        self.requests += 1
        yield self.audio


class CountingSink:
    """Keeps the transcript and the latency events, counts the rest."""

    def __init__(self) -> None:
        self.lines: list[TranscriptLine] = []
        self.latency: list[dict[str, Any]] = []
        self.events = 0

    async def transcript(self, line: TranscriptLine) -> None:
        self.lines.append(line)

    async def event(self, type: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.events += 1
        if type == "turn.latency" and data is not None:
            self.latency.append(data)


# -- statistics and environment --------------------------------------------------------
def pct(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values, dtype=float)
    out = {f"p{q:g}": round(float(np.percentile(a, q)), 2) for q in qs}
    out.update(
        mean=round(float(a.mean()), 2),
        min=round(float(a.min()), 2),
        max=round(float(a.max()), 2),
        n=len(values),
    )
    return out


def turn_stats(turns: list[dict[str, Any]], skip: int = 0) -> dict[str, dict[str, float]]:
    kept = turns[skip:]

    def ms(a: str, b: str) -> list[float]:
        return [(r[b] - r[a]) * 1000 for r in kept if r.get(a) is not None and b in r]

    return {
        "vad_stop_to_first_audio_ms": pct(ms("vad_stop", "out")),
        "last_speech_frame_to_first_audio_ms": pct(ms("speech_end", "out")),
        "last_speech_frame_to_vad_stop_ms": pct(ms("speech_end", "vad_stop")),
    }


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    t = os.times()
    return t.user + t.system


def start_conditions(secs: float = 2.0) -> dict[str, Any]:
    """The load average, and the machine-wide CPU busy % over ``secs`` (from /proc/stat,
    as the Pipecat harness), just before a run starts."""

    def snap() -> tuple[int, int]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]

    with open("/proc/loadavg") as load:
        loadavg = load.read().strip()
    t0, i0 = snap()
    time.sleep(secs)
    t1, i1 = snap()
    busy = round(100.0 * (1 - (i1 - i0) / max(1, t1 - t0)), 1)
    return {"loadavg_at_start": loadavg, "machine_busy_pct_2s_before_start": busy}


def env_info(args: Any, start: dict[str, Any]) -> dict[str, Any]:
    import onnxruntime

    cpu = platform.processor()
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    here = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "git_head": commit,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **start,
        "args": vars(args),
    }


def save(result: dict[str, Any], out: str | None) -> None:
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
