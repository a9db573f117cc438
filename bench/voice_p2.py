"""P2 concurrent calls per core and P6 memory per call: N calls in one process.

Each call is a full ``CallLoop`` on a ``PhonePort`` (mu-law decode, jitter buffer,
mu-law encode), with its own Silero detector on the shared model, turn-taking and a
``CallRecorder``; STT, agent and TTS are zero-latency fakes. All calls and their fake
callers share one asyncio loop, each caller starting at a random phase. After
``--warmup-secs`` a ``--measure-secs`` window measures process CPU (user + system, all
threads), peak RSS, and each caller frame's lateness: when the loop answered it (the
port's ``send``) minus when the transport was due to deliver it. A run keeps up when
no frame in the window is more than 100 ms late (the Pipecat peer's criterion).

    # one N, pinned to one core (the lock is held by the caller):
    flock /tmp/cw-bench.lock taskset -c 1 .venv/bin/python bench/voice_p2.py run --n 100
    # the sweep: each N in its own pinned process, then the summary and P6 slope:
    flock /tmp/cw-bench.lock .venv/bin/python bench/voice_p2.py sweep --ns 1 50 100 \
        --bisect --out bench/results/voice_p2.json
    # Silero alone (providers' detector at 8 kHz), per 20 ms frame:
    flock /tmp/cw-bench.lock taskset -c 1 .venv/bin/python bench/voice_p2.py vad
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
from voice_common import (
    DEFAULT_AUDIO,
    FRAME,
    RATE,
    STEP,
    CountingSink,
    InstantStt,
    InstantTts,
    OneSentenceAgent,
    PhonePort,
    Probe,
    build_script,
    cpu_seconds,
    env_info,
    load_utterances,
    pct,
    probe_loop,
    rss_mb,
    save,
    start_conditions,
    turn_stats,
)

from callwright.conversation.adapters import DetectorActivity
from callwright.conversation.loop import CallLoop
from callwright.conversation.turns import TurnConfig
from callwright.media import AudioFrame, CallRecorder
from callwright.providers.speech import SileroVADModel


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    m = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return m, my - m * mx


async def run_calls(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    utts = load_utterances(args.audio_dir)
    mean_utt = sum(len(u.frames) for u in utts) / len(utts) * STEP
    cycle = mean_utt + args.gap_secs
    total = args.warmup_secs + args.measure_secs
    n_turns = int(total / cycle) + 3
    model = SileroVADModel()
    gc.collect()
    rss_before = rss_mb()

    probes: list[Probe] = []
    ports: list[PhonePort] = []
    loops: list[CallLoop] = []
    recorders: list[CallRecorder] = []
    for _ in range(args.n):
        probe = Probe()
        script = build_script(utts, n_turns, args.gap_secs, rng.uniform(0, cycle), rng)
        script = script[: int((total + 1.0) / STEP)]  # every caller stops at the same time
        port = PhonePort(script, probe, start_at=0.0)
        # As the product records: spilled to a temporary file as the call goes (the
        # files close when the process ends).
        spill = None if args.no_record else tempfile.TemporaryFile()  # noqa: SIM115
        recorder = None if spill is None else CallRecorder(RATE, spill=spill)
        loop = CallLoop(
            port,
            OneSentenceAgent(),
            stt=InstantStt(),
            tts=InstantTts(args.reply_secs),
            vad=DetectorActivity(model.detector(), RATE),
            sink=CountingSink(),
            turns=TurnConfig(end_silence_ms=args.end_silence_ms),
            wait_for_greeting=True,
            recorder=recorder,
        )
        probe_loop(loop, probe)
        probes.append(probe)
        ports.append(port)
        loops.append(loop)
        if recorder is not None:
            recorders.append(recorder)
    rss_built = rss_mb()

    start = time.monotonic() + 0.1
    window = (start + args.warmup_secs, start + total)
    for probe, port in zip(probes, ports, strict=True):
        probe.window = window
        port.start_at = start
    tasks = [asyncio.create_task(loop.run()) for loop in loops]

    await asyncio.sleep(max(0.0, window[0] - time.monotonic()))
    cpu0, t0 = cpu_seconds(), time.monotonic()
    rss_samples = [rss_mb()]
    loop_lag = []
    while time.monotonic() < window[1]:
        t_s = time.monotonic()
        await asyncio.sleep(0.5)
        loop_lag.append(time.monotonic() - t_s - 0.5)
        rss_samples.append(rss_mb())
    cpu1, t1 = cpu_seconds(), time.monotonic()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    cpu_pct = 100.0 * (cpu1 - cpu0) / (t1 - t0)
    late = [x * 1000 for p in probes for x in p.lateness]
    late_100 = sum(1 for x in late if x > 100.0)
    turns = [r for p in probes for r in p.turns if r["vad_stop"] >= window[0] and "out" in r]
    rss_peak = max(rss_samples)
    ended = [r.ended_by if not isinstance(r, BaseException) else repr(r) for r in results]
    return {
        "test": "P2",
        "side": "callwright",
        "n_calls": args.n,
        "measure_window_s": round(t1 - t0, 1),
        "cpu_percent_of_one_core": round(cpu_pct, 1),
        "cpu_percent_per_call": round(cpu_pct / max(1, args.n), 3),
        "input_frames_measured": len(late),
        "input_frames_late_gt_100ms": late_100,
        "input_frames_late_gt_100ms_frac": round(late_100 / max(1, len(late)), 5),
        "input_lateness_ms": pct(late, (50, 99, 99.9)),
        "feeder_lateness_ms": pct([x * 1000 for p in probes for x in p.feed_late], (50, 99, 99.9)),
        "monitor_loop_lag_ms": pct([x * 1000 for x in loop_lag], (50, 99)),
        "turns_in_window": len(turns),
        "vad_stops_without_answer": sum(p.abandoned for p in probes),
        "vad_stops_before_utterance_end": sum(p.mid_utterance for p in probes),
        "calls_ended_by": {e: ended.count(e) for e in set(ended)},
        **turn_stats(turns),
        "recording": not args.no_record,
        "recorded_s_per_call": round(float(np.mean([r.num_samples for r in recorders])) / RATE, 1)
        if recorders
        else 0.0,
        "rss_mb_before_calls": round(rss_before, 1),
        "rss_mb_after_build": round(rss_built, 1),
        "rss_mb_peak_in_window": round(rss_peak, 1),
        "rss_mb_per_call": round((rss_peak - rss_before) / max(1, args.n), 3),
    }


def vad_cost(args: argparse.Namespace) -> dict[str, Any]:
    """The providers' Silero detector alone at 8 kHz, no loop: CPU per 20 ms frame."""
    utts = load_utterances(args.audio_dir)
    frames = [f for u in utts for f in u.frames] + [np.zeros(FRAME, np.int16)] * 300
    detector = SileroVADModel().detector()
    for i, f in enumerate(frames[:50]):
        detector.process(AudioFrame(f, RATE, i * FRAME))
    n, ts = 0, 0
    c0 = time.process_time()
    while n < args.vad_frames:
        for f in frames:
            detector.process(AudioFrame(f, RATE, ts))
            ts += FRAME
            n += 1
    cpu = time.process_time() - c0
    return {
        "test": "VAD",
        "side": "callwright",
        "frames": n,
        "cpu_us_per_20ms_frame": round(cpu / n * 1e6, 1),
        "cpu_percent_of_one_core_per_realtime_stream": round(100 * cpu / n / STEP, 3),
    }


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    """Each N in its own process pinned to ``--core``; bisects up from the last pass."""
    runs: dict[int, dict[str, Any]] = {}

    def wait_for_quiet() -> None:
        # Other jobs on this shared machine do not all take the lock: start a run only
        # once the machine is quiet (or after 5 minutes, recorded in the run's env).
        deadline = time.monotonic() + 300
        while start_conditions()["machine_busy_pct_2s_before_start"] > args.quiet_below:
            if time.monotonic() > deadline:
                return

    def run(n: int) -> bool:
        if n not in runs:
            wait_for_quiet()
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
                out = tmp.name
            cmd = ["taskset", "-c", str(args.core), sys.executable, __file__, "run"]
            cmd += ["--n", str(n), "--out", out, "--audio-dir", args.audio_dir]
            cmd += [
                "--warmup-secs",
                str(args.warmup_secs),
                "--measure-secs",
                str(args.measure_secs),
            ]
            cmd += ["--end-silence-ms", str(args.end_silence_ms)]
            cmd += ["--no-record"] if args.no_record else []
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            with open(out) as f:
                runs[n] = json.load(f)
            os.unlink(out)
            r = runs[n]
            print(
                f"N={n}: cpu {r['cpu_percent_of_one_core']} %, late>100ms "
                f"{r['input_frames_late_gt_100ms']}/{r['input_frames_measured']}, lateness max "
                f"{r['input_lateness_ms'].get('max')} ms, rss {r['rss_mb_peak_in_window']} MB",
                file=sys.stderr,
                flush=True,
            )
        return bool(runs[n]["input_frames_late_gt_100ms"] == 0)

    passed = [n for n in args.ns if run(n)]
    if args.bisect:
        lo = max(passed) if passed else 1
        failed = [n for n in runs if n > lo and runs[n]["input_frames_late_gt_100ms"]]
        hi = min(failed) if failed else None
        while hi is None:  # grow until a run fails
            if not run(lo * 2):
                hi = lo * 2
            else:
                lo *= 2
        while hi - lo > max(2, lo // 20):  # to within 5 %
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if run(mid) else (lo, mid)
    ok = sorted(n for n, r in runs.items() if r["input_frames_late_gt_100ms"] == 0)
    loose = [n for n, r in runs.items() if r["input_frames_late_gt_100ms_frac"] <= 0.001]
    ns = sorted(runs)
    summary: dict[str, Any] = {
        "test": "P2 sweep",
        "side": "callwright",
        "largest_n_no_frame_late_gt_100ms": max(ok) if ok else None,
        "smallest_n_failing": min((n for n in ns if n not in ok), default=None),
        "largest_n_at_most_0.1pct_late": max(loose) if loose else None,
    }
    if len(ok) >= 2:
        m, c = fit([float(n) for n in ok], [runs[n]["cpu_percent_of_one_core"] for n in ok])
        summary["cpu_percent_per_added_call"] = round(m, 3)
        summary["cpu_intercept_percent"] = round(c, 2)
        summary["calls_per_core_if_cpu_bound"] = round(100.0 / m, 1)
    if len(ns) >= 2:
        m, c = fit([float(n) for n in ns], [runs[n]["rss_mb_peak_in_window"] for n in ns])
        summary["rss_mb_per_added_call"] = round(m, 3)
        summary["rss_intercept_mb"] = round(c, 1)
    summary["runs"] = [runs[n] for n in ns]
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["run", "sweep", "vad"])
    ap.add_argument("--audio-dir", default=DEFAULT_AUDIO)
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--ns", type=int, nargs="*", default=[1, 25, 50, 100])
    ap.add_argument("--bisect", action="store_true", help="after --ns, find the largest passing N")
    ap.add_argument("--core", type=int, default=1)
    ap.add_argument("--warmup-secs", type=float, default=10.0)
    ap.add_argument("--measure-secs", type=float, default=40.0)
    ap.add_argument("--gap-secs", type=float, default=1.8)
    ap.add_argument("--reply-secs", type=float, default=1.0)
    ap.add_argument("--end-silence-ms", type=int, default=200)
    ap.add_argument("--no-record", action="store_true", help="no CallRecorder (P6 breakdown)")
    ap.add_argument(
        "--quiet-below", type=float, default=15.0, help="sweep: wait for machine busy %% below"
    )
    ap.add_argument("--vad-frames", type=int, default=30000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    start = start_conditions()
    if args.mode == "run":
        res = asyncio.run(run_calls(args))
    elif args.mode == "vad":
        res = vad_cost(args)
    else:
        res = sweep(args)
    save({**res, "env": env_info(args, start)}, args.out)


if __name__ == "__main__":
    main()
