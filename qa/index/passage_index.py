"""The passage index: articles, their passages, BM25, and the passage vectors in FAISS or Milvus
through llama-index (``qa.index.stores``), read from and written to the index folder's versions
(``qa.index.versions``). Loading checks the checksums and reads where things are; annotations and
passages are read when a search needs them (``qa.index.article_store``). Nothing is embedded at load.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core import Settings
from llama_index.core.retrievers import QueryFusionRetriever, VectorIndexRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from qa.config import Config
from qa.errors import CorruptIndexError, IndexNotFoundError, UnknownArticleError
from qa.index import article_store, stores, versions
from qa.index.article_store import Stored
from qa.index.bm25 import BM25Index
from qa.index.durability import WriteLock, verify_checksums
from qa.index.nodes import LlamaIndexEmbedding, QueryRetriever, annotated_nodes, vector_index
from qa.index.passage_table import PassageTable
from qa.index.versions import BM25_DIR, CHECKSUMS, FORMAT_VERSION, current_version, read_manifest
from qa.ingest.annotate import Annotator
from qa.ingest.articles import content_hash
from qa.models import Embedder
from qa.types import Article, ArticleNotes, FileProblem, Hit, IndexUpdate, Listed, Passage

INDEX_ID = "passages"  # the id of llama-index's structure for the passage vectors

log = logging.getLogger(__name__)

# Never let llama-index fall back to a remote LLM (setting it prints a notice: silence it).
with contextlib.redirect_stdout(io.StringIO()):
    Settings.llm = None


def passage_lexical_text(article: Article, text: str) -> str:
    """Return the text BM25 indexes for a passage: title and date, then the passage."""
    return f"{article.title} {article.date or ''}\n{text}"


class PassageIndex:
    """Articles, their passages and the vector index over the passages."""

    def __init__(
        self,
        stored: Stored,
        vector_store: Any,
        manifest: dict[str, Any],
        config: Config,
        get_embedder: Callable[[], Embedder],
        bm25: BM25Index,
        version: str | None = None,
    ) -> None:
        self._stored = stored  # articles, annotations, passages and the segments they were read from
        self._articles = stored.articles  # read when asked for (the last 1,024 stay parsed)
        self._headings = stored.headings  # each article's title, date, source and url, in indexing order
        self._notes = stored.notes  # each article's annotation: sentences, entities, speakers
        self._passages = stored.passages
        embed_model = LlamaIndexEmbedding(get_embedder, config.embed_model)
        self._index = vector_index(vector_store, self._passages, self._text, embed_model, INDEX_ID)
        self._config = config  # what sizes and searches the vector index
        self.manifest = manifest
        self.version = version  # the version folder this index was read from or last written to
        self._lock = threading.RLock()  # searches never see a half-applied update
        self._bm25 = bm25
        self.changes = 0  # updates and removals applied in this process

    def _text(self, doc_id: str) -> str:
        return self._articles[doc_id].text

    def _lexical_texts(self, nodes: Sequence[Any]) -> list[str]:
        """What BM25 indexes of each passage node: its article's title and date, then the passage."""
        return [passage_lexical_text(self._articles[n.metadata["doc_id"]], n.get_content()) for n in nodes]

    def _record(self, articles: Sequence[Article], notes: dict[str, ArticleNotes], nodes: Sequence[Any]) -> None:
        """Hold new articles, their annotations and passages (nodes, in order); their nodes then go into
        the vector index under the vector ids the passage table gives them."""
        spans: dict[str, list[list[Any]]] = {a.doc_id: [] for a in articles}
        for node in nodes:
            meta = node.metadata
            spans[meta["doc_id"]].append([meta["start"], meta["end"], meta["sentences"]])
        for article in articles:
            self._stored.put(article, notes[article.doc_id], spans[article.doc_id])

    # ---- building and persisting -------------------------------------------------
    @classmethod
    def build(
        cls,
        articles: Sequence[Article],
        config: Config,
        embedder: Embedder,
        annotator: Annotator,
        show_progress: bool = True,
    ) -> PassageIndex:
        """Annotate, chunk and embed ``articles`` into a new in-memory index."""
        store = stores.spec_for_build(config.store, config.milvus_token)
        vector_store = None
        if store.kind is not stores.StoreKind.FAISS:  # an unreachable server fails before embedding
            vector_store = stores.new_store(store, embedder.dimension, config)
        notes, nodes = annotated_nodes(articles, config, embedder, annotator, show_progress)
        if vector_store is None:  # FAISS: the kind for this many vectors (IVF trained on them)
            vectors = np.asarray([n.get_embedding() for n in nodes], dtype=np.float32).reshape(-1, embedder.dimension)
            vector_store = stores.new_store(store, embedder.dimension, config, vectors)
        manifest = {
            "format_version": FORMAT_VERSION,
            **versions.manifest_settings(config),
            stores.MANIFEST_KEY: store.to_manifest(),
            "dimension": embedder.dimension,
            "passages": len(nodes),
            "articles": {a.doc_id: content_hash(a.text) for a in articles},
            "built_at": _now(),
        }
        index = cls(Stored.empty(), vector_store, manifest, config, lambda: embedder, BM25Index())
        index._record(articles, notes, nodes)
        index._bm25 = BM25Index.build(index._lexical_texts(nodes), [n.node_id for n in nodes])
        index._index.insert_nodes(nodes)  # under the passage table's vector ids; the docstore keeps nothing
        index._refresh_manifest()
        return index

    def update(
        self,
        articles: Sequence[Article],
        config: Config,
        embedder: Embedder,
        annotator: Annotator,
        show_progress: bool = True,
    ) -> IndexUpdate:
        """Add new articles and replace changed ones (same ``doc_id``, new text), in memory.

        Unchanged articles are not embedded again; an article whose text is already
        indexed under another id is skipped as a duplicate.
        """
        hashes = self.manifest["articles"]
        known = {digest: doc_id for doc_id, digest in hashes.items()}
        fresh, added, replaced, unchanged, duplicates = [], [], [], [], []
        for article in articles:
            digest = content_hash(article.text)
            if hashes.get(article.doc_id) == digest:
                unchanged.append(article.doc_id)
            elif digest in known and known[digest] != article.doc_id:
                reason = f"duplicate of article {known[digest]!r}"
                duplicates.append(FileProblem(article.path or article.doc_id, reason))
            else:
                (replaced if article.doc_id in hashes else added).append(article.doc_id)
                fresh.append(article)
                known[digest] = article.doc_id
        with self._lock:
            gone = self._delete(replaced) if replaced else []
            notes, nodes = annotated_nodes(fresh, config, embedder, annotator, show_progress)
            self._record(fresh, notes, nodes)
            self._index.insert_nodes(nodes)
            self._config = config
            self._index.vector_store.fit(config)
            for article in fresh:
                hashes[article.doc_id] = content_hash(article.text)
            self._refresh_manifest()
            self._bm25 = self._bm25.without(gone).added(self._lexical_texts(nodes), [n.node_id for n in nodes])
            self.changes += 1
        return IndexUpdate(tuple(added), tuple(replaced), tuple(unchanged), tuple(duplicates), len(nodes))

    def remove(self, doc_ids: Sequence[str]) -> list[str]:
        """Delete articles and their passages from the vector store, BM25 and the article store.

        Raises ``UnknownArticleError`` naming the ids that are not in the index (nothing is removed then).
        """
        unknown = [d for d in doc_ids if d not in self._headings]
        if unknown:
            raise UnknownArticleError(unknown)
        with self._lock:
            gone = self._delete(list(doc_ids))
            self._index.vector_store.fit(self._config)
            self._refresh_manifest()
            self._bm25 = self._bm25.without(gone)
            self.changes += 1
        return list(doc_ids)

    def _delete(self, doc_ids: list[str]) -> list[str]:
        """Delete articles and their passages (returns the passage ids) from everything but BM25."""
        node_ids = self.node_ids(doc_ids)
        self._index.delete_nodes(node_ids, delete_from_docstore=True)  # the vectors, while the table has them
        for doc_id in doc_ids:
            self._stored.drop(doc_id)
            self.manifest["articles"].pop(doc_id, None)
        return node_ids

    def _refresh_manifest(self) -> None:
        self.manifest["passages"] = self._passages.passages
        self.manifest["vector_index"] = self._index.vector_store.describe()
        self.manifest["updated_at"] = _now()

    def writing(self, index_dir: str | Path) -> contextlib.AbstractContextManager[WriteLock]:
        """Hold ``index_dir``'s write lock for a read-modify-write of this index (``versions.writing``)."""
        return versions.writing(index_dir, self.version)

    def persist(self, index_dir: str | Path, lock: WriteLock | None = None) -> None:
        """Write the index as a new version in ``index_dir`` and switch ``CURRENT`` to it.

        ``lock`` is the folder's write lock when the caller holds it already (see
        ``writing``); otherwise it is taken here. The version is written completely under
        a temporary name, checksummed, flushed to disk and renamed; only then does
        ``CURRENT`` (replaced atomically) point to it; older versions are deleted
        afterwards. A crash at any moment leaves ``CURRENT`` naming a complete index.
        """
        root = Path(index_dir).resolve()
        with versions.holding(root, lock):
            versions.check_unchanged(root, self.version)
            replaced = versions.recorded_store(root)
            version = self._write_version(root)
            # the records written now are read from their files from now on
            self._stored.segments = [article_store.locate(s, self._stored) for s in self._stored.segments]
        stores.drop_replaced(replaced, self.store)
        log.info("Saved index to %s (version %s)", root, version)

    def _write_version(self, root: Path) -> str:
        version, manifest = versions.write_version(root, self._write_files, self.version, self.manifest.get(CHECKSUMS))
        self.manifest[CHECKSUMS] = manifest[CHECKSUMS]
        self.version = version
        return version

    def _write_files(self, folder: Path) -> dict[str, Any]:
        """Write the vectors, BM25 and articles into ``folder``; returns the manifest."""
        with self._lock:
            previous = folder.parent / self.version if self.version else None
            self._index.vector_store.save(folder, previous)  # FAISS's segments; Milvus: nothing
            self._bm25.save(folder / BM25_DIR, previous / BM25_DIR if previous else None)
            hashes = self.manifest["articles"]
            self._stored.segments = article_store.write(folder, self._stored, hashes, previous)
            return dict(self.manifest)

    # ---- loading -------------------------------------------------------------------
    @classmethod
    def load(cls, index_dir: str | Path, config: Config, get_embedder: Callable[[], Embedder]) -> PassageIndex:
        """Load a persisted index; raises if it is missing, damaged or mismatched.

        Every file is checked against the SHA-256 in the manifest first. When a writer
        replaces the index while it is being read, the new version is read instead.
        """
        for attempt in range(3):
            folder = current_version(index_dir)
            try:
                return cls._load_version(folder, str(index_dir), config, get_embedder)
            except (CorruptIndexError, IndexNotFoundError):
                if attempt == 2 or current_version(index_dir) == folder:
                    raise
                log.info("The index in %s was replaced while it was read: reading the new version", index_dir)
        raise AssertionError("unreachable")

    @classmethod
    def _load_version(
        cls, folder: Path, index_dir: str, config: Config, get_embedder: Callable[[], Embedder]
    ) -> PassageIndex:
        manifest = read_manifest(folder, index_dir)
        versions.check_manifest(manifest, config, index_dir)
        if CHECKSUMS in manifest:
            verify_checksums(folder, manifest[CHECKSUMS], index_dir, versions.read_on_demand(folder))
        else:
            log.warning(
                "The index in %s has no file checksums (written by an older version), so damage cannot be "
                "detected; the next write (`qa index`, `qa remove`) adds them.",
                index_dir,
            )
        store = stores.spec_for_load(manifest.get(stores.MANIFEST_KEY), config.store, index_dir, config.milvus_token)
        if store.kind is not stores.StoreKind.FAISS:
            manifest[stores.MANIFEST_KEY] = store.to_manifest()  # the address it is reached at now
        try:
            vector_store = stores.open_store(
                store, folder, int(manifest["dimension"]), int(manifest["passages"]), index_dir, config
            )
            stored = article_store.read(folder, manifest["articles"])
            bm25 = BM25Index.load(folder / BM25_DIR, versions.checksums_in(manifest, BM25_DIR))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CorruptIndexError(index_dir, f"{type(exc).__name__}: {exc}") from exc
        if stored.passages.passages != int(manifest["passages"]):
            raise CorruptIndexError(index_dir, "the articles' passages do not add up to the manifest's count")
        version = folder.name if folder != Path(index_dir) else None
        return cls(stored, vector_store, manifest, config, get_embedder, bm25, version)

    # ---- queries -----------------------------------------------------------------
    @property
    def store(self) -> stores.StoreSpec:
        """Where the passage vectors live (as the manifest records it)."""
        return stores.manifest_store(self.manifest)

    @property
    def dimension(self) -> int:
        """Dimension of the stored vectors."""
        return int(self.manifest["dimension"])

    def __len__(self) -> int:
        return int(self.manifest["passages"])

    @property
    def article_count(self) -> int:
        """How many articles the index holds (none is read to count them)."""
        return len(self._headings)

    def article(self, doc_id: str) -> Article:
        """Return one article; raises ``UnknownArticleError`` (a ``KeyError``) for an unknown id."""
        try:
            return self._articles[doc_id]
        except (KeyError, TypeError):  # TypeError: an id that is not even hashable
            raise UnknownArticleError(doc_id if isinstance(doc_id, str) else repr(doc_id)) from None

    def articles(self) -> list[Article]:
        """Return all articles, in indexing order."""
        return [self._articles[d] for d in self._headings]

    def heading(self, doc_id: str) -> tuple[str, str | None, str | None]:
        """An article's title, date and source, without reading it (``UnknownArticleError`` when not held)."""
        try:
            return self._headings[doc_id][:3]
        except (KeyError, TypeError):
            raise UnknownArticleError(doc_id if isinstance(doc_id, str) else repr(doc_id)) from None

    def doc_ids_where(self, keep: Callable[[str, str | None, str | None], bool]) -> list[str]:
        """The ids of the articles for which ``keep(doc_id, source, date)`` holds, in indexing order
        (their headings are in memory: no article is read)."""
        return [d for d, (_, day, source, _) in self._headings.items() if keep(d, source, day)]

    @property
    def passage_table(self) -> PassageTable:
        """Each article's passage spans and the vector id of its first passage."""
        return self._passages

    def stored_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every vector id and vector the FAISS store holds (IVF-SQ8's decoded, within 1/255 a component)."""
        return self._index.vector_store.segments.stored_vectors()

    def listing(self) -> list[Listed]:
        """Every article as (doc_id, title, date, source, url, passages), in indexing order (no article is read)."""
        return self._stored.listing()

    def passage_count(self, doc_id: str) -> int:
        """Number of passages indexed for an article."""
        return self._passages.count(doc_id)

    def search(self, query_vector: np.ndarray, top_k: int, doc_ids: Collection[str] | None = None) -> list[Hit]:
        """Return the ``top_k`` passages closest to ``query_vector``, best first.

        ``doc_ids`` restricts the search to the passages of those articles.
        """
        with self._lock:
            retriever = self.dense_retriever(top_k, doc_ids)
            bundle = QueryBundle(query_str="", embedding=np.asarray(query_vector, dtype=np.float32).tolist())
            return [self.hit(n) for n in retriever.retrieve(bundle)]

    def dense_retriever(self, top_k: int, doc_ids: Collection[str] | None = None) -> VectorIndexRetriever:
        """A llama-index retriever over the passage vectors (embeds the query itself).

        ``doc_ids`` restricts it to those articles' passages: FAISS searches their vector ids
        (consecutive per article), Milvus filters on the article ids.
        """
        wanted = None if doc_ids is None else list(doc_ids)
        return VectorIndexRetriever(self._index, similarity_top_k=top_k, doc_ids=wanted)

    def hybrid(
        self, query: str, query_vector: np.ndarray, per_retriever: int, top_k: int, doc_ids: Collection[str] | None
    ) -> list[Hit]:
        """Dense and BM25 candidates (``per_retriever`` each) fused by reciprocal rank with llama-index's
        ``QueryFusionRetriever`` (one query, no LLM); the question's vector is handed to the dense retriever."""
        bundle = QueryBundle(query_str=query, embedding=np.asarray(query_vector, dtype=np.float32).tolist())
        bm25 = QueryRetriever(lambda text: self.bm25_search(text, per_retriever, doc_ids))
        fusion = QueryFusionRetriever(
            [self.dense_retriever(per_retriever, doc_ids), bm25],
            mode="reciprocal_rerank",
            num_queries=1,
            similarity_top_k=top_k,
            use_async=False,
        )
        return [self.hit(n) for n in fusion.retrieve(bundle)]

    def bm25_search(self, query: str, top_k: int, doc_ids: Collection[str] | None = None) -> list[NodeWithScore]:
        """BM25's best passages for ``query`` (as docstore nodes), optionally within ``doc_ids``."""
        with self._lock:
            only = None if doc_ids is None else set(doc_ids)
            found = self._bm25.search(query, top_k, only)
            return [NodeWithScore(node=self._index.docstore.get_node(i), score=score) for i, score in found]

    def node_ids(self, doc_ids: Collection[str]) -> list[str]:
        """The passage ids of some articles."""
        return [n for d in doc_ids for n in self._passages.node_ids(d)]

    def hit(self, node: NodeWithScore) -> Hit:
        """A retrieved llama-index node as a ``Hit`` on our ``Passage``."""
        return Hit(self._to_passage(node.node), float(node.score or 0.0))

    def notes(self, doc_id: str) -> ArticleNotes:
        """The annotation of an article (its sentences, entities and speakers)."""
        self.article(doc_id)  # an unknown id raises UnknownArticleError
        return self._notes[doc_id]

    def _to_passage(self, node: Any) -> Passage:
        meta = node.metadata
        article = self._articles[meta["doc_id"]]
        notes = self._notes[article.doc_id]
        sentences = tuple(notes.sentence(article.text, s, e) for s, e in meta["sentences"])
        start, end = meta["start"], meta["end"]
        return Passage(article.doc_id, meta["position"], start, end, article.text[start:end], sentences)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
