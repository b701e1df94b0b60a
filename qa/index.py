"""The passage index: sentence-transformers vectors in FAISS through llama-index.

Layout of an index folder::

    manifest.json                 format version, model, dimension, chunking, article hashes
    articles.jsonl                the articles (the text citations point into)
    default__vector_store.json    FAISS index (binary, written by faiss.write_index)
    id_map.json                   FAISS id <-> passage id (JSON)
    docstore.json, index_store.json, ...   llama-index's JSON docstore

Loading reads these files and never embeds anything. Writes go to a temporary folder
next to the target, which then replaces the target, so an interrupted write leaves the
previous index usable. Nothing in the folder is unpickled: FAISS reads its own format
and every other file is JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core import Settings, StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.retrievers import VectorIndexRetriever
from llama_index.core.schema import QueryBundle, TextNode
from tqdm.auto import tqdm

from qa.articles import content_hash
from qa.chunking import make_passages
from qa.config import Config
from qa.errors import CorruptIndexError, IndexNotFoundError, ManifestMismatchError
from qa.models import Embedder
from qa.types import Article, Passage, Sentence

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARTICLES = "articles.jsonl"

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
        return self._get_embedder().encode([query])[0].tolist()

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


def _manifest_settings(config: Config) -> dict[str, Any]:
    return {
        "embed_model": config.embed_model,
        "chunk_words": config.chunk_words,
        "chunk_overlap_sentences": config.chunk_overlap_sentences,
    }


def _faiss_store(dimension: int):  # noqa: ANN202 - FaissMapVectorStore
    import faiss
    from llama_index.vector_stores.faiss import FaissMapVectorStore

    return FaissMapVectorStore(faiss_index=faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))


class PassageIndex:
    """Articles, their passages and the vector index over the passages."""

    def __init__(self, articles: dict[str, Article], index: VectorStoreIndex, manifest: dict[str, Any]) -> None:
        self._articles = articles
        self._index = index
        self.manifest = manifest

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
        started = time.perf_counter()
        nodes: list[TextNode] = []
        texts: list[str] = []
        for article in articles:
            for passage in make_passages(article, config.chunk_words, config.chunk_overlap_sentences):
                nodes.append(_to_node(passage))
                texts.append(passage_embed_text(article, passage))
        log.info("Embedding %d passages of %d articles", len(nodes), len(articles))
        vectors = _embed_with_progress(embedder, texts, show_progress)
        for node, vector in zip(nodes, vectors, strict=True):
            node.embedding = vector.tolist()
        storage = StorageContext.from_defaults(vector_store=_faiss_store(embedder.dimension))
        embed_model = LlamaIndexEmbedding(lambda: embedder, config.embed_model)
        index = VectorStoreIndex(nodes, storage_context=storage, embed_model=embed_model)
        manifest = {
            "format_version": FORMAT_VERSION,
            **_manifest_settings(config),
            "dimension": embedder.dimension,
            "passages": len(nodes),
            "articles": {a.doc_id: content_hash(a.text) for a in articles},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        elapsed = time.perf_counter() - started
        log.info(
            "Indexed %d passages in %.1f s (%.1f passages/s)", len(nodes), elapsed, len(nodes) / max(elapsed, 1e-9)
        )
        return cls({a.doc_id: a for a in articles}, index, manifest)

    def persist(self, index_dir: str | Path) -> None:
        """Write the index to ``index_dir``, replacing what was there atomically."""
        target = Path(index_dir).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            self._index.storage_context.persist(persist_dir=str(tmp))
            with open(tmp / ARTICLES, "w", encoding="utf-8") as fh:
                for article in self._articles.values():
                    fh.write(json.dumps(article.to_dict(), ensure_ascii=False) + "\n")
            # The manifest is written last: a folder without one is never a valid index.
            (tmp / MANIFEST).write_text(json.dumps(self.manifest, indent=2, ensure_ascii=False), encoding="utf-8")
            _swap_in(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("Saved index to %s", target)

    # ---- loading -------------------------------------------------------------------
    @classmethod
    def load(cls, index_dir: str | Path, config: Config, get_embedder: Callable[[], Embedder]) -> PassageIndex:
        """Load a persisted index; raises if it is missing, unreadable or mismatched."""
        folder = Path(index_dir)
        manifest = read_manifest(folder)
        check_manifest(manifest, config, str(index_dir))
        try:
            from llama_index.vector_stores.faiss import FaissMapVectorStore

            vector_store = FaissMapVectorStore.from_persist_dir(str(folder))
            storage = StorageContext.from_defaults(vector_store=vector_store, persist_dir=str(folder))
            embed_model = LlamaIndexEmbedding(get_embedder, config.embed_model)
            index = load_index_from_storage(storage, embed_model=embed_model)
            articles: dict[str, Article] = {}
            with open(folder / ARTICLES, encoding="utf-8") as fh:
                for line in fh:
                    article = Article(**json.loads(line))
                    articles[article.doc_id] = article
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CorruptIndexError(str(index_dir), f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(index, VectorStoreIndex):
            raise CorruptIndexError(str(index_dir), "the stored index is not a vector index")
        return cls(articles, index, manifest)

    # ---- queries -----------------------------------------------------------------
    @property
    def dimension(self) -> int:
        """Dimension of the stored vectors."""
        return int(self.manifest["dimension"])

    def __len__(self) -> int:
        return int(self.manifest["passages"])

    def article(self, doc_id: str) -> Article:
        """Return one article; raises ``KeyError`` for an unknown id."""
        return self._articles[doc_id]

    def articles(self) -> list[Article]:
        """Return all articles, in indexing order."""
        return list(self._articles.values())

    def search(self, query_vector: np.ndarray, top_k: int) -> list[Hit]:
        """Return the ``top_k`` passages closest to ``query_vector``, best first."""
        retriever = VectorIndexRetriever(self._index, similarity_top_k=top_k)
        bundle = QueryBundle(query_str="", embedding=np.asarray(query_vector, dtype=np.float32).tolist())
        return [Hit(self._to_passage(n.node), float(n.score or 0.0)) for n in retriever.retrieve(bundle)]

    def _to_passage(self, node: Any) -> Passage:
        meta = node.metadata
        article = self._articles[meta["doc_id"]]
        sentences = tuple(Sentence(article.doc_id, s, e, article.text[s:e]) for s, e in meta["sentences"])
        start, end = meta["start"], meta["end"]
        return Passage(article.doc_id, meta["position"], start, end, article.text[start:end], sentences)


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
    )


def _embed_with_progress(embedder: Embedder, texts: list[str], show_progress: bool) -> np.ndarray:
    """Embed in slices, longest first (less padding), with a chunks/s progress bar."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    step = max(embedder.batch_size * 4, 1)
    with tqdm(total=len(texts), desc="Embedding", unit="chunk", disable=not show_progress or not texts) as bar:
        for i in range(0, len(order), step):
            ids = order[i : i + step]
            vectors[ids] = embedder.encode([texts[j] for j in ids])
            bar.update(len(ids))
    return vectors


def _swap_in(tmp: Path, target: Path) -> None:
    """Replace ``target`` with ``tmp``; at every moment one complete index exists."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
        os.replace(tmp, target)
        return
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def index_exists(index_dir: str | Path) -> bool:
    """Return True when ``index_dir`` holds an index (a manifest)."""
    return (Path(index_dir) / MANIFEST).is_file()


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read ``manifest.json``; raises ``IndexNotFoundError`` or ``CorruptIndexError``."""
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(str(folder))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CorruptIndexError(str(folder), f"manifest.json unreadable: {exc}") from exc
    if not isinstance(manifest, dict):
        raise CorruptIndexError(str(folder), "manifest.json is not an object")
    return manifest


def index_matches(index_dir: str | Path, articles: Sequence[Article], config: Config) -> bool:
    """True when ``index_dir`` holds an index of exactly ``articles`` built with ``config``."""
    try:
        manifest = read_manifest(Path(index_dir))
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
