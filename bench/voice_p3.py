"""P3, embedded voice-to-voice: end-of-speech -> first agent audio with the embedded
models (Whisper tiny.en int8 through faster-whisper, Piper "joe", Silero VAD) and a
static-text agent, on this machine's CPU.

One call through the phone path (mu-law 8 kHz in through a jitter buffer, mu-law
out, call recording). The caller speaks the six Asterisk prompts, each followed by
``--gap-secs`` of silence, long enough for the agent's answer to be heard out (no
barge-in); the first ``--warmup-turns`` answered turns are dropped. Also reported:
each model's load time and resident-memory growth, the process's peak RSS, and the
loop's own per-turn latency breakdown (its ``turn.latency`` events: STT, agent first
text, TTS first audio) and what Whisper heard.

    flock /tmp/cw-bench.lock .venv/bin/python bench/voice_p3.py --turns 20 \
        --out bench/results/voice_p3.json
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from voice_common import (
    BOT_TEXT,
    DEFAULT_AUDIO,
    RATE,
    CountingSink,
    OneSentenceAgent,
    PhonePort,
    Probe,
    build_script,
    env_info,
    load_utterances,
    pct,
    probe_loop,
    rss_mb,
    save,
    start_conditions,
    turn_stats,
)

from callwright.conversation.adapters import (
    DetectorActivity,
    SpeechSynthesizer,
    SpeechTranscriber,
)
from callwright.conversation.loop import CallLoop
from callwright.conversation.turns import TurnConfig
from callwright.media import CallRecorder
from callwright.providers.speech import PiperTTS, SileroVADModel, WhisperSTT


def load(loads: dict[str, dict[str, float]], label: str, build: Callable[[], Any]) -> Any:
    before, start = rss_mb(), time.perf_counter()
    model = build()
    loads[label] = {
        "seconds": round(time.perf_counter() - start, 2),
        "rss_mb_added": round(rss_mb() - before, 1),
    }
    return model


async def p3(args: argparse.Namespace) -> dict[str, Any]:
    rss_start = rss_mb()
    loads: dict[str, dict[str, float]] = {}
    whisper: WhisperSTT = load(loads, "whisper_tiny_en_int8", WhisperSTT)
    piper: PiperTTS = load(loads, "piper_joe", PiperTTS)
    silero: SileroVADModel = load(loads, "silero_vad", SileroVADModel)
    rss_loaded = rss_mb()

    rng = random.Random(args.seed)
    utts = load_utterances(args.audio_dir)
    n_turns = args.turns + args.warmup_turns
    script = build_script(utts, n_turns, args.gap_secs, 0.5, rng)
    probe = Probe()
    port = PhonePort(script, probe, start_at=0.0)
    sink = CountingSink()
    loop = CallLoop(
        port,
        OneSentenceAgent(BOT_TEXT),
        stt=SpeechTranscriber(whisper),
        tts=SpeechSynthesizer(piper),
        vad=DetectorActivity(silero.detector(), RATE),
        sink=sink,
        turns=TurnConfig(end_silence_ms=args.end_silence_ms),
        wait_for_greeting=True,
        recorder=CallRecorder(RATE),
    )
    probe_loop(loop, probe)
    rss_peak = rss_loaded

    async def watch_rss() -> None:
        nonlocal rss_peak
        while True:
            await asyncio.sleep(0.5)
            rss_peak = max(rss_peak, rss_mb())

    watcher = asyncio.create_task(watch_rss())
    t0 = time.monotonic()
    port.start_at = t0 + 0.05
    result = await loop.run()
    wall = time.monotonic() - t0
    watcher.cancel()
    await whisper.aclose()
    await piper.aclose()

    skip = args.warmup_turns
    lat = sink.latency[skip:]

    def field(name: str) -> list[float]:
        return [float(d[name]) for d in lat if d.get(name) is not None]

    heard = [line.text for line in sink.lines if line.speaker == "user"]
    return {
        "test": "P3",
        "side": "callwright",
        "wall_s": round(wall, 1),
        "ended_by": result.ended_by,
        "turns_spoken": n_turns,
        "turns_answered": len(probe.turns),
        "turns_reported": max(0, len(probe.turns) - skip),
        "warmup_turns_dropped": skip,
        "vad_stops_without_answer": probe.abandoned,
        "vad_stops_before_utterance_end": probe.mid_utterance,
        **turn_stats(probe.turns, skip=skip),
        "loop_breakdown_ms": {
            "stt": pct(field("stt_ms")),
            "agent_first_text": pct(field("llm_first_token_ms")),
            "tts_first_audio": pct(field("tts_first_audio_ms")),
            "turn_end_to_first_frame": pct(field("platform_ms")),
        },
        "input_lateness_ms": pct([x * 1000 for x in probe.lateness], (50, 99, 99.9)),
        "jitter_buffer": asdict(port.jitter.stats),
        "model_load": loads,
        "model_load_total_s": round(sum(v["seconds"] for v in loads.values()), 2),
        "rss_mb_at_start": round(rss_start, 1),
        "rss_mb_models_loaded": round(rss_loaded, 1),
        "rss_mb_peak_during_call": round(rss_peak, 1),
        "whisper_heard": sorted(set(heard)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--audio-dir", default=DEFAULT_AUDIO)
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--warmup-turns", type=int, default=2)
    ap.add_argument("--gap-secs", type=float, default=4.0)
    ap.add_argument("--end-silence-ms", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    start = start_conditions()
    res = asyncio.run(p3(args))
    save({**res, "env": env_info(args, start)}, args.out)


if __name__ == "__main__":
    main()
