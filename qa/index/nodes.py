"""Passages as llama-index sees them: nodes with their embeddings, the embedding adapter, and the
storage (docstore over the passage table, index structure, vector store) a vector index is made on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.data_structs import IndexDict
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.storage.index_store import SimpleIndexStore
from tqdm.auto import tqdm

from qa.config import Config
from qa.index.passage_table import PassageDocstore, PassageIds, PassageTable, passage_node
from qa.ingest.chunking import article_sentences, make_passages
from qa.models import Embedder
from qa.types import Article, ArticleNotes, Passage

if TYPE_CHECKING:
    from qa.ingest.annotate import Annotator

log = logging.getLogger(__name__)


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


def passage_embed_text(article: Article, passage: Passage) -> str:
    """Return the text embedded for a passage: the article title, then the passage."""
    return f"{article.title}\n{passage.text}"


ARTICLES_PER_ROUND = 16  # articles annotated while the round before them is embedded


def annotated_nodes(
    articles: Sequence[Article],
    config: Config,
    embedder: Embedder,
    annotator: Annotator,
    show_progress: bool,
) -> tuple[dict[str, ArticleNotes], list[TextNode]]:
    """Annotate ``articles`` and chunk them (along their sentences) into passage nodes carrying embeddings.

    The articles go in rounds: a worker thread annotates the next round while this one embeds the current
    one. spaCy's work is single-threaded (``Annotator.annotate``) and the embedder keeps both cores busy, so
    the two share the machine: 100 RealtimeQA articles in about 48 s against 52 s one after the other."""
    if not articles:
        return {}, []
    started = time.perf_counter()
    notes: dict[str, ArticleNotes] = {}
    nodes: list[TextNode] = []
    rounds = [articles[i : i + ARTICLES_PER_ROUND] for i in range(0, len(articles), ARTICLES_PER_ROUND)]
    with (
        ThreadPoolExecutor(1, thread_name_prefix="annotate") as pool,
        tqdm(total=len(articles), desc="Annotating and embedding", unit="article", disable=not show_progress) as bar,
    ):
        pending = pool.submit(annotator.annotate, rounds[0])
        for i, group in enumerate(rounds):
            annotated = {n.doc_id: n for n in pending.result()}
            if i + 1 < len(rounds):
                pending = pool.submit(annotator.annotate, rounds[i + 1])
            notes.update(annotated)
            nodes += _embedded(group, annotated, config, embedder)
            bar.update(len(group))
            bar.set_postfix(passages=len(nodes))
    elapsed = time.perf_counter() - started
    log.info(
        "Annotated and embedded %d articles (%d passages) in %.1f s (%.1f passages/s)",
        len(articles), len(nodes), elapsed, len(nodes) / max(elapsed, 1e-9),
    )  # fmt: skip
    return notes, nodes


def _embedded(
    articles: Sequence[Article], notes: Mapping[str, ArticleNotes], config: Config, embedder: Embedder
) -> list[TextNode]:
    """The passage nodes of ``articles``, chunked along the sentences of their ``notes``, with embeddings."""
    nodes: list[TextNode] = []
    texts: list[str] = []
    for article in articles:
        sentences = article_sentences(article, notes[article.doc_id])
        for passage in make_passages(article, sentences, config.chunk_words, config.chunk_overlap_sentences):
            nodes.append(to_node(passage))
            texts.append(passage_embed_text(article, passage))
    for node, vector in zip(nodes, _embed_by_length(embedder, texts), strict=True):
        node.embedding = vector.tolist()
    return nodes


def to_node(passage: Passage) -> TextNode:
    spans = [[s.start, s.end] for s in passage.sentences]
    return passage_node(
        passage.passage_id, passage.doc_id, passage.position, passage.start, passage.end, spans, passage.text
    )


def _embed_by_length(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Embed in slices of similar length, longest first (less padding)."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    step = max(embedder.batch_size * 4, 1)
    for i in range(0, len(order), step):
        ids = order[i : i + step]
        vectors[ids] = embedder.encode([texts[j] for j in ids])
    return vectors


def vector_index(
    vector_store: Any, table: PassageTable, text: Callable[[str], str], embed_model: BaseEmbedding, index_id: str
) -> VectorStoreIndex:
    """llama-index's vector index over ``vector_store``, its docstore and node map made from ``table``
    (``text(doc_id)``: an article's text, which passage nodes are cut from). No passage is read here."""
    if hasattr(vector_store, "use_ids"):
        vector_store.use_ids(table)
    vector_store.keep_only_known(table.__contains__)
    struct = IndexDict(index_id=index_id)
    struct.nodes_dict = PassageIds(table)  # type: ignore[assignment]
    storage = StorageContext.from_defaults(
        docstore=PassageDocstore(table, text), index_store=MemoryIndexStore(), vector_store=vector_store
    )
    return VectorStoreIndex(
        index_struct=struct,
        storage_context=storage,
        embed_model=embed_model,
        store_nodes_override=True,
        transformations=[embed_model],  # passages come chunked: no default splitter (nor its tokenizer)
    )


class MemoryIndexStore(SimpleIndexStore):
    """An index store that keeps its index structures as objects: llama-index's serialises the whole
    structure to JSON on every insert (half a second at 3,000 articles); the passage table is stored instead."""

    def __init__(self) -> None:
        super().__init__()
        self._structs: dict[str, Any] = {}

    def add_index_struct(self, index_struct: Any) -> None:
        self._structs[index_struct.index_id] = index_struct

    def delete_index_struct(self, key: str) -> None:
        self._structs.pop(key, None)

    def get_index_struct(self, struct_id: str | None = None) -> Any:
        if struct_id is None:
            return next(iter(self._structs.values()), None)
        return self._structs.get(struct_id)

    def index_structs(self) -> list[Any]:
        return list(self._structs.values())


class QueryRetriever(BaseRetriever):
    """A llama-index retriever over a search by the query's text (BM25's, returning docstore nodes)."""

    def __init__(self, search: Callable[[str], list[NodeWithScore]]) -> None:
        super().__init__()
        self._search = search

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._search(query_bundle.query_str)
