"""The FAISS vectors in segments: a write costs the vectors it adds, not the collection.

A version's ``faiss/`` folder lists its segments in ``segments.json``; segment ``NAME`` is
``NAME.faiss`` (FAISS's binary format). A segment never changes on disk: a new version links the
segments of the one before and writes the segments made since. New vectors go into a new segment
(exact, ``IndexIDMap2`` over ``IndexFlatIP``); a removed vector is removed from its segment in memory
and its id recorded in the listing (``deleted``), which loading removes again. Segments are merged, as
in Lucene, when ``MERGE_FACTOR`` of them reach the same size class (``qa.index.bm25.merge_due``), and a
segment is rewritten alone when more than half of what its file holds was removed. The largest segment
is the kind the whole collection's size calls for (``qa.index.stores.faiss.kind_for``: exact below the
threshold, IVF above): when it is not, every segment is rebuilt into one of that kind. A search asks
every segment for its best and keeps the best of those (inner products compare across segments).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryResult
from llama_index.vector_stores.faiss import FaissMapVectorStore, FaissVectorStore

from qa.config import Config
from qa.index.bm25 import merge_due
from qa.index.durability import link_or_copy, sha256_file
from qa.index.records import damaged
from qa.index.stores import faiss as kinds
from qa.index.stores.faiss import FAISS_FILE

FOLDER = "faiss"
LISTING = "segments.json"
_CHUNK = 1 << 24  # bytes hashed at a time


@dataclass
class VectorSegment:
    """A FAISS index and its name; ``stored``: the vectors its file holds (None: no file written yet),
    ``deleted``: ids removed in memory since its file was written. A segment opened from a listing that
    describes it (``listed``: its vector count, kind and SHA-256) is read when first needed (``index``)."""

    name: str
    loaded: Any | None
    stored: int | None = None
    deleted: set[int] = field(default_factory=set)
    listed: dict[str, Any] = field(default_factory=dict)
    opened: _SegmentFile | None = None

    @property
    def index(self) -> Any:
        """The FAISS index (read from its file, and checked, the first time)."""
        if self.loaded is None:
            assert self.opened is not None
            self.loaded = self.opened.read(self.deleted)
        return self.loaded

    @property
    def count(self) -> int:
        """How many vectors it holds (its file is not read for that)."""
        return int(self.listed["vectors"]) if self.loaded is None else int(self.loaded.ntotal)

    def described(self) -> dict[str, Any]:
        """Its kind (and IVF list count), as the manifest records them (its file is not read for that)."""
        if self.loaded is None:
            return {k: self.listed[k] for k in ("kind", "nlist") if k in self.listed}
        return kinds.describe(self.loaded)

    def listing(self) -> dict[str, Any]:
        """What the listing records of it once its file is written (``sha256``: its file's)."""
        return {"vectors": self.count, "stored": self.stored, **self.described(), "sha256": self.listed.get("sha256")}


class _SegmentFile:
    """A segment's file, opened when the index is loaded (it stays readable after a writer deleted the
    version) and read whole when first needed, checked against the SHA-256 its listing records."""

    def __init__(self, path: Path, sha256: str, dimension: int) -> None:
        self.path, self.sha256, self.dimension = path, sha256, dimension
        self._fd = os.open(path, os.O_RDONLY)
        self._lock = threading.Lock()

    def read(self, deleted: set[int]) -> Any:
        with self._lock:
            digest, size = hashlib.sha256(), os.fstat(self._fd).st_size
            for at in range(0, size, _CHUNK):
                digest.update(os.pread(self._fd, min(_CHUNK, size - at), at))
            if digest.hexdigest() != self.sha256:
                raise damaged(self.path, "it does not match its checksum in the listing (SHA-256)")
            by_descriptor = Path(f"/proc/self/fd/{self._fd}")  # Linux: the file opened, even once deleted
            if by_descriptor.exists():
                index = faiss.read_index(str(by_descriptor))
            else:
                index = faiss.deserialize_index(np.frombuffer(os.pread(self._fd, size, 0), dtype=np.uint8))
            index = _checked(index, self.path.stem, self.dimension)
            if deleted:
                index.remove_ids(np.asarray(sorted(deleted), dtype=np.int64))
            return index

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


def _checked(index: Any, name: str, dimension: int) -> Any:
    if index.d != dimension:
        raise ValueError(f"segment {name} holds {index.d}-d vectors; the manifest says {dimension}")
    kinds.describe(index)  # raises ValueError for an index of a kind not built here
    return index


def _name() -> str:
    return f"f{uuid.uuid4().hex[:12]}"


class FaissSegments:
    """The passage vectors of an index, as FAISS segments (what ``IdMapFaissStore`` searches)."""

    def __init__(self, segments: list[VectorSegment], dimension: int) -> None:
        self.segments = segments
        self.d = dimension

    @classmethod
    def new(cls, dimension: int, config: Config, vectors: np.ndarray | None = None) -> FaissSegments:
        """One empty segment of the kind for ``vectors`` (an IVF one trained on them)."""
        count = 0 if vectors is None else len(vectors)
        return cls([VectorSegment(_name(), kinds.make_index(count, dimension, config, vectors))], dimension)

    @property
    def ntotal(self) -> int:
        return sum(s.count for s in self.segments)

    def largest(self) -> VectorSegment:
        return max(self.segments, key=lambda s: s.count)

    def add_with_ids(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add vectors to the newest segment while it has no file yet, else to a new exact one."""
        last = self.segments[-1] if self.segments else None
        if last is None or last.stored is not None:
            last = VectorSegment(_name(), kinds.make_index(0, self.d, Config()))
            self.segments.append(last)
        last.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove_ids(self, ids: np.ndarray) -> int:
        """Remove the vectors of ``ids`` from whichever segments hold them; returns how many were removed."""
        removed = 0
        for segment in self.segments:
            found = int(segment.index.remove_ids(np.asarray(ids, dtype=np.int64)))
            if found and segment.stored is not None:
                segment.deleted.update(int(i) for i in ids)
            removed += found
        return removed

    def search(self, vector: np.ndarray, k: int, config: Config, allowed: np.ndarray | None) -> list[tuple[float, int]]:
        """The ``k`` best (inner product, id) pairs over every segment, best first."""
        found: list[tuple[float, int]] = []
        for segment in self.segments:
            if segment.count == 0:
                continue
            params = kinds.search_parameters(segment.index, config, allowed)
            scores, ids = segment.index.search(vector, min(k, int(segment.index.ntotal)), params=params)
            found += [(float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
        found.sort(key=lambda pair: -pair[0])
        return found[:k]

    def stored_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every id and vector held (IVF-SQ8's decoded, within 1/255 a component)."""
        parts = [kinds.stored_vectors(s.index) for s in self.segments]
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.d), dtype=np.float32)
        return np.concatenate([i for i, _ in parts]), np.concatenate([v for _, v in parts])

    def describe(self) -> dict[str, Any]:
        """The largest segment's kind (and IVF list count), and the segment count when there are several."""
        described = self.largest().described() if self.segments else {"kind": kinds.IndexKind.FLAT.value}
        return described if len(self.segments) <= 1 else {**described, "segments": len(self.segments)}

    # ---- merging -------------------------------------------------------------------
    def fit(self, config: Config) -> None:
        """Rebuild into one segment when the largest is not the kind the collection's size calls for;
        else merge segments where due, and rewrite those that lost more than half of their vectors."""
        self.segments = [s for s in self.segments if s.count or s is self.segments[-1]]
        total = self.ntotal
        largest = self.largest() if self.segments else None
        if largest is not None and self._needs_rebuild(largest, total, config):
            self._merge(list(range(len(self.segments))), config, total)
            return
        while (places := merge_due([s.count for s in self.segments])) is not None:
            self._merge(places, config, None)
        for segment in self.segments:
            if segment.stored and len(segment.deleted) * 2 > segment.stored:
                segment.name, segment.stored, segment.deleted, segment.listed = _name(), None, set(), {}

    @staticmethod
    def _needs_rebuild(largest: VectorSegment, total: int, config: Config) -> bool:
        kind, described = kinds.kind_for(total, config), largest.described()
        if kind is not kinds.IndexKind(described["kind"]):
            return True
        if kind is kinds.IndexKind.FLAT:
            return False
        ratio = kinds.wanted_nlist(total, config) / described["nlist"]
        return ratio >= kinds.NLIST_SLACK or ratio <= 1 / kinds.NLIST_SLACK

    def _merge(self, places: list[int], config: Config, kind_count: int | None) -> None:
        """Replace the segments at ``places`` by one holding their vectors, of the kind for
        ``kind_count`` vectors (default: the merged count), in the place of the first."""
        chosen = [self.segments[p] for p in places]
        parts = [kinds.stored_vectors(s.index) for s in chosen]
        ids = np.concatenate([i for i, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
        vectors = np.concatenate([v for _, v in parts]) if parts else np.zeros((0, self.d), dtype=np.float32)
        count = len(ids) if kind_count is None else kind_count
        merged = kinds.make_index(count, self.d, config, training=vectors if len(vectors) else None)
        if len(ids):
            merged.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        segment = VectorSegment(_name(), merged)
        keep = [s for i, s in enumerate(self.segments) if i not in places]
        keep.insert(min(places), segment)
        self.segments = keep

    # ---- files ---------------------------------------------------------------------
    def save(self, folder: Path, previous: Path | None) -> None:
        """Write the segments into ``folder``: those already in ``previous`` (a folder they were saved to)
        are linked, the others written; the listing records each one's removed ids, vector count, kind and
        SHA-256 (so that loading need not read it)."""
        folder.mkdir(parents=True, exist_ok=True)
        for segment in self.segments:
            file = f"{segment.name}.faiss"
            if segment.stored is not None and previous is not None and (previous / file).is_file():
                link_or_copy(previous / file, folder / file)
            else:
                faiss.write_index(segment.index, str(folder / file))
                segment.stored, segment.deleted, segment.listed = int(segment.index.ntotal), set(), {}
            if not segment.listed.get("sha256"):  # written now, or read from a listing that did not record it
                segment.listed["sha256"] = sha256_file(folder / file)
        listing = {
            "segments": [s.name for s in self.segments],
            "deleted": {s.name: sorted(s.deleted) for s in self.segments if s.deleted},
            "held": {s.name: s.listing() for s in self.segments},
        }
        (folder / LISTING).write_text(json.dumps(listing), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, dimension: int) -> FaissSegments:
        """Open the segments ``save`` wrote: those the listing describes are read when first needed, the
        others now; a segment's removed ids are removed again when it is read."""
        listing = json.loads((folder / LISTING).read_text(encoding="utf-8"))
        held = listing.get("held", {})  # not recorded before segments were read when first needed
        segments = []
        for name in listing["segments"]:
            deleted = {int(i) for i in listing["deleted"].get(name, ())}
            if name in held:
                listed = dict(held[name])
                opened = _SegmentFile(folder / f"{name}.faiss", str(listed["sha256"]), dimension)
                segments.append(VectorSegment(name, None, int(listed["stored"]), deleted, listed, opened))
                continue
            index = _checked(faiss.read_index(str(folder / f"{name}.faiss")), name, dimension)
            stored = int(index.ntotal)
            if deleted:
                index.remove_ids(np.asarray(sorted(deleted), dtype=np.int64))
            segments.append(VectorSegment(name, index, stored, deleted))
        return cls(segments, dimension)


def read_when_needed(folder: Path) -> frozenset[str]:
    """The segment files of a ``faiss/`` folder that loading does not read (its listing describes them; each
    is checked against its SHA-256 when first read); none when the listing cannot be read."""
    try:
        listing = json.loads((folder / LISTING).read_text(encoding="utf-8"))
        return frozenset(f"{name}.faiss" for name in listing.get("held", {}) if name in listing["segments"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return frozenset()


# ---- the llama-index store over the segments ----------------------------------------------


class VectorIds(Protocol):
    """Which vector id each passage has (``qa.index.passage_table.PassageTable``)."""

    def vector_id(self, node_id: str) -> int | None: ...

    def node_id(self, vector_id: int) -> str | None: ...

    def node_ids(self, doc_id: str) -> list[str]: ...

    def vector_ids_of(self, doc_ids: Iterable[str]) -> np.ndarray: ...


class IdMapFaissStore(FaissMapVectorStore):
    """llama-index's FAISS id-map store over ``FaissSegments``, with the passages' vector ids kept by the
    index's passage table (``use_ids``) rather than in maps of its own: each passage's vector id is fixed
    when its article is added, and never reused for another while the index is in memory. Searches use
    ``config``'s IVF settings.
    """

    _config: Config = PrivateAttr()
    _ids: VectorIds | None = PrivateAttr(default=None)

    def __init__(self, segments: FaissSegments, config: Config) -> None:
        # Not FaissMapVectorStore.__init__: it accepts one IndexIDMap only.
        FaissVectorStore.__init__(self, faiss_index=segments)
        self._config = config

    @property
    def segments(self) -> FaissSegments:
        return self._faiss_index

    def use_ids(self, ids: VectorIds) -> None:
        """Take each passage's vector id from ``ids``."""
        self._ids = ids

    def _table(self) -> VectorIds:
        if self._ids is None:
            raise RuntimeError("the FAISS store was not given the passages' vector ids (use_ids)")
        return self._ids

    def fit(self, config: Config) -> None:
        """Merge segments where due; rebuild into the kind the collection's size calls for."""
        self._config = config
        self.segments.fit(config)

    def describe(self) -> dict[str, Any]:
        """The index kind and its settings, as the manifest records them."""
        return self.segments.describe()

    def keep_only_known(self, known: Callable[[str], bool]) -> None:
        """Nothing to do: FAISS lives in this process and holds only this index's passages."""

    def save(self, folder: Path, previous: Path | None) -> None:
        """Write the segments into ``folder/faiss``, linking those already in ``previous`` (a version folder)."""
        self.segments.save(folder / FOLDER, previous / FOLDER if previous is not None else None)

    def persist(self, persist_path: str, fs: Any = None) -> None:
        """llama-index's way to write a store: every segment into ``faiss/`` beside ``persist_path``, as
        ``open_store`` reads it (the index writes its versions with ``save``, which links what it can)."""
        self.save(Path(persist_path).parent, None)

    def add(self, nodes: list[BaseNode], **add_kwargs: Any) -> list[str]:
        """Add nodes (with embeddings) to FAISS under their passages' vector ids; returns their node ids."""
        if not nodes:
            return []
        table = self._table()
        ids = [table.vector_id(n.id_) for n in nodes]
        if None in ids:
            raise ValueError(f"passage {nodes[ids.index(None)].id_!r} has no vector id")
        vectors = np.asarray([n.get_embedding() for n in nodes], dtype=np.float32)
        self.segments.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        return [n.id_ for n in nodes]

    def delete_nodes(self, node_ids: list[str] | None = None, filters: Any = None, **delete_kwargs: Any) -> None:
        """Remove passages' vectors (call it before the passage table forgets them)."""
        if filters is not None or node_ids is None:
            raise ValueError("FAISS deletes by node_ids only")
        table = self._table()
        ids = [i for i in map(table.vector_id, node_ids) if i is not None]
        if ids:
            self.segments.remove_ids(np.asarray(ids, dtype=np.int64))

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Remove the vectors of an article's passages (call it before the passage table forgets them)."""
        self.delete_nodes(self._table().node_ids(ref_doc_id))

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Search FAISS; ``query.doc_ids`` (or ``node_ids``) restricts the search to those articles' passages."""
        if query.filters is not None:
            raise ValueError("Metadata filters are not implemented for FAISS: restrict by node_ids.")
        table = self._table()
        allowed = None
        limit = self.segments.ntotal
        if query.doc_ids is not None:
            allowed = table.vector_ids_of(query.doc_ids)
            limit = len(allowed)
        elif query.node_ids is not None:
            ids = [i for i in map(table.vector_id, query.node_ids) if i is not None]
            allowed, limit = np.asarray(ids, dtype=np.int64), len(ids)
        top_k = min(query.similarity_top_k or 0, limit)
        if top_k <= 0:
            return VectorStoreQueryResult(similarities=[], ids=[])
        vector = np.asarray(query.query_embedding, dtype=np.float32)[np.newaxis, :]
        pairs = [(d, table.node_id(i)) for d, i in self.segments.search(vector, top_k, self._config, allowed)]
        kept = [(d, n) for d, n in pairs if n is not None]
        return VectorStoreQueryResult(similarities=[d for d, _ in kept], ids=[n for _, n in kept])


def new_store(dimension: int, config: Config, vectors: np.ndarray | None) -> IdMapFaissStore:
    """An empty store for ``vectors``: their number picks the index kind, and an IVF index is trained on them."""
    return IdMapFaissStore(FaissSegments.new(dimension, config, vectors), config)


def open_store(folder: Path, dimension: int, config: Config) -> IdMapFaissStore:
    """Read a version's FAISS segments (FAISS's own binary format); the passages' ids come from ``use_ids``.
    A version of format 3 or before (one ``default__vector_store.json``) is read as one segment."""
    if not (folder / FOLDER / LISTING).is_file() and (folder / FAISS_FILE).is_file():
        index = faiss.read_index(str(folder / FAISS_FILE))
        if index.d != dimension:
            raise ValueError(f"{FAISS_FILE} holds {index.d}-d vectors; the manifest says {dimension}")
        kinds.describe(index)
        return IdMapFaissStore(FaissSegments([VectorSegment(_name(), index)], dimension), config)
    return IdMapFaissStore(FaissSegments.load(folder / FOLDER, dimension), config)
