"""Passages as llama-index sees them: nodes with their embeddings, the embedding adapter, and the
docstore and index structure read from a version folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from llama_index.core import StorageContext
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.data_structs import IndexDict
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.storage.index_store import SimpleIndexStore
from llama_index.core.storage.kvstore import SimpleKVStore
from tqdm.auto import tqdm

from qa.config import Config
from qa.index.stores.faiss import FAISS_FILE
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


DOCSTORE, INDEX_STORE = "docstore.json", "index_store.json"
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


def _embed_by_length(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Embed in slices of similar length, longest first (less padding)."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    step = max(embedder.batch_size * 4, 1)
    for i in range(0, len(order), step):
        ids = order[i : i + step]
        vectors[ids] = embedder.encode([texts[j] for j in ids])
    return vectors


def read_storage(folder: Path, vector_store: Any) -> tuple[StorageContext, IndexDict]:
    """llama-index's docstore and index store of a version folder, and its vector index's structure.

    The same files ``StorageContext.from_defaults(persist_dir=...)`` and
    ``load_index_from_storage`` read, parsed with orjson, and the structure (a map of 20k
    passage ids for 1,663 articles) built directly rather than through dataclasses-json:
    about a second less of cold start on that index.
    """
    docstore = SimpleDocumentStore(SimpleKVStore(orjson.loads((folder / DOCSTORE).read_bytes())))
    stored = orjson.loads((folder / INDEX_STORE).read_bytes())
    structs = list(stored.get("index_store/data", {}).values())
    if len(structs) != 1 or structs[0].get("__type__") != "vector_store":
        raise ValueError("index_store.json does not hold exactly one vector index")
    data = structs[0]["__data__"]
    data = orjson.loads(data) if isinstance(data, str) else data
    struct = IndexDict(index_id=data["index_id"], summary=data.get("summary"), nodes_dict=dict(data["nodes_dict"]))
    storage = StorageContext.from_defaults(docstore=docstore, index_store=MemoryIndexStore(), vector_store=vector_store)
    return storage, struct


def write_storage(folder: Path, index: Any) -> None:
    """Write a vector index's docstore, structure and vectors into ``folder`` as ``read_storage`` reads them,
    serialised with orjson (llama-index's own ``persist`` took 1.1 s of a write at 3,000 articles)."""
    (folder / DOCSTORE).write_bytes(orjson.dumps(index.docstore.to_dict()))
    struct = index.index_struct
    data = {"index_id": struct.index_id, "summary": struct.summary, "nodes_dict": struct.nodes_dict}
    stored = {"index_store/data": {struct.index_id: {"__type__": "vector_store", "__data__": data}}}
    (folder / INDEX_STORE).write_bytes(orjson.dumps(stored))
    index.vector_store.persist(persist_path=str(folder / FAISS_FILE))  # Milvus: writes nothing


class MemoryIndexStore(SimpleIndexStore):
    """An index store that keeps its index structures as objects: llama-index's serialises the whole
    structure to JSON on every insert (half a second at 3,000 articles); ``write_storage`` writes it once."""

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
