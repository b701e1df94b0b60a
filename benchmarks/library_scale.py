"""Scale of the whole product (issue 20): synthetic news libraries of growing size, measured through the
``qa`` command and the ``Assistant`` front door only, so that any storage behind them is measured unchanged.

    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.library_scale                  # 1,000 and 10,000 articles
    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.library_scale --sizes 1000 3000 50000 --max-build-minutes 30

Per size: wall time and peak RSS of ``qa index FILES --index DIR`` adding 1 and 100 articles (a fresh
process, model load included; of 1 article, the median of ``--add-runs``), the time of ``Assistant.add`` of 1
article in a process that has loaded the library, answered questions and added one article already; ``qa ask``
cold start (a fresh process, median of ``--cold-runs``); serving RSS (VmRSS of a process that loaded the library
and answered 5 questions); ``ask`` p50 over 20 questions through ``Assistant.ask`` after those 5; the index
folder's size on disk. With ``--milvus-lite`` the libraries are kept in Milvus (a Milvus Lite server the run
starts) and a second ``Assistant`` in the serving process, loaded before the additions, times how long it takes
to count each one and find it by its title. Each add runs on a copy of the built library, so every row starts
from the same library (a Milvus library's copies share it: what an add added is removed again).

Articles (``benchmarks.synthetic_library``): with N the 3,702 distinct texts of
``../shared/evaldata/realtimeqa_news/corpus.jsonl``, article i is news article i mod N with a dateline naming
i in front and the first two sentences of article (31 i + 7) mod N appended as a last paragraph, so every
text is unique (the index skips exact duplicates) and reads like news. The articles added are made the same
way with other datelines. Questions: question
q is about library article (7,919 q) mod size: "What do the articles say about W?", W the first 8 words of
4+ letters, common words left out, of the first sentence of 12 to 40 words of its news text.

What is real: everything measured runs the product as shipped (default ``Config`` from the environment,
the default embedder, cross-encoder and spaCy pipeline); the articles added by ``qa index`` and
``Assistant.add`` are annotated and embedded for real. Only the cached base library is built otherwise: its
passage vectors come from a deterministic hashing embedder (word hashes, 384-d, like bge-small), and its
annotation is composed from the spaCy annotation of the N news articles (``benchmarks.synthetic_library``),
so that a 50,000-article library builds in minutes; dense retrieval over hashed vectors finds other passages
than bge would, at the same cost.

Libraries are cached in benchmarks/out/library_scale/ (a size's build time beside it); a size not cached
whose build, estimated from the smaller built sizes, exceeds ``--max-build-minutes`` is skipped and its
estimate printed. Prints a Markdown table and writes benchmarks/out/library_scale.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import synthetic_library
from benchmarks._common import DATA, OUT, absent, command, cores, read_corpus, write_json
from qa import Article, Assistant, Config
from qa.errors import UnknownArticleError
from qa.models import Models
from qa.types import ArticleNotes

CORPUS = DATA / "realtimeqa_news" / "corpus.jsonl"
LIBRARIES = OUT / "library_scale"
JSON_OUT = OUT / "library_scale.json"
DEFAULT_SIZES = (1000, 10000)
SCHEME = "composed-notes-1"  # how the cached libraries were made (benchmarks.synthetic_library)
SERVE_QUESTIONS, P50_QUESTIONS = 5, 20
MILVUS_DATA = LIBRARIES / "milvus-lite"  # the Milvus Lite server's data (``--milvus-lite``)
SERVER: subprocess.Popen | None = None  # that server, when this run started it
STOPWORDS = frozenset(
    "that this with from have were been their they there which would could about after before into over "
    "than then them when what where while will also said says more most some such only other just".split()
)


# ---- the deterministic embedder of the base library -----------------------------------------------------
class HashEmbedder:
    """Unit vectors of hashed words (signed counts in 384 buckets): deterministic and fast, with the
    interface the index uses to build. Stands in for bge-small only when the base library is built."""

    dimension = 384
    batch_size = 32

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """One unit vector per text."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = zlib.crc32(word.encode("utf-8"))
                vectors[row, h % self.dimension] += 1.0 if h & 0x80000000 else -1.0
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Questions are embedded like passages."""
        return self.encode(queries)


# ---- articles and questions ------------------------------------------------------------------------------
def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (split after ., ! or ? before white space)."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def question(q: int, size: int, corpus: Sequence[Article]) -> str:
    """Question ``q`` about a library of ``size`` articles (the rule in the module's docstring)."""
    text = corpus[(7919 * q) % size % len(corpus)].text
    chosen = next((s for s in sentences(text) if 12 <= len(s.split()) <= 40), text)
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]{3,}", chosen) if w.lower() not in STOPWORDS]
    return f"What do the articles say about {' '.join(words[:8])}?"


def news(config: Config) -> tuple[Article, ...]:
    """The RealtimeQA news articles (the file is larger than an article file may be: the limit is lifted)."""
    quiet = logging.getLogger("qa")  # the file's 69 duplicate texts are expected: not one warning each
    level, _ = quiet.level, quiet.setLevel(logging.ERROR)
    try:
        corpus = read_corpus(CORPUS, config.with_changes(max_file_bytes=CORPUS.stat().st_size + 1))
    finally:
        quiet.setLevel(level)
    if not corpus:
        raise SystemExit(f"no articles could be read from {CORPUS}")
    return corpus


def notes_of(corpus: Sequence[Article], config: Config) -> list[ArticleNotes]:
    """The spaCy annotation of every news article (cached)."""
    return synthetic_library.corpus_notes(corpus, Models.of(config).nlp, LIBRARIES / "corpus-notes.jsonl")


def write_additions(corpus: Sequence[Article], notes: Sequence[ArticleNotes], folder: Path, count: int) -> list[Path]:
    """``count`` article files (JSON, as a feed would drop them) that no library holds."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        a = synthetic_library.synthetic(i, corpus, notes, "added")
        path = folder / f"{a.doc_id}.json"
        record = {"doc_id": a.doc_id, "title": a.title, "text": a.text, "date": a.date, "source": a.source}
        path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    words = corpus[5].text.split()[:54]  # and a short one, as the issue measured: 60 words
    short = {"doc_id": "added-short", "title": "Short wire", "text": "NEWSDESK WIRE (added short) - " + " ".join(words)}
    (folder / "added-short.json").write_text(json.dumps(short, ensure_ascii=False), encoding="utf-8")
    return [*paths, folder / "added-short.json"]


# ---- processes -------------------------------------------------------------------------------------------
def timed_child(cmd: Sequence[str], timeout: float = 7200) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds, peak RSS (MiB, from ``os.wait4``'s rusage of that child), exit status and
    standard output. Raises with its output's tail when it fails."""
    env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        done = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(done[1])
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-3000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(done[2].ru_maxrss / 1024), "stdout": stdout}


def start_milvus_lite() -> subprocess.Popen:
    """A Milvus Lite server over ``MILVUS_DATA`` on a free port, which ``$QA_STORE`` names here and in children."""
    import socket

    import pymilvus

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    MILVUS_DATA.mkdir(parents=True, exist_ok=True)
    log = (MILVUS_DATA.parent / "milvus-lite.log").open("a")
    server = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(MILVUS_DATA / "data"), "--host", "127.0.0.1",
         "--port", str(port)], stdout=log, stderr=log,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while True:
        try:
            probe = pymilvus.MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=2, dedicated=True)
            probe.get_server_version()
            probe.close()  # idle, its pings would make the server drop the connection
            break
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "Milvus Lite did not start: see benchmarks/out/library_scale/milvus-lite.log"
                ) from None
            time.sleep(0.5)
    os.environ["QA_STORE"] = f"milvus://127.0.0.1:{port}/scale"
    return server


def qa_command() -> list[str]:
    """The ``qa`` entry point of this environment."""
    script = Path(sys.executable).parent / "qa"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "qa.cli"]


def this_script(*args: str) -> list[str]:
    """This benchmark run again in a fresh process with ``args``."""
    return [sys.executable, "-m", "benchmarks.library_scale", *args]


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON object a probe prints on its last line."""
    return json.loads(stdout.strip().splitlines()[-1])


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    return pid_rss_mb("self")


def pid_rss_mb(pid: int | str) -> float:
    """A process's resident memory now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024)
    return float("nan")


# ---- the probes (run in fresh processes) ------------------------------------------------------------------
def build_probe(size: int, folder: Path) -> dict[str, Any]:
    """Build the library of ``size`` articles in ``folder`` (hashed vectors, everything else as configured)."""
    config = Config.from_env()
    corpus = news(config)
    notes = notes_of(corpus, config)
    articles = [synthetic_library.synthetic(i, corpus, notes) for i in range(size)]
    started = time.perf_counter()
    annotator = synthetic_library.ComposedAnnotator(corpus, notes)
    passages = synthetic_library.build(articles, folder, config, HashEmbedder(), annotator)
    return {"build_s": round(time.perf_counter() - started, 1), "passages": passages, "scheme": SCHEME}


def serve_probe(folder: Path, questions: Sequence[str], additions: Sequence[Path]) -> dict[str, Any]:
    """Load ``folder``, answer questions, then add ``additions`` one at a time: the serving figures."""
    config = Config.from_env()
    started = time.perf_counter()
    assistant = Assistant.load(folder, config)
    load_s = time.perf_counter() - started
    answers = [assistant.ask(q) for q in questions[:SERVE_QUESTIONS]]
    serving = rss_mb()
    times = []
    for q in questions[SERVE_QUESTIONS : SERVE_QUESTIONS + P50_QUESTIONS]:
        started = time.perf_counter()
        answers.append(assistant.ask(q))
        times.append(time.perf_counter() - started)
    replica = Assistant.load(folder, config) if in_milvus() else None  # another process's view, in this one
    adds, seen = [], []
    for path in additions:  # the first warms the add path (spaCy loads on first use); the last is reported
        count = replica.summary().articles + 1 if replica is not None else 0
        started = time.perf_counter()
        update = assistant.add([path], show_progress=False)
        adds.append(round(time.perf_counter() - started, 3))
        assert len(update.added) == 1, update
        if replica is not None:
            seen.append(replica_sees(replica, path, count))
    return {
        "load_s": round(load_s, 2),
        "serving_rss_mb": serving,
        "ask_p50_ms": round(statistics.median(times) * 1000),
        "ask_ms": [round(t * 1000) for t in times],
        "abstained": sum(a.abstained for a in answers),
        "answered": len(answers),
        "api_add_s": adds,
        "replica_sees_s": seen,
    }


def replica_sees(replica: Assistant, path: Path, count: int, limit_s: float = 60.0) -> float:
    """Seconds from now until ``replica`` (loaded before another added the article of ``path``) counts ``count``
    articles and finds that one by its title."""
    article = json.loads(path.read_text(encoding="utf-8"))
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        found = {h.passage.doc_id for h in replica.search(article["title"], top_k=20)}
        if replica.summary().articles >= count and article["doc_id"] in found:
            return round(time.perf_counter() - started, 3)
        time.sleep(0.05)
    return float("inf")


# ---- one size ------------------------------------------------------------------------------------------
def in_milvus() -> bool:
    """True when the libraries are kept in Milvus (``--milvus-lite``, or ``$QA_STORE``)."""
    return Config.from_env().store.startswith("milvus://")


def library(size: int) -> Path:
    """Where the library of ``size`` articles is cached (for a Milvus library: its settings)."""
    return LIBRARIES / f"library-{size}{'-milvus' if in_milvus() else ''}"


def built(size: int) -> dict[str, Any] | None:
    """What the build of the cached library of ``size`` took, None when there is none."""
    sidecar = library(size).with_name(f"{library(size).name}.build.json")
    if not (sidecar.is_file() and Assistant.exists(library(size))):
        return None
    info = json.loads(sidecar.read_text(encoding="utf-8"))
    return info if info.get("scheme") == SCHEME else None  # a library of an earlier scheme is built again


def build(size: int, budget_s: float) -> dict[str, Any] | None:
    """The cached library of ``size`` articles, built first when needed; None (said) when its estimated
    build time exceeds ``budget_s``."""
    if (info := built(size)) is not None:
        return info
    smaller = [(s, b) for s in sorted(_cached_sizes()) if s < size and (b := built(s)) is not None]
    if smaller:
        base, info = smaller[-1]
        estimate = info["build_s"] / base * size
        print(f"  build of {size:,} articles estimated at {estimate / 60:.0f} min (from {base:,}: {info['build_s']} s)")
        if estimate > budget_s:
            print(f"  skipping {size:,}: over the build budget of {budget_s / 60:.0f} min (--max-build-minutes)")
            return {"skipped": True, "estimated_build_s": round(estimate)}
    folder = library(size)
    shutil.rmtree(folder, ignore_errors=True)
    print(f"  building {size:,} articles in {folder} ...", flush=True)
    child = timed_child(this_script("--build-probe", str(size), str(folder)))
    info = last_json(child["stdout"]) | {"build_wall_s": child["wall_s"], "build_peak_rss_mb": child["peak_rss_mb"]}
    info |= {"size": size, "built_at": time.strftime("%Y-%m-%d %H:%M")}
    write_json(library(size).with_name(f"{library(size).name}.build.json"), info)
    print(f"  built in {info['build_s']} s ({info['passages']:,} passages), peak RSS {child['peak_rss_mb']} MiB")
    return info


def _cached_sizes() -> list[int]:
    pattern = r"library-(\d+)-milvus\.build" if in_milvus() else r"library-(\d+)\.build"
    return [int(m.group(1)) for p in LIBRARIES.glob("library-*.build.json") if (m := re.match(pattern, p.name))]


def disk_mb(folder: Path) -> float:
    """The size of the files under ``folder``, in MiB."""
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 1)


def cli_add(size: int, paths: Sequence[Path], scratch: Path, runs: int = 1) -> dict[str, Any]:
    """``qa index PATHS --index COPY`` on a fresh copy of the library of ``size``, ``runs`` times: the median."""
    done = []
    for _ in range(runs):
        copy = scratch / "copy"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(library(size), copy)
        try:
            done.append(timed_child([*qa_command(), "index", *map(str, paths), "--index", str(copy)]))
        finally:
            take_back(copy, paths)
            shutil.rmtree(copy, ignore_errors=True)
    child = sorted(done, key=lambda c: c["wall_s"])[len(done) // 2]
    return {
        "wall_s": child["wall_s"], "peak_rss_mb": child["peak_rss_mb"], "said": child["stdout"].strip()[-200:],
        "runs_s": [c["wall_s"] for c in done],
    }  # fmt: skip


def take_back(folder: Path, paths: Sequence[Path]) -> None:
    """Remove the articles of ``paths`` from a Milvus library (its copies share it); a folder's copy: nothing."""
    if not in_milvus():
        return
    assistant = Assistant.load(folder)
    held = []
    for path in paths:
        with contextlib.suppress(UnknownArticleError):
            held.append(assistant.article(path.stem).doc_id)
    if held:
        assistant.remove(held)


def disk(size: int) -> float:
    """The library's size on disk, in MiB: its folder, or its collections in the Milvus Lite data folder."""
    if not in_milvus():
        return disk_mb(library(size))
    base = json.loads(next(library(size).glob("v*/manifest.json")).read_text())["store"]["collection"]
    return round(sum(disk_mb(p) for p in (MILVUS_DATA / "data" / "collections").glob(f"{base}_*")), 1)


def measure(size: int, corpus: Sequence[Article], additions: Sequence[Path], args: argparse.Namespace) -> dict:
    """Every figure of the library of ``size`` articles."""
    folder = library(size)
    questions = [question(q, size, corpus) for q in range(SERVE_QUESTIONS + P50_QUESTIONS)]
    row: dict[str, Any] = {"size": size, "disk_mb": disk(size)}
    with tempfile.TemporaryDirectory(dir=LIBRARIES, prefix="scratch-") as tmp:
        scratch = Path(tmp)
        print("  qa index, 1 article ...", flush=True)
        row["cli_add_1"] = cli_add(size, additions[:1], scratch, args.add_runs)
        print(f"    {row['cli_add_1']['wall_s']} s; qa index, 1 article of 60 words ...", flush=True)
        row["cli_add_short"] = cli_add(size, additions[-1:], scratch, args.add_runs)
        print(f"    {row['cli_add_short']['wall_s']} s; qa index, 100 articles ...", flush=True)
        row["cli_add_100"] = cli_add(size, additions[1:101], scratch)
        print(f"    {row['cli_add_100']['wall_s']} s; qa ask cold x{args.cold_runs} ...", flush=True)
        cold = [
            timed_child([*qa_command(), "ask", questions[0], "--index", str(folder)]) for _ in range(args.cold_runs)
        ]
        row["ask_cold_s"] = statistics.median(c["wall_s"] for c in cold)
        row["ask_cold_runs"] = [{k: c[k] for k in ("wall_s", "peak_rss_mb")} for c in cold]
        print(f"    {row['ask_cold_s']} s; serving process ...", flush=True)
        copy = scratch / "serve"
        shutil.copytree(folder, copy)
        (scratch / "questions.json").write_text(json.dumps(questions), encoding="utf-8")
        extra = [str(p) for p in [*additions[101:103], additions[-1]]]
        child = timed_child(this_script("--serve-probe", str(copy), str(scratch / "questions.json"), *extra))
        row["serve"] = last_json(child["stdout"]) | {"process_peak_rss_mb": child["peak_rss_mb"]}
        take_back(copy, [Path(p) for p in extra])
        if SERVER is not None:
            row["server_rss_mb"] = pid_rss_mb(SERVER.pid)
    row["api_add_1_s"], row["api_add_short_s"] = row["serve"]["api_add_s"][-2:]
    print(f"    {row['serve']}", flush=True)
    return row


# ---- the report ----------------------------------------------------------------------------------------
def table(rows: Sequence[dict[str, Any]], builds: dict[int, dict[str, Any]], cmd: str) -> str:
    """The Markdown table of ``rows`` (skipped sizes with their estimated build time)."""
    milvus = any("server_rss_mb" in r for r in rows)
    lines = [
        "| articles | passages | build min | add 1, `qa index` | add 1 of 60 words, `qa index` | add 100, `qa index` "
        "| add 1, `Assistant.add` | add 1 of 60 words, `Assistant.add` | `qa ask` cold | serving RSS "
        "| `ask` p50 warm | disk |" + (" replica sees an addition | Milvus Lite server RSS |" if milvus else ""),
        "|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if milvus else ""),
    ]
    for size, info in sorted(builds.items()):
        r = next((r for r in rows if r["size"] == size), None)
        if r is None or info.get("skipped"):
            est = info.get("estimated_build_s", 0) / 60
            lines.append(f"| {size:,} | | ~{est:.0f} (est.) | skipped: build over budget | | | | | | | | |")
            continue
        one, short, hundred, serve = r["cli_add_1"], r["cli_add_short"], r["cli_add_100"], r["serve"]
        lines.append(
            f"| {size:,} | {info['passages']:,} | {info['build_s'] / 60:.1f} | {one['wall_s']:.1f} s, "
            f"{one['peak_rss_mb']:,} MiB | {short['wall_s']:.1f} s, {short['peak_rss_mb']:,} MiB | "
            f"{hundred['wall_s']:.1f} s, {hundred['peak_rss_mb']:,} MiB | {r['api_add_1_s']:.2f} s | "
            f"{r['api_add_short_s']:.2f} s | {r['ask_cold_s']:.1f} s | {serve['serving_rss_mb']:,.0f} MiB | "
            f"{serve['ask_p50_ms']} ms | {r['disk_mb']:,.0f} MiB |"
            + (f" {max(serve['replica_sees_s']):.2f} s | {r['server_rss_mb']:,.0f} MiB |" if milvus else "")
        )
    return "\n".join([*lines, "", f"Command: `{cmd}`"])


def main(argv: Sequence[str] | None = None) -> None:
    """Build (or reuse) each library size, measure it, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="library sizes (articles)")
    parser.add_argument(
        "--max-build-minutes", type=float, default=30.0, help="skip a size not cached whose build is estimated longer"
    )
    parser.add_argument("--rebuild", action="store_true", help="build the sizes again even when cached")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh `qa ask` processes timed (median)")
    parser.add_argument("--add-runs", type=int, default=3, help="`qa index` of 1 article timed (median)")
    parser.add_argument("--out", type=Path, default=JSON_OUT, help="the JSON written")
    parser.add_argument(
        "--milvus-lite", action="store_true", help="keep the libraries in Milvus: a Milvus Lite server this run starts"
    )
    parser.add_argument("--build-probe", nargs=2, metavar=("SIZE", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-probe", nargs="+", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_probe:
        print(json.dumps(build_probe(int(args.build_probe[0]), Path(args.build_probe[1]))))
        return
    if args.serve_probe:
        folder, questions, *extra = args.serve_probe
        print(json.dumps(serve_probe(Path(folder), json.loads(Path(questions).read_text()), [Path(p) for p in extra])))
        return
    if absent(CORPUS, "the library scale benchmark"):
        return
    global SERVER
    if args.milvus_lite:
        SERVER = start_milvus_lite()
        args.out = OUT / "library_scale-milvus.json" if args.out == JSON_OUT else args.out
    try:
        run(args, argv)
    finally:
        if SERVER is not None:
            SERVER.terminate()
            SERVER.wait(60)


def run(args: argparse.Namespace, argv: Sequence[str] | None) -> None:
    """Measure the sizes ``args`` names and report them."""
    cmd = "OMP_NUM_THREADS=2 .venv/bin/" + command("library_scale", sys.argv[1:] if argv is None else argv)
    LIBRARIES.mkdir(parents=True, exist_ok=True)
    corpus = news(Config.from_env())
    additions = write_additions(corpus, notes_of(corpus, Config.from_env()), LIBRARIES / "additions", 103)
    print(
        f"load average {os.getloadavg()[0]:.1f} on {cores()} cores; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    rows: list[dict[str, Any]] = []
    builds: dict[int, dict[str, Any]] = {}
    for size in sorted(set(args.sizes)):
        print(f"{size:,} articles:", flush=True)
        if args.rebuild:  # e.g. after the storage format changed
            library(size).with_name(f"{library(size).name}.build.json").unlink(missing_ok=True)
        info = build(size, args.max_build_minutes * 60)
        builds[size] = info or {"skipped": True}
        if info is not None and not info.get("skipped"):
            rows.append(measure(size, corpus, additions, args))
    meta = {
        "command": cmd,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cores": cores(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "embedding": "base library: deterministic word-hashing vectors (384-d); everything measured: as configured",
        "config": {k: v for k, v in asdict(Config.from_env()).items() if "token" not in k and "key" not in k},
    }
    write_json(args.out, {"meta": meta, "builds": builds, "rows": rows})
    print()
    print(table(rows, builds, cmd))
    print(f"\nWrote {args.out}")


if __name__ == "__main__":
    main()
