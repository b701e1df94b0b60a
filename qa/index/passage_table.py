"""Where each article's passages are, and which vector ids they have: what llama-index's JSON docstore,
its index structure and the FAISS id map held, kept per article in the article segments instead.

An article's passages are spans of its text (``[start, end, [[sentence start, end], ...]]`` each,
read on demand with the article's segment), and their vector ids are consecutive from the article's
first id; passage ``<doc_id>::<position>`` has vector id ``first + position``. ``PassageDocstore``
and ``PassageIds`` show the table to llama-index as the docstore and the index structure's node map:
a passage node is made from its article's text when a search returns it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from typing import Any

import numpy as np
from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.storage.docstore.types import BaseDocumentStore, RefDocInfo

from qa.index.records import LazyRecords

Span = list[Any]  # [start, end, [[sentence start, sentence end], ...]]
NODE_KEYS = ["doc_id", "position", "start", "end", "sentences"]  # a passage node's metadata


def split_node_id(node_id: str) -> tuple[str, int] | None:
    """``<doc_id>::<position>`` as (doc id, position); None for an id of another shape."""
    doc_id, sep, position = node_id.rpartition("::")
    return (doc_id, int(position)) if sep and position.isdigit() else None


class PassageTable:
    """Each live article's passage spans (``spans``, records read on demand) and vector ids."""

    def __init__(self, spans: LazyRecords[list[Span]], vectors: dict[str, tuple[int, int]]) -> None:
        self.spans = spans
        self._vectors = vectors  # doc id -> (first vector id, passage count)
        self._lock = threading.Lock()
        self._by_first: tuple[list[int], list[str]] | None = None  # (sorted first ids, their doc ids)
        self.passages = sum(count for _, count in vectors.values())
        self._next = max((f + n for f, n in vectors.values()), default=0)  # ids are never reused in a process

    def add(self, doc_id: str, spans: list[Span]) -> int:
        """Record an article's passages; returns the vector id of its first (the next unused id)."""
        with self._lock:
            first = self._next
            self._next += len(spans)
            self._vectors[doc_id] = (first, len(spans))
            self.passages += len(spans)
            self._by_first = None
        self.spans[doc_id] = spans
        return first

    def remove(self, doc_id: str) -> None:
        with self._lock:
            _, count = self._vectors.pop(doc_id, (0, 0))
            self.passages -= count
            self._by_first = None
        self.spans.pop(doc_id, None)

    def vectors(self, doc_id: str) -> tuple[int, int]:
        """An article's first vector id and passage count ((0, 0) for an article not held)."""
        return self._vectors.get(doc_id, (0, 0))

    def count(self, doc_id: str) -> int:
        return self._vectors.get(doc_id, (0, 0))[1]

    def node_ids(self, doc_id: str) -> list[str]:
        return [f"{doc_id}::{i}" for i in range(self.count(doc_id))]

    def __contains__(self, node_id: object) -> bool:
        parts = split_node_id(node_id) if isinstance(node_id, str) else None
        return parts is not None and 0 <= parts[1] < self.count(parts[0])

    def __iter__(self) -> Iterator[str]:
        for doc_id in list(self._vectors):
            yield from self.node_ids(doc_id)

    def vector_ids_of(self, doc_ids: Iterable[str]) -> np.ndarray:
        """The vector ids of the passages of ``doc_ids`` (the articles held)."""
        spans = [self._vectors[d] for d in doc_ids if d in self._vectors]
        if not spans:
            return np.zeros(0, dtype=np.int64)
        firsts, counts = np.asarray(spans, dtype=np.int64).T
        starts = np.cumsum(counts) - counts  # each article's place in the result
        return np.repeat(firsts - starts, counts) + np.arange(int(counts.sum()), dtype=np.int64)

    def vector_id(self, node_id: str) -> int | None:
        """The vector id of a passage (None when it is not held)."""
        parts = split_node_id(node_id)
        if parts is None:
            return None
        first, count = self._vectors.get(parts[0], (0, 0))
        return first + parts[1] if 0 <= parts[1] < count else None

    def node_id(self, vector_id: int) -> str | None:
        """The passage a vector id belongs to (None when no held article has it)."""
        with self._lock:
            if self._by_first is None:
                ordered = sorted((f, d) for d, (f, _) in self._vectors.items())
                self._by_first = ([f for f, _ in ordered], [d for _, d in ordered])
            firsts, docs = self._by_first
        place = bisect.bisect_right(firsts, vector_id) - 1
        if place < 0:
            return None
        doc_id = docs[place]
        position = vector_id - firsts[place]
        return f"{doc_id}::{position}" if position < self.count(doc_id) else None

    def node(self, node_id: str, text: Callable[[str], str]) -> TextNode | None:
        """The llama-index node of a passage, its text cut from its article's (``text(doc_id)``)."""
        if node_id not in self:
            return None
        doc_id, position = split_node_id(node_id) or ("", 0)
        start, end, sentences = self.spans[doc_id][position]
        return passage_node(node_id, doc_id, position, start, end, sentences, text(doc_id)[start:end])


def passage_node(
    node_id: str, doc_id: str, position: int, start: int, end: int, sentences: Sequence[Sequence[int]], text: str
) -> TextNode:
    """A passage as llama-index's node: the text, and where it is in its article as metadata."""
    return TextNode(
        id_=node_id,
        text=text,
        metadata={
            "doc_id": doc_id,
            "position": position,
            "start": start,
            "end": end,
            "sentences": [list(s) for s in sentences],
        },
        excluded_embed_metadata_keys=NODE_KEYS,
        excluded_llm_metadata_keys=NODE_KEYS,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)},
    )


class PassageIds(MutableMapping[str, str]):
    """The index structure's node map (vector store id -> node id) for stores whose ids are the node ids:
    the identity over the table's passages. llama-index's writes to it are ignored: the table is kept by
    ``PassageIndex``."""

    def __init__(self, table: PassageTable) -> None:
        self._table = table

    def __getitem__(self, key: str) -> str:
        if key not in self._table:
            raise KeyError(key)
        return key

    def __setitem__(self, key: str, value: str) -> None:
        pass

    def __delitem__(self, key: str) -> None:
        pass

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return self._table.passages

    def __contains__(self, key: object) -> bool:
        return key in self._table


class PassageDocstore(BaseDocumentStore):
    """llama-index's docstore over the passage table: nodes are made on demand from the articles'
    text; adding and deleting are the table's business (``PassageIndex`` keeps it), so they do nothing."""

    def __init__(self, table: PassageTable, text: Callable[[str], str]) -> None:
        self._table = table
        self._text = text

    @property
    def docs(self) -> dict[str, BaseNode]:
        return {n: node for n in self._table if (node := self._table.node(n, self._text)) is not None}

    def add_documents(self, docs: Sequence[BaseNode], allow_update: bool = True, **kwargs: Any) -> None:
        pass

    async def async_add_documents(self, docs: Sequence[BaseNode], allow_update: bool = True, **kwargs: Any) -> None:
        pass

    def get_document(self, doc_id: str, raise_error: bool = True) -> BaseNode | None:
        node = self._table.node(doc_id, self._text)
        if node is None and raise_error:
            raise ValueError(f"passage {doc_id!r} not found")
        return node

    async def aget_document(self, doc_id: str, raise_error: bool = True) -> BaseNode | None:
        return self.get_document(doc_id, raise_error)

    def delete_document(self, doc_id: str, raise_error: bool = True) -> None:
        pass

    async def adelete_document(self, doc_id: str, raise_error: bool = True) -> None:
        pass

    def document_exists(self, doc_id: str) -> bool:
        return doc_id in self._table

    async def adocument_exists(self, doc_id: str) -> bool:
        return doc_id in self._table

    def set_document_hash(self, doc_id: str, doc_hash: str) -> None:
        pass

    async def aset_document_hash(self, doc_id: str, doc_hash: str) -> None:
        pass

    def set_document_hashes(self, doc_hashes: dict[str, str]) -> None:
        pass

    async def aset_document_hashes(self, doc_hashes: dict[str, str]) -> None:
        pass

    def get_document_hash(self, doc_id: str) -> str | None:
        return None

    async def aget_document_hash(self, doc_id: str) -> str | None:
        return None

    def get_all_document_hashes(self) -> dict[str, str]:
        return {}

    async def aget_all_document_hashes(self) -> dict[str, str]:
        return {}

    def get_all_ref_doc_info(self) -> dict[str, RefDocInfo] | None:
        return None

    async def aget_all_ref_doc_info(self) -> dict[str, RefDocInfo] | None:
        return None

    def get_ref_doc_info(self, ref_doc_id: str) -> RefDocInfo | None:
        ids = self._table.node_ids(ref_doc_id)
        return RefDocInfo(node_ids=ids) if ids else None

    async def aget_ref_doc_info(self, ref_doc_id: str) -> RefDocInfo | None:
        return self.get_ref_doc_info(ref_doc_id)

    def delete_ref_doc(self, ref_doc_id: str, raise_error: bool = True) -> None:
        pass

    async def adelete_ref_doc(self, ref_doc_id: str, raise_error: bool = True) -> None:
        pass
