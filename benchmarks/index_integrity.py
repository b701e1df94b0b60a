"""What the index's SHA-256 checksums cost: verifying at load, and writing a version.

    .venv/bin/python benchmarks/index_integrity.py                 # 500 and 2,500 articles
    .venv/bin/python benchmarks/index_integrity.py --articles 100 1000

Builds indexes of synthetic articles (40 sentences each, about 3 passages) at each size,
persists them, then loads each three times and times the checksum verification alone and
the whole load (which includes it). The vectors are random unit vectors rather than model
embeddings: what is measured is reading and hashing files, which does not depend on their
values, and it keeps the benchmark to a minute. Prints a table and writes
benchmarks/out/index_integrity.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa import Config  # noqa: E402
from qa.index import CHECKSUMS, PassageIndex, current_version, read_manifest  # noqa: E402
from qa.storage import verify_checksums  # noqa: E402
from qa.types import Article  # noqa: E402


class RandomEmbedder:
    """Unit vectors drawn at random, with the interface ``PassageIndex`` needs to build."""

    dimension = 384
    batch_size = 256

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return one random unit vector per text."""
        vectors = self._rng.standard_normal((len(texts), self.dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_articles(count: int) -> list[Article]:
    """``count`` articles of 40 sentences each."""
    return [
        Article(
            f"article-{i}",
            f"Council report {i}",
            " ".join(f"The council of town {i} met on day {d} to discuss road {d % 17}." for d in range(40)),
        )
        for i in range(count)
    ]


def measure(count: int, folder: Path, repeats: int = 3) -> dict[str, float]:
    """Build, persist and load an index of ``count`` articles; seconds and megabytes."""
    config = Config()
    index = PassageIndex.build(synthetic_articles(count), config, RandomEmbedder(), show_progress=False)
    started = time.perf_counter()
    index.persist(folder)
    persist_s = time.perf_counter() - started
    version = current_version(folder)
    manifest = read_manifest(version)
    size = sum(p.stat().st_size for p in version.rglob("*") if p.is_file())
    verify, load = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        verify_checksums(version, manifest[CHECKSUMS], str(folder))
        verify.append(time.perf_counter() - started)
        started = time.perf_counter()
        PassageIndex.load(folder, config, RandomEmbedder)
        load.append(time.perf_counter() - started)
    return {
        "articles": count,
        "passages": len(index),
        "files": len(manifest[CHECKSUMS]),
        "megabytes": round(size / 1e6, 1),
        "persist_s": round(persist_s, 3),
        "verify_s": round(statistics.median(verify), 4),
        "load_s": round(statistics.median(load), 3),
        "verify_share": round(statistics.median(verify) / statistics.median(load), 3),
    }


def main() -> None:
    """Run the measurement at each size and report it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, nargs="+", default=[500, 2500], help="index sizes, in articles")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "index_integrity.json")
    args = parser.parse_args()
    rows = []
    for count in args.articles:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(measure(count, Path(tmp) / "index"))
    print(
        f"{'articles':>8} {'passages':>8} {'files':>5} {'MB':>6} {'persist s':>9} "
        f"{'verify ms':>9} {'load ms':>8} {'share':>6}"
    )
    for r in rows:
        print(
            f"{r['articles']:>8} {r['passages']:>8} {r['files']:>5} {r['megabytes']:>6} {r['persist_s']:>9.2f} "
            f"{r['verify_s'] * 1000:>9.1f} {r['load_s'] * 1000:>8.0f} {r['verify_share']:>6.1%}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=2), encoding="utf-8")
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
