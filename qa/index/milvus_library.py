"""The whole library in Milvus: what ``PassageIndex`` does over the index folder, over a Milvus server.

``--store milvus://HOST:PORT[/PREFIX]`` keeps every article, annotation, passage (its text, BM25
terms and vector) in the collections ``qa.index.stores.milvus_library`` describes; the index folder
keeps only its settings (one manifest, written when the library is built). Several processes,
on as many machines, answer from one library and write to it:

- a search runs in Milvus: dense, BM25 (Milvus's BM25 function over the terms ``qa.index.bm25``
  makes) or both fused there by reciprocal rank; its hits carry their article's id and content hash,
  and the article and its annotation are read from Milvus (the last ``CACHED`` stay parsed);
- each process keeps the articles' headings (title, date, source, content hash, passage count) in
  memory for filters and counts, and reads the change log at most every second to learn what other
  processes added, replaced or removed (``qa.index.milvus_headings``);
- a write upserts the passages, then the article (whose content hash marks it written), then deletes
  what the new version replaced, then logs the change. Interrupted, it leaves at worst passages no
  article names (searches leave them out) and is repeated by indexing the article again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from llama_index.core.schema import NodeWithScore
from tqdm.auto import tqdm

from qa.config import Config
from qa.errors import UnknownArticleError
from qa.index import stores, versions
from qa.index.bm25 import _stemmer, tokens
from qa.index.durability import WriteLock
from qa.index.milvus_headings import Headings
from qa.index.nodes import annotated_nodes
from qa.index.passage_index import PassageIndex, passage_lexical_text
from qa.index.passage_table import passage_node
from qa.index.stores import milvus_library as rows
from qa.index.stores.milvus_library import HeadingRow, LibraryCollections
from qa.ingest.annotate import Annotator
from qa.ingest.articles import content_hash
from qa.models import Embedder
from qa.types import Article, ArticleNotes, FileProblem, Hit, IndexUpdate, Listed

log = logging.getLogger(__name__)

CACHED = 1024  # articles (with their annotations) kept parsed
WRITE_BATCH = 64  # articles written together


class MilvusLibrary:
    """A library whose articles, passages, BM25 and vectors live in Milvus (the interface of ``PassageIndex``)."""

    def __init__(
        self,
        collections: LibraryCollections,
        manifest: dict[str, Any],
        config: Config,
        get_embedder: Callable[[], Embedder],
        version: str | None = None,
    ) -> None:
        self._rows = collections
        self.manifest = manifest
        self._config = config
        self._get_embedder = get_embedder
        self.version = version
        self._stemmer = _stemmer()
        self._lock = threading.RLock()  # one write at a time
        self._cache_lock = threading.Lock()  # taken last: never while waiting for another lock
        self._cache: OrderedDict[str, tuple[Article, ArticleNotes, str]] = OrderedDict()  # with its content hash
        self._headings = Headings(collections, self._forget)

    # ---- building, loading, persisting --------------------------------------------
    @classmethod
    def build(
        cls,
        articles: Sequence[Article],
        config: Config,
        embedder: Embedder,
        annotator: Annotator,
        show_progress: bool = True,
    ) -> MilvusLibrary:
        """New collections holding ``articles`` (annotated, chunked and embedded here)."""

        def fill(library: MilvusLibrary) -> None:
            library.update(articles, config, embedder, annotator, show_progress)

        return cls._new(config, embedder.dimension, lambda: embedder, fill)

    @classmethod
    def copy_of(cls, index: PassageIndex, config: Config, show_progress: bool = True) -> MilvusLibrary:
        """New collections (``config.store``) holding what the library in a folder holds: its articles, their
        annotations, passages and vectors (as FAISS holds them: IVF-SQ8's decoded). Nothing is embedded."""
        return cls._new(config, index.dimension, _no_embedder, lambda library: library._copy(index, show_progress))

    @classmethod
    def _new(
        cls, config: Config, dimension: int, get_embedder: Callable[[], Embedder], fill: Callable[[MilvusLibrary], None]
    ) -> MilvusLibrary:
        store = stores.spec_for_build(config.store, config.milvus_token)
        collections = LibraryCollections.create(store.uri, store.collection, dimension, store.token)
        manifest = {
            "format_version": versions.FORMAT_VERSION,
            **versions.manifest_settings(config),
            stores.MANIFEST_KEY: store.to_manifest(),
            "dimension": dimension,
            "built_at": _now(),
        }
        try:
            library = cls(collections, manifest, config, get_embedder)
            fill(library)
        except BaseException:  # nothing names the new collections yet
            collections.drop()
            raise
        return library

    def _copy(self, index: PassageIndex, show_progress: bool) -> None:
        table, (ids, vectors) = index.passage_table, index.stored_vectors()
        row_of = {int(v): row for row, v in enumerate(ids)}
        doc_ids = index.doc_ids_where(lambda *_: True)
        with tqdm(total=len(doc_ids), desc="Copying into Milvus", unit="article", disable=not show_progress) as bar:
            for start in range(0, len(doc_ids), WRITE_BATCH):
                articles = [index.article(d) for d in doc_ids[start : start + WRITE_BATCH]]
                nodes: dict[str, list[Any]] = {}
                for article in articles:
                    first, _ = table.vectors(article.doc_id)
                    nodes[article.doc_id] = []
                    for position, (begin, end, sentences) in enumerate(table.spans[article.doc_id]):
                        node_id, text = f"{article.doc_id}::{position}", article.text[begin:end]
                        node = passage_node(node_id, article.doc_id, position, begin, end, sentences, text)
                        node.embedding = vectors[row_of[first + position]].tolist()
                        nodes[article.doc_id].append(node)
                notes = {a.doc_id: index.notes(a.doc_id) for a in articles}
                self._write(articles, notes, nodes, {a.doc_id: content_hash(a.text) for a in articles}, ())
                bar.update(len(articles))
        self._logged(doc_ids)

    @classmethod
    def load(
        cls,
        folder: Path,
        manifest: dict[str, Any],
        index_dir: str,
        config: Config,
        get_embedder: Callable[[], Embedder],
    ) -> MilvusLibrary:
        """The library the manifest of ``folder`` (a version of ``index_dir``) names."""
        store = stores.spec_for_load(manifest.get(stores.MANIFEST_KEY), config.store, index_dir, config.milvus_token)
        manifest[stores.MANIFEST_KEY] = store.to_manifest()  # the address it is reached at now
        collections = LibraryCollections.open(
            store.uri, store.collection, int(manifest["dimension"]), index_dir, store.token
        )
        version = folder.name if folder != Path(index_dir) else None
        return cls(collections, manifest, config, get_embedder, version)

    def persist(self, index_dir: str | Path, lock: WriteLock | None = None) -> None:
        """Write the settings into ``index_dir`` once, when the library is new (it lives in Milvus)."""
        if self.version is not None:
            return
        root = Path(index_dir).resolve()
        with versions.holding(root, lock):
            replaced = versions.recorded_store(root)
            self.version, _ = versions.write_version(root, lambda folder: dict(self.manifest))
        stores.drop_replaced(replaced, self.store)
        log.info("Saved the settings of the Milvus library %s to %s", self.store.describe(), root)

    def writing(self, index_dir: str | Path) -> contextlib.AbstractContextManager[WriteLock]:
        """Hold ``index_dir``'s write lock; ``IndexChangedError`` when it was rebuilt since this was read."""
        return versions.writing(index_dir, self.version)

    # ---- writing -------------------------------------------------------------------
    def update(
        self,
        articles: Sequence[Article],
        config: Config,
        embedder: Embedder,
        annotator: Annotator,
        show_progress: bool = True,
    ) -> IndexUpdate:
        """Add new articles and replace changed ones (same ``doc_id``, new text), as ``PassageIndex.update``."""
        digests = {a.doc_id: content_hash(a.text) for a in articles}
        held = self._rows.headings_of(digests, set(digests.values()))
        hashes = {h.doc_id: h.hash for h in held}
        known = {h.hash: h.doc_id for h in held}
        fresh, added, replaced, unchanged, duplicates = [], [], [], [], []
        for article in articles:
            digest = digests[article.doc_id]
            if hashes.get(article.doc_id) == digest:
                unchanged.append(article.doc_id)
            elif digest in known and known[digest] != article.doc_id:
                duplicates.append(
                    FileProblem(article.path or article.doc_id, f"duplicate of article {known[digest]!r}")
                )
            else:
                (replaced if article.doc_id in hashes else added).append(article.doc_id)
                fresh.append(article)
                known[digest] = article.doc_id
        notes, nodes = annotated_nodes(fresh, config, embedder, annotator, show_progress)
        by_article: dict[str, list[Any]] = {a.doc_id: [] for a in fresh}
        for node in nodes:
            by_article[node.metadata["doc_id"]].append(node)
        with self._lock:
            for start in range(0, len(fresh), WRITE_BATCH):
                group = fresh[start : start + WRITE_BATCH]
                self._write(group, notes, by_article, digests, set(replaced))
            if fresh:
                self._logged([a.doc_id for a in fresh])
        return IndexUpdate(tuple(added), tuple(replaced), tuple(unchanged), tuple(duplicates), len(nodes))

    def _write(
        self,
        articles: Sequence[Article],
        notes: dict[str, ArticleNotes],
        nodes: dict[str, list[Any]],
        digests: dict[str, str],
        replaced: Collection[str],
    ) -> None:
        """Upsert some articles' passages, then the articles; then delete what earlier versions left."""
        passages, pieces = [], []
        for article in articles:
            digest = digests[article.doc_id]
            for node in nodes[article.doc_id]:
                terms = " ".join(tokens([passage_lexical_text(article, node.get_content())], self._stemmer)[0])
                passages.append(rows.passage_row(node, digest, terms))
            record = orjson.dumps({"article": article.to_dict(), "notes": notes[article.doc_id].to_json()}).decode()
            heading = {"title": article.title, "date": article.date or "", "source": article.source or ""}
            heading["url"] = article.url or ""
            heading |= {"passages": len(nodes[article.doc_id]), "added": time.time_ns()}
            pieces.append(rows.article_rows(article.doc_id, digest, heading, record))
        self._rows.put(rows.PASSAGES, passages)
        self._rows.put(rows.ARTICLES, [row for rows_of_one in pieces for row in rows_of_one])
        ids = [a.doc_id for a in articles]
        self._rows.delete(rows.PASSAGES, rows.other_versions(ids, [digests[d] for d in ids]))
        for article, rows_of_one in zip(articles, pieces, strict=True):
            if article.doc_id in replaced:
                self._rows.delete(rows.ARTICLES, rows.stale_pieces(article.doc_id, len(rows_of_one)))
            self._forget(article.doc_id)

    def remove(self, doc_ids: Sequence[str]) -> list[str]:
        """Delete articles (their rows, then their passages); ``UnknownArticleError`` names ids not held."""
        with self._lock:
            held = {h.doc_id for h in self._rows.headings_of(doc_ids)}
            unknown = [d for d in doc_ids if d not in held]
            if unknown:
                raise UnknownArticleError(unknown)
            for expression in rows.passages_of(list(doc_ids)):
                self._rows.delete(rows.ARTICLES, expression)
                self._rows.delete(rows.PASSAGES, expression)
            for doc_id in doc_ids:
                self._forget(doc_id)
            self._logged(list(doc_ids))
        return list(doc_ids)

    def _logged(self, doc_ids: list[str]) -> None:
        """Log a write of ``doc_ids``, flush it, and apply it (and whatever other processes logged) to the headings."""
        self._rows.log_change(doc_ids)
        self._rows.flush()
        self._fresh(force=True)

    def _forget(self, doc_id: str | None) -> None:
        """Drop the cached copy of an article that changed (None: of every article)."""
        with self._cache_lock:
            if doc_id is None:
                self._cache.clear()
            else:
                self._cache.pop(doc_id, None)

    def _fresh(self, force: bool = False) -> dict[str, HeadingRow]:
        return self._headings.current(force)

    @property
    def changes(self) -> int:
        """Changes this process has seen (its own and other processes')."""
        return self._headings.changes

    # ---- queries -----------------------------------------------------------------
    @property
    def store(self) -> stores.StoreSpec:
        return stores.manifest_store(self.manifest)

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    def __len__(self) -> int:
        return sum(h.passages for h in self._fresh().values())

    @property
    def article_count(self) -> int:
        return len(self._fresh())

    def _record(self, doc_id: str) -> tuple[Article, ArticleNotes, str]:
        """An article, its annotation and content hash (``UnknownArticleError`` when the library holds none)."""
        found = self._records([doc_id]) if isinstance(doc_id, str) else {}
        if doc_id not in found:
            raise UnknownArticleError(doc_id if isinstance(doc_id, str) else repr(doc_id))
        return found[doc_id]

    def _records(self, doc_ids: Collection[str]) -> dict[str, tuple[Article, ArticleNotes, str]]:
        """The records of those of ``doc_ids`` the library holds: from the cache, the others in one read."""
        found = {}
        with self._cache_lock:
            for doc_id in doc_ids:
                if (cached := self._cache.get(doc_id)) is not None:
                    self._cache.move_to_end(doc_id)
                    found[doc_id] = cached
        missing = [d for d in dict.fromkeys(doc_ids) if d not in found]
        for doc_id, (digest, body) in (self._rows.bodies(missing) if missing else {}).items():
            data = orjson.loads(body)
            found[doc_id] = (Article(**data["article"]), ArticleNotes.from_json(data["notes"]), digest)
        with self._cache_lock:
            for doc_id in missing:
                if doc_id in found:
                    self._cache[doc_id] = found[doc_id]
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
        return found

    def article(self, doc_id: str) -> Article:
        return self._record(doc_id)[0]

    def notes(self, doc_id: str) -> ArticleNotes:
        return self._record(doc_id)[1]

    def articles(self) -> list[Article]:
        """Every article, in the order they were added (read in batches)."""
        ids = list(self._fresh())
        found: list[Article] = []
        for start in range(0, len(ids), rows.BATCH):
            bodies = self._rows.bodies(ids[start : start + rows.BATCH])
            found += [
                Article(**orjson.loads(bodies[d][1])["article"]) for d in ids[start : start + rows.BATCH] if d in bodies
            ]
        return found

    def heading(self, doc_id: str) -> tuple[str, str | None, str | None]:
        held = self._fresh().get(doc_id) if isinstance(doc_id, str) else None
        if held is None:  # added by another process since the change log was read
            found = self._rows.headings_of([doc_id]) if isinstance(doc_id, str) else []
            if not found:
                raise UnknownArticleError(doc_id if isinstance(doc_id, str) else repr(doc_id))
            held = found[0]
        return held.title, held.date, held.source

    def doc_ids_where(self, keep: Callable[[str, str | None, str | None], bool]) -> list[str]:
        return [d for d, h in self._fresh().items() if keep(d, h.source, h.date)]

    def passage_count(self, doc_id: str) -> int:
        held = self._fresh().get(doc_id)
        return held.passages if held is not None else 0

    def listing(self) -> list[Listed]:
        """Every article as (doc_id, title, date, source, url, passages), in the order they were added (from the
        headings held in memory: no article is read)."""
        return [(h.doc_id, h.title, h.date, h.source, h.url, h.passages) for h in self._fresh().values()]

    def node_ids(self, doc_ids: Collection[str]) -> list[str]:
        return [f"{d}::{i}" for d in doc_ids for i in range(self.passage_count(d))]

    def search(self, query_vector: np.ndarray, top_k: int, doc_ids: Collection[str] | None = None) -> list[Hit]:
        """The ``top_k`` passages closest to ``query_vector`` (within ``doc_ids``' articles), best first."""
        if doc_ids is not None and not doc_ids:
            return []
        self._fresh()
        vector = np.asarray(query_vector, dtype=np.float32).tolist()
        return self._hits(self._rows.dense(vector, top_k, rows.within(doc_ids)))

    def bm25_search(self, query: str, top_k: int, doc_ids: Collection[str] | None = None) -> list[NodeWithScore]:
        """Milvus's BM25 best passages for ``query`` (as llama-index nodes), optionally within ``doc_ids``."""
        terms = self._terms(query)
        if not terms or (doc_ids is not None and not doc_ids):
            return []
        self._fresh()
        found = self._rows.bm25(terms, top_k, rows.within(doc_ids))
        return [NodeWithScore(node=rows.row_node(r), score=r["score"]) for r, _ in self._current(found)]

    def hybrid(
        self, query: str, query_vector: np.ndarray, per_retriever: int, top_k: int, doc_ids: Collection[str] | None
    ) -> list[Hit]:
        """Dense and BM25 candidates fused by reciprocal rank, in Milvus (as ``PassageIndex.hybrid`` does locally)."""
        if doc_ids is not None and not doc_ids:
            return []
        self._fresh()  # what other processes replaced or removed is not read from this one's cache
        vector = np.asarray(query_vector, dtype=np.float32)
        found = self._rows.hybrid(vector.tolist(), self._terms(query), per_retriever, top_k, rows.within(doc_ids))
        # Equal fused scores in the order llama-index's fusion gives them (the dense list's, its first):
        # Milvus leaves their order to the server.
        found.sort(key=lambda r: (-r["score"], -float(np.dot(vector, np.asarray(r["embedding"], dtype=np.float32)))))
        return self._hits(found)

    def hit(self, node: NodeWithScore) -> Hit:
        meta = node.node.metadata
        article, notes, _ = self._record(meta["doc_id"])
        return Hit(rows.row_passage(article, notes, meta), float(node.score or 0.0))

    def _hits(self, found: list[dict[str, Any]]) -> list[Hit]:
        """The rows of a search as hits on the passages of the articles held now."""
        return [
            Hit(rows.row_passage(a, notes, row), float(row["score"])) for row, (a, notes, _) in self._current(found)
        ]

    def _current(self, found: list[dict[str, Any]]) -> list[tuple[dict[str, Any], tuple[Article, ArticleNotes, str]]]:
        """The rows of a search with their article's record, leaving out passages of a version no longer held."""
        records = self._records([r["doc_id"] for r in found])
        held = ((row, records.get(row["doc_id"])) for row in found)
        return [(row, record) for row, record in held if record is not None and record[2] == row["hash"]]

    def _terms(self, query: str) -> str:
        return " ".join(tokens([query], self._stemmer)[0])


def _no_embedder() -> Embedder:
    raise RuntimeError("a library copied into Milvus embeds nothing until it is loaded again")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
