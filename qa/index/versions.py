"""The index folder's versions: ``CURRENT`` names the live one, and a write adds a new one.

Layout of an index folder: ``CURRENT`` names the live version, a sub-folder holding::

    manifest.json                 format version, model, dimension, chunking, article hashes,
                                  the vector store (``qa.index.stores``), the FAISS index kind,
                                  and the SHA-256 of every other file of the version
    articles/                     the articles (the text citations point into) and each one's sentences,
                                  entities and speakers (qa.ingest.annotate), in segments that later
                                  versions link (``qa.index.article_store``)
    default__vector_store.json    FAISS index (binary, written by faiss.write_index): exact, or
                                  IVF above ``Config.ann_threshold`` vectors (``qa.index.stores.faiss``);
                                  each passage's vector id is in its article's segment
    bm25/                         the BM25 index, in segments that later versions link (``qa.index.bm25``)

With a Milvus store the FAISS file is absent: the vectors live in the Milvus collection
the manifest names, and everything else stays in the folder.

A write (``write_version``) holds ``write.lock`` (``qa.index.durability``), writes the new version
completely under a temporary name, checksums it, flushes it to disk and renames it; only then
does ``CURRENT`` (replaced atomically) point to it, and older versions are deleted afterwards. A
crash at any moment leaves ``CURRENT`` naming a complete index. Nothing in the folder is
unpickled or evaluated: FAISS reads its own binary format and every other file is JSON (bm25s's
arrays are ``.npy`` read with ``allow_pickle=False``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from qa.config import Config
from qa.errors import CorruptIndexError, IndexChangedError, IndexNotFoundError, ManifestMismatchError, OldFormatError
from qa.index import article_store, stores
from qa.index.article_store import ARTICLES
from qa.index.bm25 import SEGMENTS as BM25_LISTING
from qa.index.durability import WriteLock, file_checksums, fsync_dir, write_atomically
from qa.index.stores import faiss_segments
from qa.index.stores.faiss import FAISS_FILE, ID_MAP
from qa.ingest.articles import content_hash
from qa.types import Article

# 2: each article's annotation (sentences, entities, speakers) in annotations.jsonl; chunks follow its sentences.
# 3: articles, annotations and BM25 in segments that later versions link.
# 4: no llama-index docstore, index structure or FAISS id map: each article's passages (spans and vector
# ids) are stored in its segment, and loading reads where records are, not the records. `qa migrate`
# converts an index of format 2 or 3 (``qa.index.migrate``).
FORMAT_VERSION = 4
MIGRATABLE_FORMATS = (2, 3)
MANIFEST = "manifest.json"
BM25_DIR = "bm25"
CURRENT = "CURRENT"
CHECKSUMS = "files"  # manifest key: {file: SHA-256} of every other file of the version


@contextlib.contextmanager
def writing(index_dir: str | Path, version: str | None) -> Iterator[WriteLock]:
    """Hold ``index_dir``'s write lock for a read-modify-write of the index read from ``version``.

    Raises ``IndexLockedError`` when another writer holds the lock, and ``IndexChangedError`` when another
    writer replaced that version since it was read.
    """
    with WriteLock(index_dir) as lock:
        check_unchanged(lock.root, version)
        yield lock


@contextlib.contextmanager
def holding(root: Path, lock: WriteLock | None) -> Iterator[WriteLock]:
    """``lock``, when the caller holds the write lock of ``root`` already (checked); else the lock, taken here."""
    with contextlib.nullcontext(lock) if lock is not None else WriteLock(root) as held:
        if not held.held or held.root != root:
            raise ValueError(f"writing {root} needs its write lock, not that of {held.root}")
        yield held


def check_unchanged(root: Path, version: str | None) -> None:
    """Raise ``IndexChangedError`` when ``CURRENT`` in ``root`` no longer names ``version`` (None: read from none)."""
    current = read_current(root)
    if version is not None and current != version:
        raise IndexChangedError(str(root), version, current)


def write_version(
    root: Path,
    write_files: Callable[[Path], dict[str, Any]],
    previous_version: str | None = None,
    previous_checksums: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Write a new version into ``root`` (whose write lock the caller holds) and make it current.

    ``write_files(folder)`` writes the version's files into ``folder`` and returns its manifest;
    the checksums of those files are added to it: a file linked from ``previous_version`` (the
    version the writer read, whose manifest recorded ``previous_checksums``) keeps its recorded one.
    Returns the version and the manifest written.
    """
    version = f"v{time.time_ns()}"
    previous = root / previous_version if previous_version else None
    tmp = root / f".tmp-{version}"
    tmp.mkdir()
    try:
        manifest = {k: v for k, v in write_files(tmp).items() if k != CHECKSUMS}
        manifest[CHECKSUMS] = file_checksums(tmp, linked_from=previous, known=previous_checksums)
        # the text json.dumps(indent=2, ensure_ascii=False) writes, in 3 ms instead of 24 at 50,000 articles
        write_atomically(tmp / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2).decode("utf-8"))
        if (tmp / BM25_DIR).is_dir():
            fsync_dir(tmp / BM25_DIR)
        os.replace(tmp, root / version)
        fsync_dir(root)
        write_atomically(root / CURRENT, version + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    remove_old_versions(root, keep=version)
    return version, manifest


def read_on_demand(folder: Path) -> Callable[[str], bool]:
    """Which files of the version ``folder`` (paths relative to it) loading does not read: the article store's
    record files, BM25's segment files (its listing aside) and the FAISS segments their listing describes,
    each checked when it is read."""
    vectors = {
        f"{faiss_segments.FOLDER}/{name}" for name in faiss_segments.read_when_needed(folder / faiss_segments.FOLDER)
    }
    return lambda rel: (
        article_store.read_on_demand(rel)
        or (rel.startswith(f"{BM25_DIR}/") and rel != f"{BM25_DIR}/{BM25_LISTING}")
        or rel in vectors
    )


def checksums_in(manifest: Mapping[str, Any], folder: str) -> dict[str, str] | None:
    """The manifest's SHA-256 of the files in ``folder`` of its version, by file name (None when it has none)."""
    sums = manifest.get(CHECKSUMS)
    if not isinstance(sums, dict):
        return None
    return {rel.removeprefix(f"{folder}/"): sha for rel, sha in sums.items() if rel.startswith(f"{folder}/")}


def manifest_settings(config: Config) -> dict[str, Any]:
    """The settings an index is built with and must be read with."""
    return {
        "embed_model": config.embed_model,
        "chunk_words": config.chunk_words,
        "chunk_overlap_sentences": config.chunk_overlap_sentences,
    }


_FIRST_LAYOUT_FILES = (
    MANIFEST,
    ARTICLES,
    FAISS_FILE,
    "image__vector_store.json",
    ID_MAP,
    "docstore.json",
    "index_store.json",
    "graph_store.json",
)


def remove_old_versions(root: Path, keep: str) -> None:
    """Delete versions other than ``keep``, leftovers of interrupted writes and first-layout files."""
    for name in _FIRST_LAYOUT_FILES:
        (root / name).unlink(missing_ok=True)
    for entry in root.iterdir():
        if entry.name == keep:
            continue
        if entry.is_dir() and re.fullmatch(r"(\.tmp-)?v\d+", entry.name):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file() and re.fullmatch(rf"\.{CURRENT}\.tmp-\d+", entry.name):
            entry.unlink(missing_ok=True)


def recorded_store(root: Path) -> object:
    """The store record of the live version in ``root`` (None when there is none or it is unreadable)."""
    try:
        return read_manifest(current_version(root)).get(stores.MANIFEST_KEY)
    except (IndexNotFoundError, CorruptIndexError):
        return None


def read_current(root: Path) -> str | None:
    """The version ``CURRENT`` names, or None when there is no ``CURRENT``."""
    try:
        return (root / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptIndexError(str(root), f"CURRENT unreadable: {exc}") from exc


def current_version(index_dir: str | Path) -> Path:
    """Return the folder of the index version that ``CURRENT`` names."""
    root = Path(index_dir)
    version = read_current(root)
    if version is None:
        if (root / MANIFEST).is_file():  # the first layout: one index directly in the folder
            return root
        raise IndexNotFoundError(str(index_dir))
    folder = root / version
    if not re.fullmatch(r"v\d+", version) or not folder.is_dir():
        raise CorruptIndexError(str(index_dir), f"CURRENT names a missing version {version!r}")
    return folder


def index_exists(index_dir: str | Path) -> bool:
    """Return True when ``index_dir`` holds an index (a ``CURRENT`` pointer, or a manifest)."""
    return (Path(index_dir) / CURRENT).is_file() or (Path(index_dir) / MANIFEST).is_file()


def read_manifest(folder: Path, index_dir: str | None = None) -> dict[str, Any]:
    """Read a version's ``manifest.json``; raises ``CorruptIndexError`` naming ``index_dir``."""
    where = index_dir if index_dir is not None else str(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptIndexError(where, f"{MANIFEST} is missing from {folder.name}") from None
    except (OSError, ValueError) as exc:
        raise CorruptIndexError(where, f"{MANIFEST} unreadable: {exc}") from exc
    if not isinstance(manifest, dict):
        raise CorruptIndexError(where, f"{MANIFEST} is not an object")
    return manifest


def index_matches(index_dir: str | Path, articles: Sequence[Article], config: Config) -> bool:
    """True when ``index_dir`` holds an index of exactly ``articles`` built with ``config``."""
    try:
        manifest = read_manifest(current_version(index_dir), str(index_dir))
        check_manifest(manifest, config, str(index_dir))
    except (IndexNotFoundError, CorruptIndexError, ManifestMismatchError):
        return False
    return manifest.get("articles") == {a.doc_id: content_hash(a.text) for a in articles}


def check_manifest(manifest: dict[str, Any], config: Config, index_dir: str) -> None:
    """Raise ``ManifestMismatchError`` when the index was built with other settings."""
    expected = {"format_version": FORMAT_VERSION, **manifest_settings(config)}
    differences = {k: (manifest.get(k), v) for k, v in expected.items() if manifest.get(k) != v}
    if manifest.get("format_version") in MIGRATABLE_FORMATS:
        raise OldFormatError(index_dir, manifest["format_version"])
    if differences:
        raise ManifestMismatchError(index_dir, differences)
