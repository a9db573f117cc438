"""P1, platform-added latency: end-of-speech decision -> first agent audio frame sent.

One call through the phone path (mu-law in through a jitter buffer, mu-law out, real
Silero VAD at the port's 8 kHz, call recording), with zero-latency fake STT, agent and
TTS, so what is timed is the loop's own work. The caller speaks the six Asterisk
prompts, each followed by 1.8 s of silence, in real time; the first ``--warmup-turns``
answered turns are dropped. See ``voice_common`` for the measurement points.

    flock /tmp/cw-bench.lock .venv/bin/python bench/voice_p1.py --turns 100 \
        --out bench/results/voice_p1.json
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import asdict
from typing import Any

from voice_common import (
    DEFAULT_AUDIO,
    RATE,
    CountingSink,
    InstantStt,
    InstantTts,
    OneSentenceAgent,
    PhonePort,
    Probe,
    build_script,
    env_info,
    load_utterances,
    pct,
    probe_loop,
    save,
    start_conditions,
    turn_stats,
)

from callwright.conversation.adapters import DetectorActivity
from callwright.conversation.loop import CallLoop
from callwright.conversation.turns import TurnConfig
from callwright.media import CallRecorder
from callwright.providers.speech import SileroVADModel


async def p1(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    utts = load_utterances(args.audio_dir)
    n_turns = args.turns + args.warmup_turns
    script = build_script(utts, n_turns, args.gap_secs, 0.5, rng)
    model = SileroVADModel()
    probe = Probe()
    port = PhonePort(script, probe, start_at=time.monotonic() + 0.05)
    sink, stt, tts = CountingSink(), InstantStt(), InstantTts(args.reply_secs)
    recorder = CallRecorder(port.sample_rate)
    loop = CallLoop(
        port,
        OneSentenceAgent(),
        stt=stt,
        tts=tts,
        vad=DetectorActivity(model.detector(), RATE),
        sink=sink,
        turns=TurnConfig(end_silence_ms=args.end_silence_ms),
        wait_for_greeting=True,
        recorder=recorder,
    )
    probe_loop(loop, probe)
    t0 = time.monotonic()
    port.start_at = t0 + 0.05
    result = await loop.run()
    wall = time.monotonic() - t0
    platform_ms = [d["platform_ms"] for d in sink.latency if d.get("platform_ms") is not None]
    return {
        "test": "P1",
        "side": "callwright",
        "wall_s": round(wall, 1),
        "ended_by": result.ended_by,
        "frames": result.frames,
        "turns_spoken": n_turns,
        "turns_answered": len(probe.turns),
        "turns_reported": max(0, len(probe.turns) - args.warmup_turns),
        "warmup_turns_dropped": args.warmup_turns,
        "vad_stops_without_answer": probe.abandoned,
        "vad_stops_before_utterance_end": probe.mid_utterance,
        "stt_requests": stt.calls,
        "tts_requests": tts.requests,
        "reply_audio_s_per_answer": round(probe.reply_frames * 0.02 / max(1, len(probe.turns)), 3),
        **turn_stats(probe.turns, skip=args.warmup_turns),
        "loop_own_platform_ms": pct(platform_ms[args.warmup_turns :]),
        "input_lateness_ms": pct([x * 1000 for x in probe.lateness], (50, 99, 99.9)),
        "jitter_buffer": asdict(port.jitter.stats),
        "recording_s": round(recorder.num_samples / port.sample_rate, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--audio-dir", default=DEFAULT_AUDIO)
    ap.add_argument("--turns", type=int, default=100)
    ap.add_argument("--warmup-turns", type=int, default=3)
    ap.add_argument("--gap-secs", type=float, default=1.8)
    ap.add_argument("--reply-secs", type=float, default=1.0)
    ap.add_argument(
        "--end-silence-ms", type=int, default=200, help="endpointer end_silence (Pipecat stop_secs)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    start = start_conditions()
    res = asyncio.run(p1(args))
    save({**res, "env": env_info(args, start)}, args.out)


if __name__ == "__main__":
    main()
