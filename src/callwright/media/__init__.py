"""The pure media core: frames, G.711, resampling, jitter buffer, DTMF, recorder, VAD.

Nothing here touches a socket or reads a clock; time arrives as arguments (seconds
for packet arrival and playout, samples or frames for audio). The only I/O is
``CallRecorder.write`` to a path the caller chooses.
"""

from callwright.media.dtmf import DtmfConfig, DtmfDetector, DtmfDigit, generate_dtmf
from callwright.media.frames import FRAME_MS, AudioFrame, Framer, samples_per_frame
from callwright.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from callwright.media.jitter import (
    JitterBuffer,
    JitterConfig,
    JitterStats,
    MediaPacket,
    PlayoutFrame,
)
from callwright.media.recorder import CallRecorder
from callwright.media.resample import StreamingResampler
from callwright.media.vad import (
    Endpointer,
    EndpointerConfig,
    EndpointState,
    SpeechEnded,
    SpeechEvent,
    SpeechStarted,
    VoiceActivityDetector,
)

__all__ = [
    "FRAME_MS",
    "AudioFrame",
    "CallRecorder",
    "DtmfConfig",
    "DtmfDetector",
    "DtmfDigit",
    "EndpointState",
    "Endpointer",
    "EndpointerConfig",
    "Framer",
    "JitterBuffer",
    "JitterConfig",
    "JitterStats",
    "MediaPacket",
    "PlayoutFrame",
    "SpeechEnded",
    "SpeechEvent",
    "SpeechStarted",
    "StreamingResampler",
    "VoiceActivityDetector",
    "alaw_decode",
    "alaw_encode",
    "generate_dtmf",
    "samples_per_frame",
    "ulaw_decode",
    "ulaw_encode",
]
