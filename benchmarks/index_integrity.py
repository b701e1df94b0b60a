"""What the index's SHA-256 checksums cost: verifying at load, and writing a version.

    .venv/bin/python -m benchmarks.index_integrity                 # 500 and 2,500 articles
    .venv/bin/python -m benchmarks.index_integrity --articles 100 1000

Builds indexes of synthetic articles (40 sentences each, about 3 passages) at each size,
persists them, then loads each three times and times the checksum verification alone and
the whole load (which includes it). The vectors are random unit vectors rather than model
embeddings: what is measured is reading and hashing files, which does not depend on their
values, and it keeps the benchmark to a minute. Prints a table and writes
benchmarks/out/index_integrity.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import _common
from benchmarks._common import RandomEmbedder, synthetic_articles
from qa import Config
from qa.index.durability import verify_checksums
from qa.index.passage_index import PassageIndex
from qa.index.versions import CHECKSUMS, current_version, read_manifest
from qa.ingest.annotate import Annotator
from qa.models import load_spacy


def measure(count: int, folder: Path, repeats: int = 3) -> dict[str, float]:
    """Build, persist and load an index of ``count`` articles; seconds and megabytes."""
    config = Config()
    annotator = Annotator(load_spacy(config.spacy_model))
    index = PassageIndex.build(synthetic_articles(count), config, RandomEmbedder(), annotator, show_progress=False)
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
    parser.add_argument("--out", type=Path, default=_common.OUT / "index_integrity.json")
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
    _common.write_json(args.out, {"rows": rows})
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
