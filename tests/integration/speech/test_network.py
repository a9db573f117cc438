"""Network speech back-ends against loopback servers speaking the real wire formats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import numpy as np
import pytest
from tests.conftest import free_port
from tests.integration.speech.servers import (
    API_KEY,
    DeepgramServer,
    SpeechHTTPServer,
    speech_samples,
)

from callwright.providers.speech import (
    DeepgramSTT,
    ElevenLabsTTS,
    OpenAISTT,
    OpenAITTS,
    SpeechServiceError,
    UnknownVoice,
)

TEXT = "Thank you for calling, how can I help you today?"


@pytest.fixture(scope="module")
def http_server() -> Iterator[SpeechHTTPServer]:
    server = SpeechHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def http(http_server: SpeechHTTPServer) -> SpeechHTTPServer:
    http_server.requests.clear()
    http_server.stream_forever = False
    return http_server


@pytest.fixture
async def deepgram() -> AsyncIterator[DeepgramServer]:
    server = await DeepgramServer().start()
    yield server
    await server.stop()


def utterance(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 300 * t) * 6000).astype(np.int16)


# --- OpenAI-compatible ---------------------------------------------------------------


async def test_openai_stt_posts_the_utterance_as_a_wav_form(http: SpeechHTTPServer) -> None:
    stt = OpenAISTT(f"{http.url}/v1", API_KEY, model="whisper-large-v3")
    try:
        transcript = await stt.transcribe(utterance(1.5, 8000), 8000, language="en-US")
    finally:
        await stt.aclose()
    assert transcript.text == "heard 12000 samples at 8000 Hz with whisper-large-v3"
    assert (transcript.language, transcript.duration, transcript.is_final) == ("en", 1.5, True)
    (request,) = http.requests
    assert request["path"] == "/v1/audio/transcriptions"
    assert request["form"]["language"][1] == b"en"
    assert request["form"]["file"][0] == "audio.wav"


async def test_openai_stt_as_a_stream_answers_once_input_ends(http: SpeechHTTPServer) -> None:
    stt = OpenAISTT(f"{http.url}/v1", API_KEY)
    stream = stt.stream(16000)
    for _ in range(10):
        await stream.push(utterance(0.02, 16000))
    await stream.end_input()
    results = [t async for t in stream]
    await stt.aclose()
    assert [t.text for t in results] == ["heard 3200 samples at 16000 Hz with whisper-1"]


async def test_openai_stt_reports_a_refused_key_as_permanent(http: SpeechHTTPServer) -> None:
    stt = OpenAISTT(f"{http.url}/v1", "wrong")
    with pytest.raises(SpeechServiceError, match="answered 401") as caught:
        await stt.transcribe(utterance(0.1, 8000), 8000)
    await stt.aclose()
    assert (caught.value.status, caught.value.retryable) == (401, False)


@pytest.mark.parametrize("response_format", ["pcm", "wav"])
async def test_openai_tts_streams_the_body_as_audio(
    http: SpeechHTTPServer, response_format: Literal["pcm", "wav"]
) -> None:
    tts = OpenAITTS(f"{http.url}/v1", API_KEY, response_format=response_format)
    chunks = [c async for c in tts.synthesize(TEXT, "nova")]
    await tts.aclose()
    assert len(chunks) > 1  # streamed, not buffered
    assert all(c.sample_rate == 24000 == tts.sample_rate for c in chunks)
    assert np.array_equal(np.concatenate([c.pcm for c in chunks]), speech_samples(TEXT))
    (request,) = http.requests
    assert request["json"] == {
        "model": "tts-1",
        "input": TEXT,
        "voice": "nova",
        "response_format": response_format,
    }


async def test_openai_tts_rate_limits_are_retryable(http: SpeechHTTPServer) -> None:
    tts = OpenAITTS(f"{http.url}/v1", API_KEY, voices=["busy", "alloy"])
    with pytest.raises(SpeechServiceError, match="429") as caught:
        _ = [c async for c in tts.synthesize(TEXT, "busy")]
    await tts.aclose()
    assert caught.value.retryable


async def test_openai_tts_refuses_a_voice_it_does_not_have(http: SpeechHTTPServer) -> None:
    tts = OpenAITTS(f"{http.url}/v1", API_KEY)
    with pytest.raises(UnknownVoice):
        _ = [c async for c in tts.synthesize(TEXT, "joe")]
    await tts.aclose()
    assert http.requests == []


async def test_an_unreachable_service_is_a_retryable_error() -> None:
    tts = OpenAITTS(f"http://127.0.0.1:{free_port()}/v1", API_KEY)
    with pytest.raises(SpeechServiceError, match="request failed") as caught:
        _ = [c async for c in tts.synthesize(TEXT)]
    await tts.aclose()
    assert caught.value.retryable and caught.value.status is None


# --- ElevenLabs ----------------------------------------------------------------------


async def test_elevenlabs_streams_pcm_at_the_asked_rate(http: SpeechHTTPServer) -> None:
    tts = ElevenLabsTTS(API_KEY, base_url=http.url, voices={"rachel": "21m00Tcm4TlvDq8ikWAM"})
    chunks = [c async for c in tts.synthesize(TEXT)]
    await tts.aclose()
    assert np.array_equal(np.concatenate([c.pcm for c in chunks]), speech_samples(TEXT))
    assert {c.sample_rate for c in chunks} == {16000}
    (request,) = http.requests
    assert request["path"] == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream"
    assert request["output_format"] == "pcm_16000"
    assert request["json"] == {"text": TEXT, "model_id": "eleven_flash_v2_5"}


async def test_elevenlabs_refused_key(http: SpeechHTTPServer) -> None:
    tts = ElevenLabsTTS("nope", base_url=http.url)
    with pytest.raises(SpeechServiceError, match="401"):
        _ = [c async for c in tts.synthesize(TEXT, "someone")]
    await tts.aclose()


async def test_closing_a_network_tts_stream_closes_the_request(http: SpeechHTTPServer) -> None:
    http.stream_forever = True
    tts = ElevenLabsTTS(API_KEY, base_url=http.url)
    stream = tts.synthesize(TEXT, "someone")
    received = 0
    async for chunk in stream:
        received += chunk.pcm.shape[0]
        if received > 50_000:
            break
    await stream.aclose()
    await tts.aclose()
    for _ in range(500):  # the server notices the disconnect on its next write
        if http.open_streams == 0:
            break
        await asyncio.sleep(0.01)
    assert http.open_streams == 0


# --- Deepgram ------------------------------------------------------------------------


async def test_deepgram_streams_frames_and_yields_interim_and_final_results(
    deepgram: DeepgramServer,
) -> None:
    stt = DeepgramSTT(API_KEY, base_url=deepgram.url, model="nova-3")
    stream = stt.stream(8000)
    audio = utterance(1.2, 8000)
    results = []

    async def read() -> None:
        results.extend([t async for t in stream])

    async with asyncio.TaskGroup() as group:
        group.create_task(read())
        for start in range(0, audio.shape[0], 160):  # 20 ms frames
            await stream.push(audio[start : start + 160])
        await stream.end_input()
    await stream.aclose()

    (session,) = deepgram.sessions
    assert session["path"] == "/v1/listen"
    assert session["query"]["sample_rate"] == "8000"
    assert session["query"]["model"] == "nova-3"
    assert session["query"]["interim_results"] == "true"
    assert (session["bytes"], session["messages"]) == (audio.nbytes, 60)
    finals = [t for t in results if t.is_final]
    assert [t.text for t in finals] == ["segment 0.", "segment 1.", "segment 2."]
    assert [t.speech_final for t in finals] == [False, False, True]
    assert [t.text for t in results if not t.is_final] == ["segm", "segm"]
    assert finals[1].words[1].text == "1." and finals[1].words[1].start == pytest.approx(0.7)
    assert finals[-1].duration == pytest.approx(0.2)


async def test_deepgram_transcribes_a_whole_utterance(deepgram: DeepgramServer) -> None:
    stt = DeepgramSTT(API_KEY, base_url=deepgram.url)
    transcript = await stt.transcribe(utterance(1.1, 16000), 16000, language="en-GB")
    assert transcript.text == "segment 0. segment 1. segment 2."
    assert (transcript.language, transcript.duration) == ("en-GB", pytest.approx(1.1))
    assert len(transcript.words) == 6
    assert deepgram.sessions[0]["query"]["language"] == "en-GB"


async def test_deepgram_refused_key(deepgram: DeepgramServer) -> None:
    stt = DeepgramSTT("wrong", base_url=deepgram.url)
    with pytest.raises(SpeechServiceError, match="HTTP 401") as caught:
        await stt.transcribe(utterance(0.1, 8000), 8000)
    assert (caught.value.status, caught.value.retryable) == (401, False)


async def test_deepgram_dropping_the_stream_is_a_retryable_error() -> None:
    server = await DeepgramServer(close_code=1011).start()
    try:
        stt = DeepgramSTT(API_KEY, base_url=server.url)
        with pytest.raises(SpeechServiceError, match="1011 NET-0001") as caught:
            await stt.transcribe(utterance(2.0, 8000), 8000)
        assert caught.value.retryable
    finally:
        await server.stop()
