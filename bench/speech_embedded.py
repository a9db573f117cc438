"""Embedded speech benchmark: the offline models on this machine's CPU.

Figures:
- load time and resident-memory growth of each model (Whisper tiny.en int8, Piper
  "joe", Silero VAD), loaded in that order in one process;
- Whisper: time to transcribe a ~3 s utterance (Piper speech) at 16 kHz and through
  mu-law at 8 kHz, p50/p95 over N runs;
- Piper: time to first audio (call -> first chunk) for a one-sentence reply and for a
  three-sentence reply, p50/p95 over N runs;
- Silero: microseconds per 20 ms frame at 8 kHz, and memory per extra detector (the
  per-call cost; the model itself is shared).

    flock /tmp/cw-bench.lock .venv/bin/python bench/speech_embedded.py [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from callwright.media import Framer, ulaw_decode, ulaw_encode
from callwright.providers.speech import PiperTTS, SileroVADModel, WhisperSTT
from callwright.providers.speech._audio import resample

UTTERANCE = "I would like to book a table for four people tomorrow evening."
GREETING = "Thank you for calling, how can I help you today?"
REPLY = (
    "Sure, I can help with that. Tomorrow evening we have tables at seven and at "
    "half past eight. Which one would you like?"
)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{label:<44} p50 {percentile(ms, 0.5):7.1f} ms   p95 {percentile(ms, 0.95):7.1f} ms"
        f"   (n={len(ms)}, mean {statistics.fmean(ms):.1f})"
    )


def load(label: str, build: Callable[[], Any]) -> Any:
    before, start = rss_mb(), time.perf_counter()
    model = build()
    print(
        f"load {label:<22} {time.perf_counter() - start:6.2f} s   "
        f"RSS +{rss_mb() - before:6.1f} MB (now {rss_mb():.0f} MB)"
    )
    return model


async def first_audio(piper: PiperTTS, text: str) -> float:
    start = time.perf_counter()
    stream = piper.synthesize(text)
    await anext(stream)
    elapsed = time.perf_counter() - start
    await stream.aclose()
    return elapsed


async def main(runs: int) -> None:
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()}")
    print(f"RSS at start (imports done): {rss_mb():.0f} MB")
    whisper: WhisperSTT = load("Whisper tiny.en int8", WhisperSTT)
    piper: PiperTTS = load("Piper joe (+warm-up)", PiperTTS)
    silero: SileroVADModel = load("Silero VAD", SileroVADModel)

    speech = np.concatenate([c.pcm async for c in piper.synthesize(UTTERANCE)])
    wide = resample(speech, piper.sample_rate, 16000)
    narrow = ulaw_decode(ulaw_encode(resample(speech, piper.sample_rate, 8000)))
    print(f"utterance: {speech.shape[0] / piper.sample_rate:.2f} s of Piper speech")

    await whisper.transcribe(wide, 16000)  # first run allocates buffers
    for label, pcm, rate in (("16 kHz", wide, 16000), ("mu-law 8 kHz", narrow, 8000)):
        times, text = [], ""
        for _ in range(runs):
            start = time.perf_counter()
            text = (await whisper.transcribe(pcm, rate)).text
            times.append(time.perf_counter() - start)
        print(summary(f"Whisper, {label} utterance", times) + f"   -> {text!r}")

    for label, text in (("one sentence", GREETING), ("three sentences", REPLY)):
        times = [await first_audio(piper, text) for _ in range(runs)]
        print(summary(f"Piper time to first audio, {label}", times))
    start = time.perf_counter()
    audio = sum([c.duration async for c in piper.synthesize(REPLY)])
    whole = time.perf_counter() - start
    print(f"Piper whole reply: {whole:.2f} s for {audio:.2f} s of audio (RTF {whole / audio:.2f})")

    frames = Framer(8000).push(narrow)
    detector = silero.detector()
    start = time.perf_counter()
    for frame in frames * 5:
        detector.process(frame)
    per_frame = (time.perf_counter() - start) / (len(frames) * 5)
    print(f"Silero VAD at 8 kHz: {per_frame * 1e6:.0f} us per 20 ms frame")
    before = rss_mb()
    detectors = [silero.detector() for _ in range(1000)]
    for d in detectors:
        d.process(frames[0])
    print(f"Silero VAD per extra detector: {(rss_mb() - before) * 1024 / 1000:.1f} KB")
    print(f"RSS at end: {rss_mb():.0f} MB")
    await whisper.aclose()
    await piper.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))
