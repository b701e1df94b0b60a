"""``qa migrate``: convert an index of format 2 or 3 to the current format without embedding anything, or
move a library from its folder into Milvus (``qa migrate --to milvus://...``, ``to_milvus``).

Formats 2 and 3 kept every passage in llama-index's JSON docstore (``docstore.json``), the node map in
``index_store.json`` and the FAISS id of each passage in ``id_map.json``; format 2 also kept the articles
and annotations in one file each, and BM25 in bm25s's files. The conversion reads those once, keeps the
vectors (renumbered only where an article's passages do not have consecutive ids), and writes a new
version the usual way (write lock, checksums, ``CURRENT`` switched last): interrupted, it leaves the old
version live.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from qa.config import Config
from qa.errors import CorruptIndexError, QAError
from qa.index import stores
from qa.index.article_store import ANNOTATIONS, ARTICLES, FOLDER, LISTING, Stored
from qa.index.bm25 import SEGMENTS as BM25_SEGMENTS
from qa.index.bm25 import BM25Index
from qa.index.durability import WriteLock, verify_checksums
from qa.index.library import load as load_library
from qa.index.library import milvus_library
from qa.index.passage_index import PassageIndex, passage_lexical_text
from qa.index.passage_table import PassageTable, split_node_id
from qa.index.stores import faiss as faiss_store
from qa.index.stores.faiss_segments import FaissSegments, IdMapFaissStore
from qa.index.versions import BM25_DIR, CHECKSUMS, FORMAT_VERSION, MIGRATABLE_FORMATS, current_version, read_manifest
from qa.types import Article, ArticleNotes

log = logging.getLogger(__name__)

DOCSTORE = "docstore.json"


@dataclass(frozen=True)
class Migration:
    """What ``migrate`` did: the format it read, and what the new version holds."""

    index_dir: str
    from_format: int
    articles: int
    passages: int
    renumbered: bool  # whether the vectors were given new ids
    moved_to: str = ""  # the Milvus library the articles were moved to (``to_milvus``)

    def describe(self) -> str:
        """One line saying what was done, as ``qa migrate`` prints it."""
        held = f"{self.articles} article(s), {self.passages} passage(s)"
        if self.moved_to:
            return f"Moved {self.index_dir}/ into {self.moved_to}: {held}"
        return f"Converted {self.index_dir}/ from format {self.from_format} to the current one: {held}"


def migrate(index_dir: str | Path, config: Config) -> Migration:
    """Convert the index in ``index_dir`` to the current format; raises ``QAError`` saying why it cannot."""
    root = Path(index_dir).resolve()
    current_version(root)  # no index there: IndexNotFoundError, before the lock would make the folder
    with WriteLock(root) as lock:
        folder = current_version(root)
        manifest = read_manifest(folder, str(index_dir))
        found = manifest.get("format_version")
        if found == FORMAT_VERSION:
            raise QAError(f"The index in {str(index_dir)!r} is already in format {FORMAT_VERSION}: nothing to do.")
        if found not in MIGRATABLE_FORMATS:
            raise QAError(
                f"The index in {str(index_dir)!r} is in format {found!r}, which cannot be converted; rebuild it: "
                f"`qa index PATH... --index {index_dir} --rebuild`."
            )
        if CHECKSUMS in manifest:
            verify_checksums(folder, manifest[CHECKSUMS], str(index_dir))
        try:
            index, renumbered = _read_old(folder, manifest, str(index_dir), config)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptIndexError(str(index_dir), f"{type(exc).__name__}: {exc}") from exc
        index.persist(root, lock)
    log.info("Converted the index in %s from format %s to %s", index_dir, found, FORMAT_VERSION)
    return Migration(str(index_dir), int(found), index.article_count, len(index), renumbered)


def to_milvus(index_dir: str | Path, config: Config, store: str, show_progress: bool = True) -> Migration:
    """Move the library in the folder ``index_dir`` into Milvus (``store``: ``milvus://HOST:PORT[/PREFIX]``),
    vectors included: nothing is annotated or embedded again. The folder then keeps only its settings.
    Interrupted, the folder's library stays live (the new collections are dropped; killed, they are left)."""
    if stores.parse_store(store).kind is not stores.StoreKind.MILVUS_LIBRARY:
        raise QAError(f"--to {store!r}: a library moves to milvus://HOST:PORT[/PREFIX] (the whole library in Milvus).")
    root = Path(index_dir).resolve()
    current_version(root)  # no index there: IndexNotFoundError, before the lock would make the folder
    with WriteLock(root) as lock:
        index = load_library(root, config, _no_embedder)  # format 2 or 3: OldFormatError, naming qa migrate
        if not isinstance(index, PassageIndex) or index.store.kind is not stores.StoreKind.FAISS:
            raise QAError(
                f"The index in {str(index_dir)!r} is kept in {index.store.describe()}: only a library kept in its "
                f"folder moves. Rebuild it instead: `qa index PATH... --index {index_dir} --rebuild --store {store}`."
            )
        moved = milvus_library(store).copy_of(index, config.with_changes(store=store), show_progress)
        moved.persist(root, lock)
    log.info("Moved the library in %s into %s", index_dir, moved.store.describe())
    return Migration(str(index_dir), FORMAT_VERSION, moved.article_count, len(moved), False, moved.store.describe())


def _no_embedder() -> Any:
    raise RuntimeError("moving an index embeds nothing")


def _read_old(folder: Path, manifest: dict[str, Any], index_dir: str, config: Config) -> tuple[PassageIndex, bool]:
    hashes = manifest["articles"]
    articles, notes = _old_articles(folder, hashes)
    spans = _old_spans(folder, hashes)
    store = stores.spec_for_load(manifest.get(stores.MANIFEST_KEY), config.store, index_dir, config.milvus_token)
    dimension, passages = int(manifest["dimension"]), int(manifest["passages"])
    vector_store = stores.open_store(store, folder, dimension, passages, index_dir, config)
    renumbered = False
    if store.kind is stores.StoreKind.FAISS:
        vectors, renumbered = _faiss_ids(folder, vector_store, spans, config)
    else:  # Milvus finds passages by node id: the table's ids are not used there
        vectors, first = {}, 0
        for doc_id, rows in spans.items():
            vectors[doc_id] = (first, len(rows))
            first += len(rows)
    stored = Stored.empty()
    for doc_id in hashes:
        stored.put(articles[doc_id], notes[doc_id], spans[doc_id])
    stored.passages = PassageTable(stored.passages.spans, vectors)  # the ids the vectors have
    if (folder / BM25_DIR / BM25_SEGMENTS).is_file():  # format 3: BM25 in segments, kept as they are
        bm25 = BM25Index.load(folder / BM25_DIR)
    else:
        texts, ids = [], []
        for doc_id, rows in spans.items():
            article = articles[doc_id]
            for position, (start, end, _) in enumerate(rows):
                texts.append(passage_lexical_text(article, article.text[start:end]))
                ids.append(f"{doc_id}::{position}")
        bm25 = BM25Index.build(texts, ids)
    manifest = {k: v for k, v in manifest.items() if k != CHECKSUMS}
    manifest["format_version"] = FORMAT_VERSION
    manifest["passages"] = stored.passages.passages

    return PassageIndex(stored, vector_store, manifest, config, _no_embedder, bm25, folder.name), renumbered


def _old_articles(folder: Path, hashes: Mapping[str, str]) -> tuple[dict[str, Article], dict[str, ArticleNotes]]:
    """The live articles and annotations of a version of format 2 (one file each) or 3 (segments)."""
    pairs: dict[str, tuple[bytes, bytes]] = {}
    if (folder / FOLDER / LISTING).is_file():
        for name in json.loads((folder / FOLDER / LISTING).read_text(encoding="utf-8"))["segments"]:
            ids = json.loads((folder / FOLDER / f"{name}.ids.json").read_text(encoding="utf-8"))
            texts_file, notes_file = folder / FOLDER / f"{name}.jsonl", folder / FOLDER / f"{name}.notes.jsonl"
            with open(texts_file, "rb") as texts, open(notes_file, "rb") as lines:
                for d, h, text, note in zip(ids["doc_ids"], ids["hashes"], texts, lines, strict=True):
                    if hashes.get(d) == h and d not in pairs:
                        pairs[d] = (text, note)
    else:
        with open(folder / ARTICLES, "rb") as texts, open(folder / ANNOTATIONS, "rb") as lines:
            by_id = {orjson.loads(t)["doc_id"]: t for t in texts}
            for note in lines:
                d = orjson.loads(note)["doc_id"]
                if d in hashes and d in by_id:
                    pairs[d] = (by_id[d], note)
    missing = [d for d in hashes if d not in pairs]
    if missing:
        raise ValueError(f"{len(missing)} article(s) of the manifest are not stored, e.g. {missing[0]!r}")
    articles = {d: Article(**orjson.loads(pairs[d][0])) for d in hashes}
    notes = {d: ArticleNotes.from_json(orjson.loads(pairs[d][1])) for d in hashes}
    return articles, notes


def _old_spans(folder: Path, hashes: Mapping[str, str]) -> dict[str, list[list[Any]]]:
    """Each article's passage spans, in position order, from llama-index's JSON docstore."""
    data = orjson.loads((folder / DOCSTORE).read_bytes())["docstore/data"]
    rows: dict[str, dict[int, list[Any]]] = {d: {} for d in hashes}
    for node_id, entry in data.items():
        meta = entry["__data__"]["metadata"]
        parts = split_node_id(node_id)
        if parts is None or parts[0] != meta["doc_id"] or parts[1] != meta["position"]:
            raise ValueError(f"passage {node_id!r} is not <doc_id>::<position>")
        if meta["doc_id"] in rows:
            rows[meta["doc_id"]][meta["position"]] = [meta["start"], meta["end"], meta["sentences"]]
    spans = {}
    for doc_id, by_position in rows.items():
        if sorted(by_position) != list(range(len(by_position))):
            raise ValueError(f"the passages of {doc_id!r} are not numbered 0, 1, ...")
        spans[doc_id] = [by_position[p] for p in range(len(by_position))]
    return spans


def _faiss_ids(
    folder: Path, store: IdMapFaissStore, spans: Mapping[str, list[Any]], config: Config
) -> tuple[dict[str, tuple[int, int]], bool]:
    """Each article's (first vector id, passage count): the ids FAISS has when they are consecutive per
    article, else new ones (the vectors re-added under them)."""
    id_map = orjson.loads((folder / faiss_store.ID_MAP).read_bytes())["node_id_to_faiss_id_map"]
    old = {k: int(v) for k, v in id_map.items()}
    vectors: dict[str, tuple[int, int]] = {}
    consecutive = True
    for doc_id, rows in spans.items():
        ids = [old.get(f"{doc_id}::{p}") for p in range(len(rows))]
        first = ids[0] if ids else 0
        consecutive = consecutive and None not in ids and ids == list(range(first, first + len(ids)))
        vectors[doc_id] = (first if first is not None else 0, len(rows))
    if consecutive:
        return vectors, False
    held, stored = store.segments.stored_vectors()
    place = {int(i): n for n, i in enumerate(held.tolist())}
    new_ids, rows_of, first = [], [], 0
    for doc_id, rows in spans.items():
        for p in range(len(rows)):
            old_id = old.get(f"{doc_id}::{p}")
            if old_id is None or old_id not in place:
                raise ValueError(f"passage {doc_id}::{p} has no vector")
            rows_of.append(place[old_id])
        vectors[doc_id] = (first, len(rows))
        new_ids.extend(range(first, first + len(rows)))
        first += len(rows)
    chosen = stored[np.asarray(rows_of, dtype=np.int64)] if rows_of else stored[:0]
    fresh = FaissSegments.new(store.segments.d, config, chosen)
    if new_ids:
        fresh.add_with_ids(chosen, np.asarray(new_ids, dtype=np.int64))
    store._faiss_index = fresh
    return vectors, True
