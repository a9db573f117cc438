"""One MiniLM embedder for the provider tests (loading it takes about 0.2 s)."""

from __future__ import annotations

import pytest

from callwright.providers.embed import MiniLMEmbedder


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()
