"""Adaptive jitter buffer for RTP-like packets carrying one decoded frame each.

Rules:

1. Every packet has a 16-bit sequence number; each sequence number is one playout
   *slot* of exactly one frame. Sequence numbers are unwrapped against the highest
   one seen, so 65535 -> 0 continues the stream rather than restarting it.
2. The playout stream is continuous: once playing, every slot from the first is
   emitted exactly once and in order, either with its packet's audio or, when the
   packet has not arrived by the slot's due time, with concealment (a fading copy of
   the last real frame for ``fade_frames`` frames, then silence).
3. A packet is *late* when its slot has already been emitted, a *duplicate* when its
   sequence number was seen before; both are counted and dropped. ``lost`` counts the
   slots emitted as concealment.
4. Before the first frame is emitted, a packet earlier than the buffered ones moves the
   start back; it is not late.
5. A packet more than ``resync_frames`` slots away from the playout point means the
   sender restarted its numbering: the buffer drops what it holds and starts over
   (counted in ``resyncs``). Output timestamps stay monotonic across a resync.
6. So does a run of late packets lasting ``pause_resync`` seconds with none on time:
   the sender paused (hold, silence suppression) and resumed with the next sequence
   number, so its packets will never again be on time for their old slots. Peers
   should send continuous audio (do not offer CN, RFC 3389): each pause costs
   ``pause_resync`` of audio.

Theory of operation: time comes in as arguments (``push(packet, arrival_time)``,
``pop(now)``, seconds on any monotonic clock). Slot ``s`` is due at
``s * frame_duration + offset``. Each arrival gives a *transit* sample,
``arrival_time - s * frame_duration``: the network delay up to an unknown constant.
Over a window of recent packets (late ones included, so a step up in network delay
within ``max_delay`` is absorbed by adaptation, not by a resync), the lowest transit is the fastest path and the spread
up to the ``quantile`` is the jitter to absorb, so the desired offset is
``min(transit) + clamp(spread + min_delay, min_delay, max_delay)``. ``min_delay`` is
the headroom kept even on a perfect network, for the phase of the consumer's tick.

The offset moves toward the desired one only when a frame is emitted: it grows at
once (better a short stall than a run of losses) and shrinks by at most
``frame_duration / 20`` per frame (playout runs 5 % fast until the excess is gone), in
both cases only when the difference exceeds half a frame. Growing makes ``pop`` return
None for a while; a sink that must write every tick plays silence then. Shrinking
makes frames due sooner, so a consumer should pop until None on every tick.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from callwright.media.frames import AudioFrame, Int16Array, as_pcm, frame_from_owned

_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32
_TRUSTED_SAMPLES = 50  # one second of 20 ms packets


@dataclass(frozen=True, slots=True, eq=False)
class MediaPacket:
    """One received packet: RTP sequence number and timestamp, and its decoded PCM."""

    seq: int
    timestamp: int
    payload: Int16Array


@dataclass(frozen=True, slots=True)
class PlayoutFrame:
    """One emitted slot: the audio to play, the slot's sequence number, how it was made."""

    frame: AudioFrame
    seq: int
    concealed: bool


@dataclass(frozen=True, slots=True)
class JitterConfig:
    sample_rate: int = 8000
    frame_ms: int = 20
    min_delay: float = 0.02
    initial_delay: float = 0.06
    max_delay: float = 0.3
    quantile: float = 0.95
    window: int = 250
    fade_frames: int = 2
    resync_frames: int = 1000
    pause_resync: float = 0.5


@dataclass(frozen=True, slots=True)
class JitterStats:
    received: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    played: int = 0
    resyncs: int = 0


class JitterBuffer:
    def __init__(self, config: JitterConfig | None = None):
        self.config = cfg = config or JitterConfig()
        if not 0 < cfg.min_delay <= cfg.max_delay:
            raise ValueError("need 0 < min_delay <= max_delay")
        if cfg.resync_frames * cfg.frame_ms < 2000 * cfg.max_delay:
            raise ValueError("resync_frames must span well over max_delay")
        self.frame_samples = cfg.sample_rate * cfg.frame_ms // 1000
        self.frame_duration = cfg.frame_ms / 1000
        self._fades = [
            np.linspace(1 - k / cfg.fade_frames, 1 - (k + 1) / cfg.fade_frames, self.frame_samples)
            for k in range(cfg.fade_frames)
        ]
        self._counts = {field.name: 0 for field in fields(JitterStats)}
        self._out_timestamp: int | None = None
        self._reset()

    def _reset(self) -> None:
        """Forget the stream (not the counters, not the output clock)."""
        self._anchored = False
        self._playing = False
        self._next = 0  # unwrapped slot to emit next
        self._highest = 0  # highest unwrapped slot seen, the reference for unwrapping
        self._start_timestamp = 0  # RTP timestamp of the slot playout starts at
        self._offset = 0.0
        self._desired_offset = 0.0
        self._floor = 0.0  # lowest transit in the window
        self._buffer: dict[int, Int16Array] = {}
        self._seen_played: set[int] = set()  # slots below _next that did arrive
        self._transits = np.zeros(self.config.window)  # ring; the first _transit_index valid
        self._transit_index = 0
        self._last_real: Int16Array | None = None
        self._concealed_run = 0
        self._late_since: float | None = None  # arrival time of the current late run

    @property
    def stats(self) -> JitterStats:
        return JitterStats(**self._counts)

    @property
    def buffered(self) -> int:
        """Frames waiting to be played."""
        return len(self._buffer)

    @property
    def target_delay(self) -> float:
        """The delay the buffer currently aims for above the fastest observed transit."""
        if not self._anchored:
            return self._clamp(self.config.initial_delay)
        return self._desired_offset - self._floor

    def push(self, packet: MediaPacket, arrival_time: float) -> None:
        payload = as_pcm(packet.payload)
        if payload.shape[0] != self.frame_samples:
            raise ValueError(
                f"payload has {payload.shape[0]} samples, expected {self.frame_samples}"
            )
        seq = packet.seq % _SEQ_MOD
        if not self._anchored:
            self._anchor(seq, packet.timestamp, arrival_time)
        slot = self._unwrap(seq)
        if abs(slot - self._next) > self.config.resync_frames or self._paused(slot, arrival_time):
            self._counts["resyncs"] += 1
            self._reset()
            self._anchor(seq, packet.timestamp, arrival_time)
            slot = seq
        if slot in self._buffer or slot in self._seen_played:
            self._counts["duplicates"] += 1
            return
        transit = arrival_time - slot * self.frame_duration
        if slot < self._next:
            if self._playing:
                self._counts["late"] += 1
                self._seen_played.add(slot)
                self._observe_transit(transit)
                if self._late_since is None:
                    self._late_since = arrival_time
                return
            # Rule 4: reordered before playout began, so the stream starts earlier.
            self._next = slot
            self._start_timestamp = packet.timestamp % _TS_MOD
        self._highest = max(self._highest, slot)
        # Freeze (copying if the sender's buffer is writable) now, not at playout.
        self._buffer[slot] = AudioFrame(payload, self.config.sample_rate, 0).samples
        self._counts["received"] += 1
        self._late_since = None
        self._observe_transit(transit)

    def pop(self, now: float) -> PlayoutFrame | None:
        """The next slot if it is due at ``now``, else None. Call until None each tick."""
        if not self._anchored or self._next * self.frame_duration + self._offset > now:
            return None
        slot = self._next
        payload = self._buffer.pop(slot, None)
        if self._out_timestamp is None:
            self._out_timestamp = self._start_timestamp
        rate = self.config.sample_rate
        if payload is None:
            frame = frame_from_owned(self._conceal(), rate, self._out_timestamp)
            self._counts["lost"] += 1
        else:
            frame = AudioFrame(payload, rate, self._out_timestamp)
            self._last_real = frame.samples
            self._concealed_run = 0
            self._seen_played.add(slot)
        self._out_timestamp += self.frame_samples
        self._playing = True
        self._next += 1
        self._counts["played"] += 1
        self._forget_old_slots()
        self._adapt()
        return PlayoutFrame(frame, slot % _SEQ_MOD, payload is None)

    def _anchor(self, seq: int, timestamp: int, arrival_time: float) -> None:
        self._anchored = True
        self._next = self._highest = seq
        self._start_timestamp = timestamp % _TS_MOD
        transit = arrival_time - seq * self.frame_duration
        self._floor = transit
        self._offset = self._desired_offset = transit + self._clamp(self.config.initial_delay)

    def _paused(self, slot: int, arrival_time: float) -> bool:
        """Rule 6: this would-be-late packet ends a late run longer than ``pause_resync``."""
        return (
            self._late_since is not None
            and slot < self._next
            and slot not in self._seen_played
            and arrival_time - self._late_since > self.config.pause_resync
        )

    def _unwrap(self, seq: int) -> int:
        delta = (seq - self._highest + _SEQ_MOD // 2) % _SEQ_MOD - _SEQ_MOD // 2
        return self._highest + delta

    def _clamp(self, delay: float) -> float:
        return min(max(delay, self.config.min_delay), self.config.max_delay)

    def _observe_transit(self, transit: float) -> None:
        self._transits[self._transit_index % self.config.window] = transit
        self._transit_index += 1
        valid = self._transits[: self._transit_index]
        # Nearest-rank quantile by partial sort: a few microseconds per packet.
        rank = round(self.config.quantile * (valid.shape[0] - 1))
        ordered = np.partition(valid, (0, rank))
        self._floor = float(ordered[0])
        delay = float(ordered[rank]) - self._floor + self.config.min_delay
        if self._transit_index < _TRUSTED_SAMPLES:
            # A handful of packets says little about jitter: hold the initial delay.
            delay = max(delay, self.config.initial_delay)
        self._desired_offset = self._floor + self._clamp(delay)

    def _adapt(self) -> None:
        difference = self._desired_offset - self._offset
        if difference > self.frame_duration / 2:
            self._offset = self._desired_offset
        elif difference < -self.frame_duration / 2:
            self._offset -= min(-difference, self.frame_duration / 20)

    def _conceal(self) -> Int16Array:
        self._concealed_run += 1
        run = self._concealed_run
        if self._last_real is None or run > self.config.fade_frames:
            return np.zeros(self.frame_samples, dtype=np.int16)
        faded: npt.NDArray[np.float64] = self._last_real * self._fades[run - 1]
        return faded.astype(np.int16)

    def _forget_old_slots(self) -> None:
        # Amortised: prune once per resync span, keeping one span of history.
        horizon = self.config.resync_frames
        if self._next % horizon == 0:
            self._seen_played = {s for s in self._seen_played if s >= self._next - horizon}
