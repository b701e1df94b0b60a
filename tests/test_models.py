"""The embedders: all-MiniLM-L6-v2 exported offline to INT8 ONNX, and length-sorted batching."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa import models as qa_models
from qa.config import MINILM_EMBED_MODEL
from qa.errors import ModelLoadError
from qa.models import CrossEncoder, Embedder, _token_batches, int8_onnx_export, resolve_embed_model

NEWS = [
    "China said on Monday that it was willing to deepen its friendly and cooperative ties with Afghanistan.",
    "The Taliban took control of Kabul after the government collapsed.",
    "Dock workers at the port went on strike over pay and working hours.",
    "The central bank raised interest rates by half a percentage point to fight inflation.",
    "Wildfires forced thousands of residents to leave their homes in northern California this week.",
    "Who is the foreign minister of China?",
]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def minilm_onnx(model_cache: Path) -> Embedder:
    """MiniLM as INT8 ONNX, exported into a fresh cache with the network unreachable."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the export tried to reach the network")

    mp.setattr(socket.socket, "connect", no_network)
    try:
        return Embedder(MINILM_EMBED_MODEL, backend="onnx", cache_dir=model_cache)
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def minilm_torch() -> Embedder:
    return Embedder(MINILM_EMBED_MODEL, backend="torch")


def test_minilm_runs_as_int8_onnx_exported_into_the_cache(minilm_onnx: Embedder, model_cache: Path) -> None:
    assert minilm_onnx.backend == "onnx-int8"
    assert (minilm_onnx.dimension, minilm_onnx.max_seq_length, minilm_onnx.pooling) == (384, 256, "mean")
    exported = list(model_cache.glob(f"{MINILM_EMBED_MODEL}-int8-*/model.onnx"))
    assert len(exported) == 1 and (exported[0].parent / "tokenizer.json").is_file()
    assert not list(model_cache.glob(".export-*"))  # the work folder is gone


def test_int8_vectors_match_pytorch(minilm_onnx: Embedder, minilm_torch: Embedder) -> None:
    int8, fp32 = minilm_onnx.encode(NEWS), minilm_torch.encode(NEWS)
    cosine = (int8 * fp32).sum(axis=1)
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.98, cosine
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    # Same nearest passage for the question under both.
    assert np.argmax(int8[:-1] @ int8[-1]) == np.argmax(fp32[:-1] @ fp32[-1]) == 0


def test_export_is_reused_not_redone(model_cache: Path, minilm_onnx: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(qa_models.onnx, "_export_onnx", fail)
    folder = int8_onnx_export(resolve_embed_model(MINILM_EMBED_MODEL), model_cache, label=MINILM_EMBED_MODEL)
    assert folder.parent == model_cache and (folder / "model.onnx").is_file()


def test_auto_falls_back_to_pytorch_when_the_export_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("no onnx here")

    monkeypatch.setattr(qa_models.embedder, "int8_onnx_export", broken)
    assert Embedder(MINILM_EMBED_MODEL).backend == "torch"
    with pytest.raises(ModelLoadError, match="no onnx here"):
        Embedder(MINILM_EMBED_MODEL, backend="onnx")


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="backend"):
        Embedder(MINILM_EMBED_MODEL, backend="tensorrt")


@pytest.mark.parametrize("fixture", ["minilm_onnx", "default"])
def test_length_sorted_batches_return_rows_in_input_order(fixture: str, request: pytest.FixtureRequest) -> None:
    embedder = request.getfixturevalue(fixture) if fixture != "default" else Embedder(batch_size=2)
    embedder.batch_size = 2  # several batches, each regrouped by length
    texts = [NEWS[2], "Rates.", NEWS[0] * 3, NEWS[5], NEWS[1]]
    together = embedder.encode(texts)
    alone = np.vstack([embedder.encode([t]) for t in texts])
    similarity = together @ alone.T
    # INT8 activations are scaled per batch, so rows differ slightly: each must still match its own text.
    assert list(np.argmax(similarity, axis=1)) == list(range(len(texts)))
    assert np.diag(similarity).min() >= 0.98


def test_token_batches_cover_every_row_once_within_the_budget() -> None:
    lengths = [120, 8, 40, 300, 40, 15, 90, 60, 33]
    batches = _token_batches(lengths, max_rows=3, max_tokens=128)
    assert sorted(j for b in batches for j in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        # padded to its longest row; a row longer than the budget is a batch of its own
        assert max(lengths[j] for j in batch) * len(batch) <= 128 or len(batch) == 1
    flat = [lengths[j] for b in batches for j in b]
    assert flat == sorted(flat)  # shortest first: little padding
    assert [3] in batches  # the 300-token row stands alone


def test_cross_encoder_scores_come_back_in_input_order_whatever_the_batching() -> None:
    encoder = CrossEncoder()
    question = "What did China say about the Taliban?"
    passages = [NEWS[2], NEWS[0] * 4, "China.", NEWS[0], NEWS[1], NEWS[3] * 2]
    pairs = [(question, p) for p in passages]
    encoder.batch_tokens = 100_000
    one_batch = encoder.score_pairs(pairs)
    encoder.batch_tokens = 64  # mostly one pair a batch
    small = encoder.score_pairs(pairs)
    alone = np.array([encoder.score_pairs([pair])[0] for pair in pairs])
    # INT8 activations are scaled per batch: the logits move a little, never their order of relevance.
    for scores in (one_batch, small):
        assert np.abs(scores - alone).max() < 1.0, (scores, alone)
        assert int(np.argmax(scores)) == int(np.argmax(alone)) and scores[3] > scores[0] and scores[3] > scores[5]


def test_short_inputs_are_not_padded_to_the_model_window() -> None:
    """tokenizer.json may ask for fixed-length padding (the reranker's pads to 512): a short pair
    must cost a short pair's work, so each batch is padded only to its own longest row."""
    encoder, embedder = CrossEncoder(), Embedder()
    assert len(encoder._tokenizer.encode("Who?", "Wang Yi.").ids) < 16
    assert len(embedder._tokenizer.encode("Wang Yi.").ids) < 16


def test_the_spacy_pipeline_loads_without_importing_torch_or_spacys_command_line_which_stay_importable() -> None:
    """thinc imports torch whenever it is installed (a second of every start-up), ``import spacy`` its command
    line (0.14 s); the pipeline runs on NumPy and uses neither."""
    code = (
        "import sys; from qa.config import Config; from qa.models import load_spacy\n"
        "nlp = load_spacy(Config().spacy_model)\n"
        "loaded = [m for m in ('torch', 'spacy.cli', 'typer', 'weasel') if m in sys.modules]\n"
        "ents = [e.text for e in nlp('Hua Chunying spoke in Beijing on Monday.').ents]\n"
        "import torch, spacy, spacy.cli\n"
        "print(loaded, ents, torch.zeros(2).sum().item(), callable(spacy.cli.download), spacy.info()['spacy_version'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    import spacy

    assert (
        out.stdout.strip().splitlines()[-1] == f"[] ['Hua Chunying', 'Beijing', 'Monday'] 0.0 True {spacy.__version__}"
    )
