"""The passage index: sentence-transformers vectors in FAISS or Milvus, through llama-index.

Layout of an index folder: ``CURRENT`` names the live version, a sub-folder holding::

    manifest.json                 format version, model, dimension, chunking, article hashes,
                                  the vector store (qa/stores.py), the FAISS index kind, and
                                  the SHA-256 of every other file of the version
    articles.jsonl                the articles (the text citations point into)
    default__vector_store.json    FAISS index (binary, written by faiss.write_index): exact, or
                                  IVF above ``Config.ann_threshold`` vectors (qa/faiss_index.py)
    id_map.json                   FAISS id <-> passage id (JSON)
    docstore.json, index_store.json, ...   llama-index's JSON docstore
    bm25/                         the BM25 index

With a Milvus store the two FAISS files are absent: the vectors live in the Milvus collection
the manifest names, and everything else stays in the folder.

Loading checks the checksums, reads these files and never embeds anything. A write holds
``write.lock`` (one writer at a time), creates a new version folder and then atomically
replaces ``CURRENT``, so an interrupted write leaves the previous index usable. Nothing
in the folder is unpickled or evaluated: FAISS reads its own binary format and every
other file is JSON (bm25s's arrays are ``.npy`` read with ``allow_pickle=False``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from llama_index.core import Settings, StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.data_structs import IndexDict
from llama_index.core.retrievers import VectorIndexRetriever
from llama_index.core.schema import (
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.storage.index_store import SimpleIndexStore
from llama_index.core.storage.kvstore import SimpleKVStore
from tqdm.auto import tqdm

from qa import stores
from qa.articles import FileProblem, content_hash
from qa.bm25 import BM25Index
from qa.chunking import make_passages
from qa.config import Config
from qa.errors import (
    CorruptIndexError,
    IndexChangedError,
    IndexNotFoundError,
    ManifestMismatchError,
    UnknownArticleError,
)
from qa.faiss_index import describe
from qa.models import Embedder
from qa.storage import WriteLock, file_checksums, fsync_dir, verify_checksums, write_atomically
from qa.stores import FAISS_FILE, ID_MAP
from qa.types import Article, Passage, Sentence

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BM25_DIR = "bm25"
CURRENT = "CURRENT"
ARTICLES = "articles.jsonl"
CHECKSUMS = "files"  # manifest key: {file: SHA-256} of every other file of the version

# Never let llama-index fall back to a remote LLM (setting it prints a notice: silence it).
with contextlib.redirect_stdout(io.StringIO()):
    Settings.llm = None


class LlamaIndexEmbedding(BaseEmbedding):
    """Adapter that lets llama-index embed queries with our ``Embedder`` (loaded lazily)."""

    _get_embedder: Callable[[], Embedder] = PrivateAttr()

    def __init__(self, get_embedder: Callable[[], Embedder], model_name: str) -> None:
        super().__init__(model_name=model_name, embed_batch_size=32)
        self._get_embedder = get_embedder

    @classmethod
    def class_name(cls) -> str:
        """Name used in llama-index's serialisation."""
        return "QAEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_embedder().encode_queries([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_embedder().encode([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._get_embedder().encode(texts).tolist()


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its retrieval score (cosine similarity)."""

    passage: Passage
    score: float


def passage_embed_text(article: Article, passage: Passage) -> str:
    """Return the text embedded for a passage: the article title, then the passage."""
    return f"{article.title}\n{passage.text}"


def passage_lexical_text(article: Article, text: str) -> str:
    """Return the text BM25 indexes for a passage: title and date, then the passage."""
    return f"{article.title} {article.date or ''}\n{text}"


def _manifest_settings(config: Config) -> dict[str, Any]:
    return {
        "embed_model": config.embed_model,
        "chunk_words": config.chunk_words,
        "chunk_overlap_sentences": config.chunk_overlap_sentences,
    }


class PassageIndex:
    """Articles, their passages and the vector index over the passages."""

    def __init__(
        self,
        articles: dict[str, Article],
        index: VectorStoreIndex,
        manifest: dict[str, Any],
        bm25: BM25Index | None = None,
        version: str | None = None,
        config: Config | None = None,
    ) -> None:
        self._articles = articles
        self._index = index
        self._config = config or Config.from_env()  # what sizes and searches the vector index
        self.manifest = manifest
        self.version = version  # the version folder this index was read from or last written to
        self._lock = threading.RLock()  # searches never see a half-applied update
        self._bm25 = bm25 if bm25 is not None else self._build_bm25()
        self._by_article: tuple[BM25Index, dict[str, tuple[list[str], np.ndarray]]] | None = None
        stores.keep_only_known(index.vector_store, index.index_struct.nodes_dict.__contains__)

    def _build_bm25(self) -> BM25Index:
        """BM25 over every passage, with its article's title and date."""
        nodes = list(self._index.docstore.docs.values())
        texts = [passage_lexical_text(self._articles[n.metadata["doc_id"]], n.get_content()) for n in nodes]
        return BM25Index.build(texts, [n.node_id for n in nodes])

    # ---- building and persisting -------------------------------------------------
    @classmethod
    def build(
        cls,
        articles: Sequence[Article],
        config: Config,
        embedder: Embedder,
        show_progress: bool = True,
    ) -> PassageIndex:
        """Chunk and embed ``articles`` into a new in-memory index."""
        store = stores.spec_for_build(config.store)
        vector_store = None
        if store.kind is not stores.StoreKind.FAISS:  # an unreachable server fails before embedding
            vector_store = stores.new_store(store, embedder.dimension, config)
        nodes = _embedded_nodes(articles, config, embedder, show_progress)
        if vector_store is None:  # FAISS: the kind for this many vectors (IVF trained on them)
            vectors = np.asarray([n.get_embedding() for n in nodes], dtype=np.float32).reshape(-1, embedder.dimension)
            vector_store = stores.new_store(store, embedder.dimension, config, vectors)
        storage = StorageContext.from_defaults(vector_store=vector_store)
        embed_model = LlamaIndexEmbedding(lambda: embedder, config.embed_model)
        # The docstore keeps every passage even when the vector store keeps text too (Milvus).
        index = VectorStoreIndex(
            nodes,
            storage_context=storage,
            embed_model=embed_model,
            store_nodes_override=True,
            transformations=[embed_model],  # passages come chunked: no default splitter (nor its tokenizer)
        )
        manifest = {
            "format_version": FORMAT_VERSION,
            **_manifest_settings(config),
            stores.MANIFEST_KEY: store.to_manifest(),
            "dimension": embedder.dimension,
            "passages": len(nodes),
            "articles": {a.doc_id: content_hash(a.text) for a in articles},
            "vector_index": _vector_index(vector_store),
            "built_at": _now(),
        }
        return cls({a.doc_id: a for a in articles}, index, manifest, config=config)

    def update(
        self, articles: Sequence[Article], config: Config, embedder: Embedder, show_progress: bool = True
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
            if replaced:
                self._delete(replaced)
            nodes = _embedded_nodes(fresh, config, embedder, show_progress)
            self._index.insert_nodes(nodes)
            self._config = config
            _fit_vector_index(self._index.vector_store, config)
            for article in fresh:
                self._articles[article.doc_id] = article
                hashes[article.doc_id] = content_hash(article.text)
            self._refresh_manifest()
            if fresh or replaced:
                self._bm25 = self._build_bm25()
        return IndexUpdate(tuple(added), tuple(replaced), tuple(unchanged), tuple(duplicates), len(nodes))

    def remove(self, doc_ids: Sequence[str]) -> list[str]:
        """Delete articles and their passages from the vector store, the docstore and the article store.

        Raises ``UnknownArticleError`` naming the ids that are not in the index (nothing is removed then).
        """
        unknown = [d for d in doc_ids if d not in self._articles]
        if unknown:
            raise UnknownArticleError(unknown)
        with self._lock:
            self._delete(list(doc_ids))
            _fit_vector_index(self._index.vector_store, self._config)
            self._refresh_manifest()
            self._bm25 = self._build_bm25()
        return list(doc_ids)

    def _delete(self, doc_ids: list[str]) -> None:
        docstore = self._index.docstore
        node_ids: list[str] = []
        for doc_id in doc_ids:
            info = docstore.get_ref_doc_info(doc_id)
            if info is not None:
                node_ids.extend(info.node_ids)
        self._index.delete_nodes(node_ids, delete_from_docstore=True)
        for doc_id in doc_ids:
            docstore.delete_ref_doc(doc_id, raise_error=False)
            self._articles.pop(doc_id, None)
            self.manifest["articles"].pop(doc_id, None)

    def _refresh_manifest(self) -> None:
        self.manifest["passages"] = len(self._index.index_struct.nodes_dict)
        self.manifest["vector_index"] = _vector_index(self._index.vector_store)
        self.manifest["updated_at"] = _now()

    @contextlib.contextmanager
    def writing(self, index_dir: str | Path) -> Iterator[WriteLock]:
        """Hold ``index_dir``'s write lock for a read-modify-write of this index.

        Raises ``IndexLockedError`` when another writer holds the lock, and
        ``IndexChangedError`` when another writer replaced the index since this one was read.
        """
        with WriteLock(index_dir) as lock:
            self._check_unchanged(lock.root)
            yield lock

    def _check_unchanged(self, root: Path) -> None:
        if self.version is None:
            return
        current = _read_current(root)
        if current != self.version:
            raise IndexChangedError(str(root), self.version, current)

    def persist(self, index_dir: str | Path, lock: WriteLock | None = None) -> None:
        """Write the index as a new version in ``index_dir`` and switch ``CURRENT`` to it.

        ``lock`` is the folder's write lock when the caller holds it already (see
        ``writing``); otherwise it is taken here. The version is written completely under
        a temporary name, checksummed, flushed to disk and renamed; only then does
        ``CURRENT`` (replaced atomically) point to it; older versions are deleted
        afterwards. A crash at any moment leaves ``CURRENT`` naming a complete index.
        """
        root = Path(index_dir).resolve()
        with contextlib.nullcontext(lock) if lock is not None else WriteLock(root) as held:
            if not held.held or held.root != root:
                raise ValueError(f"persist() needs the write lock of {root}, not of {held.root}")
            self._check_unchanged(root)
            replaced = _recorded_store(root)
            version = self._write_version(root)
        stores.drop_replaced(replaced, self.store)
        log.info("Saved index to %s (version %s)", root, version)

    def _write_version(self, root: Path) -> str:
        version = f"v{time.time_ns()}"
        tmp = root / f".tmp-{version}"
        tmp.mkdir()
        try:
            with self._lock:
                self._index.storage_context.persist(persist_dir=str(tmp))
                self._bm25.save(tmp / BM25_DIR)
                with open(tmp / ARTICLES, "w", encoding="utf-8") as fh:
                    for article in self._articles.values():
                        fh.write(json.dumps(article.to_dict(), ensure_ascii=False) + "\n")
                manifest = {k: v for k, v in self.manifest.items() if k != CHECKSUMS}
            manifest[CHECKSUMS] = file_checksums(tmp)
            write_atomically(tmp / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
            fsync_dir(tmp / BM25_DIR)
            os.replace(tmp, root / version)
            fsync_dir(root)
            write_atomically(root / CURRENT, version + "\n")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.manifest[CHECKSUMS] = manifest[CHECKSUMS]
        self.version = version
        _remove_old_versions(root, keep=version)
        return version

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
        check_manifest(manifest, config, index_dir)
        if CHECKSUMS in manifest:
            verify_checksums(folder, manifest[CHECKSUMS], index_dir)
        else:
            log.warning(
                "The index in %s has no file checksums (written by an older version), so damage cannot be "
                "detected; the next write (`qa index`, `qa remove`) adds them.",
                index_dir,
            )
        store = stores.spec_for_load(manifest.get(stores.MANIFEST_KEY), config.store, index_dir)
        if store.kind is not stores.StoreKind.FAISS:
            manifest[stores.MANIFEST_KEY] = store.to_manifest()  # the address it is reached at now
        try:
            vector_store = stores.open_store(
                store, folder, int(manifest["dimension"]), int(manifest["passages"]), index_dir, config
            )
            storage, struct = _read_storage(folder, vector_store)
            embed_model = LlamaIndexEmbedding(get_embedder, config.embed_model)
            index = VectorStoreIndex(
                index_struct=struct,
                storage_context=storage,
                embed_model=embed_model,
                store_nodes_override=True,
                transformations=[embed_model],  # passages come chunked: no default splitter (nor its tokenizer)
            )
            articles: dict[str, Article] = {}
            with open(folder / ARTICLES, "rb") as fh:
                for line in fh:
                    article = Article(**orjson.loads(line))
                    articles[article.doc_id] = article
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CorruptIndexError(index_dir, f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(index, VectorStoreIndex):
            raise CorruptIndexError(index_dir, "the stored index is not a vector index")
        bm25 = None
        if (folder / BM25_DIR / "ids.json").is_file():
            try:
                bm25 = BM25Index.load(folder / BM25_DIR)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CorruptIndexError(index_dir, f"BM25 files unreadable: {exc}") from exc
        version = folder.name if folder != Path(index_dir) else None
        return cls(articles, index, manifest, bm25, version, config)

    # ---- queries -----------------------------------------------------------------
    @property
    def store(self) -> stores.StoreSpec:
        """Where the passage vectors live (as the manifest records it)."""
        return stores.recorded_spec(self.manifest.get(stores.MANIFEST_KEY)) or stores.StoreSpec(stores.StoreKind.FAISS)

    @property
    def dimension(self) -> int:
        """Dimension of the stored vectors."""
        return int(self.manifest["dimension"])

    def __len__(self) -> int:
        return int(self.manifest["passages"])

    def article(self, doc_id: str) -> Article:
        """Return one article; raises ``UnknownArticleError`` (a ``KeyError``) for an unknown id."""
        try:
            return self._articles[doc_id]
        except (KeyError, TypeError):  # TypeError: an id that is not even hashable
            raise UnknownArticleError(doc_id if isinstance(doc_id, str) else repr(doc_id)) from None

    def articles(self) -> list[Article]:
        """Return all articles, in indexing order."""
        return list(self._articles.values())

    def passage_count(self, doc_id: str) -> int:
        """Number of passages indexed for an article."""
        info = self._index.docstore.get_ref_doc_info(doc_id)
        return len(info.node_ids) if info is not None else 0

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

        ``doc_ids`` restricts it to those articles' passages: FAISS searches their passage
        ids, Milvus filters on the article ids.
        """
        node_ids = None if doc_ids is None else self.node_ids(doc_ids)
        wanted = None if doc_ids is None else list(doc_ids)
        return VectorIndexRetriever(self._index, similarity_top_k=top_k, node_ids=node_ids, doc_ids=wanted)

    def bm25_search(self, query: str, top_k: int, doc_ids: Collection[str] | None = None) -> list[NodeWithScore]:
        """BM25's best passages for ``query`` (as docstore nodes), optionally within ``doc_ids``."""
        with self._lock:
            rows = None
            if doc_ids is not None:
                table = self._passages_by_article()
                rows = np.concatenate([table[d][1] for d in doc_ids if d in table] or [np.zeros(0, np.int64)])
            found = self._bm25.search(query, top_k, rows)
            return [NodeWithScore(node=self._index.docstore.get_node(i), score=score) for i, score in found]

    def node_ids(self, doc_ids: Collection[str]) -> list[str]:
        """The passage ids of some articles."""
        table = self._passages_by_article()
        return [n for d in doc_ids if d in table for n in table[d][0]]

    def _passages_by_article(self) -> dict[str, tuple[list[str], np.ndarray]]:
        """Each article's passage ids and their rows in BM25, read once per version of the
        passages (every write that changes them builds a new BM25 index)."""
        with self._lock:
            if self._by_article is None or self._by_article[0] is not self._bm25:
                rows = {pid: i for i, pid in enumerate(self._bm25.ids)}
                table = {}
                for doc_id in self._articles:
                    info = self._index.docstore.get_ref_doc_info(doc_id)
                    nodes = list(info.node_ids) if info is not None else []
                    table[doc_id] = (nodes, np.array([rows[n] for n in nodes if n in rows], dtype=np.int64))
                self._by_article = (self._bm25, table)
            return self._by_article[1]

    def hit(self, node: NodeWithScore) -> Hit:
        """A retrieved llama-index node as a ``Hit`` on our ``Passage``."""
        return Hit(self._to_passage(node.node), float(node.score or 0.0))

    def _to_passage(self, node: Any) -> Passage:
        meta = node.metadata
        article = self._articles[meta["doc_id"]]
        sentences = tuple(Sentence(article.doc_id, s, e, article.text[s:e]) for s, e in meta["sentences"])
        start, end = meta["start"], meta["end"]
        return Passage(article.doc_id, meta["position"], start, end, article.text[start:end], sentences)


@dataclass(frozen=True)
class IndexUpdate:
    """What an incremental update did."""

    added: tuple[str, ...]
    replaced: tuple[str, ...]
    unchanged: tuple[str, ...]
    duplicates: tuple[FileProblem, ...]
    passages_embedded: int
    problems: tuple[FileProblem, ...] = ()


def _fit_vector_index(store: Any, config: Config) -> None:
    """FAISS: rebuild into the kind its size calls for (``qa.faiss_index``); a Milvus collection sizes itself."""
    if isinstance(store, stores.IdMapFaissStore):
        store.fit(config)


def _vector_index(store: Any) -> dict[str, Any] | None:
    """The FAISS index kind for the manifest (None for a Milvus collection)."""
    return describe(store.client) if isinstance(store, stores.IdMapFaissStore) else None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _embedded_nodes(
    articles: Sequence[Article], config: Config, embedder: Embedder, show_progress: bool
) -> list[TextNode]:
    """Chunk ``articles`` into passage nodes carrying their embeddings."""
    started = time.perf_counter()
    nodes: list[TextNode] = []
    texts: list[str] = []
    for article in articles:
        for passage in make_passages(article, config.chunk_words, config.chunk_overlap_sentences):
            nodes.append(_to_node(passage))
            texts.append(passage_embed_text(article, passage))
    if not nodes:
        return nodes
    log.info("Embedding %d passages of %d articles", len(nodes), len(articles))
    vectors = _embed_with_progress(embedder, texts, show_progress)
    for node, vector in zip(nodes, vectors, strict=True):
        node.embedding = vector.tolist()
    elapsed = time.perf_counter() - started
    log.info("Embedded %d passages in %.1f s (%.1f passages/s)", len(nodes), elapsed, len(nodes) / max(elapsed, 1e-9))
    return nodes


def _to_node(passage: Passage) -> TextNode:
    keys = ["doc_id", "position", "start", "end", "sentences"]
    return TextNode(
        id_=passage.passage_id,
        text=passage.text,
        metadata={
            "doc_id": passage.doc_id,
            "position": passage.position,
            "start": passage.start,
            "end": passage.end,
            "sentences": [[s.start, s.end] for s in passage.sentences],
        },
        excluded_embed_metadata_keys=keys,
        excluded_llm_metadata_keys=keys,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=passage.doc_id)},
    )


def _embed_with_progress(embedder: Embedder, texts: list[str], show_progress: bool) -> np.ndarray:
    """Embed in slices of similar length, longest first (less padding), with a chunks/s progress bar."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    step = max(embedder.batch_size * 4, 1)
    with tqdm(total=len(texts), desc="Embedding", unit="chunk", disable=not show_progress or not texts) as bar:
        for i in range(0, len(order), step):
            ids = order[i : i + step]
            vectors[ids] = embedder.encode([texts[j] for j in ids])
            bar.update(len(ids))
    return vectors


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


def _remove_old_versions(root: Path, keep: str) -> None:
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


def _recorded_store(root: Path) -> object:
    """The store record of the live version in ``root`` (None when there is none or it is unreadable)."""
    try:
        return read_manifest(current_version(root)).get(stores.MANIFEST_KEY)
    except (IndexNotFoundError, CorruptIndexError):
        return None


def _read_current(root: Path) -> str | None:
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
    version = _read_current(root)
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


def _read_storage(folder: Path, vector_store: Any) -> tuple[StorageContext, IndexDict]:
    """llama-index's docstore and index store of a version folder, and its vector index's structure.

    The same files ``StorageContext.from_defaults(persist_dir=...)`` and
    ``load_index_from_storage`` read, parsed with orjson, and the structure (a map of 20k
    passage ids for 1,663 articles) built directly rather than through dataclasses-json:
    about a second less of cold start on that index.
    """
    docstore = SimpleDocumentStore(SimpleKVStore(orjson.loads((folder / "docstore.json").read_bytes())))
    stored = orjson.loads((folder / "index_store.json").read_bytes())
    structs = list(stored.get("index_store/data", {}).values())
    if len(structs) != 1 or structs[0].get("__type__") != "vector_store":
        raise ValueError("index_store.json does not hold exactly one vector index")
    data = structs[0]["__data__"]
    data = orjson.loads(data) if isinstance(data, str) else data
    struct = IndexDict(index_id=data["index_id"], summary=data.get("summary"), nodes_dict=dict(data["nodes_dict"]))
    storage = StorageContext.from_defaults(
        docstore=docstore,
        index_store=_ReadIndexStore(SimpleKVStore(stored), struct.index_id),
        vector_store=vector_store,
    )
    return storage, struct


class _ReadIndexStore(SimpleIndexStore):
    """An index store read from disk. The index built over it first adds back the structure
    the store was read with; that one call is skipped (it holds that structure already, and
    serialising 20k entries through dataclasses-json costs a quarter of a second). Every later
    change is stored as usual."""

    def __init__(self, kvstore: SimpleKVStore, read_id: str) -> None:
        super().__init__(kvstore)
        self._read_id: str | None = read_id

    def add_index_struct(self, index_struct: Any) -> None:
        if index_struct.index_id == self._read_id:
            self._read_id = None
            return
        super().add_index_struct(index_struct)


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
    expected = {"format_version": FORMAT_VERSION, **_manifest_settings(config)}
    differences = {k: (manifest.get(k), v) for k, v in expected.items() if manifest.get(k) != v}
    if differences:
        raise ManifestMismatchError(index_dir, differences)
