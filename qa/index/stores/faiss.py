"""The FAISS vector store: which FAISS index holds the passage vectors (exact below a size,
approximate above), and llama-index's FAISS store over it, in the index folder.

Below ``Config.ann_threshold`` vectors search is exact: ``IndexIDMap2`` over
``IndexFlatIP``. From there on it is an inverted-file index (IVF, inner product) whose
lists hold the vectors as 8-bit scalar codes (``ivf-sq8``) or as they are (``ivf-flat``);
``benchmarks.scale`` measured both against exact search, HNSW and IVF-PQ; a search
probes ``ivf_probe_share`` of the lists (recall@10 >= 0.95 at 1M vectors). IVF keeps
incremental updates as they are: it takes ``add_with_ids`` and ``remove_ids`` natively
(it must not be wrapped in an ``IndexIDMap``, whose removal renumbers vectors that IVF
does not). The vectors of an index can always be read back, so an index is rebuilt into
another kind, trained on its own vectors, when an update moves it across the threshold
(back to exact search, IVF-SQ8's vectors are its decoded 8-bit codes), or into IVF lists of
another count when the collection has grown or shrunk sixteenfold (the wanted count, about
√n, then differs fourfold).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryResult
from llama_index.vector_stores.faiss import FaissMapVectorStore, FaissVectorStore

from qa.config import Config

log = logging.getLogger(__name__)

FAISS_FILE = "default__vector_store.json"  # the name llama-index's FAISS store gives it
ID_MAP = "id_map.json"  # the FAISS id <-> passage id maps of format 3 and before (qa migrate reads it)

# An IVF index whose list count is this factor away from the wanted one is rebuilt.
NLIST_SLACK = 4
# faiss's k-means wants at least this many training vectors per list.
MIN_POINTS_PER_LIST = 39
# Training uses at most this many vectors per list (a sample: k-means time grows with it).
TRAIN_POINTS_PER_LIST = 64


class IndexKind(str, Enum):
    """The kinds of vector index, by the name the config and the manifest use."""

    FLAT = "flat"
    IVF_FLAT = "ivf-flat"
    IVF_SQ8 = "ivf-sq8"


# How an IVF kind stores the vectors in its lists (a faiss index_factory code).
IVF_ENCODINGS: dict[IndexKind, str] = {IndexKind.IVF_FLAT: "Flat", IndexKind.IVF_SQ8: "SQ8"}


def kind_for(count: int, config: Config) -> IndexKind:
    """The kind of index for ``count`` vectors: exact below the threshold, else the configured one."""
    if count < config.ann_threshold:
        return IndexKind.FLAT
    names = {kind.value: kind for kind in IVF_ENCODINGS}
    if config.ann_index not in names:
        raise ValueError(f"ann_index (QA_ANN_INDEX) must be one of {', '.join(names)}, not {config.ann_index!r}")
    return names[config.ann_index]


def auto_nlist(count: int) -> int:
    """IVF list count for ``count`` vectors: the power of two nearest √count, with enough vectors to train."""
    nlist = 2 ** round(math.log2(max(count, 1)) / 2)
    while nlist > 1 and count < MIN_POINTS_PER_LIST * nlist:
        nlist //= 2
    return nlist


def wanted_nlist(count: int, config: Config) -> int:
    """IVF list count: ``config.ivf_nlist``, or about √count when it is 0."""
    return config.ivf_nlist or auto_nlist(count)


def index_kind(index: Any) -> IndexKind:
    """The kind of a FAISS index built here; raises ``ValueError`` for any other index."""
    import faiss

    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        return IndexKind.IVF_SQ8
    if isinstance(index, faiss.IndexIVFFlat):
        return IndexKind.IVF_FLAT
    if isinstance(index, faiss.IndexIDMap2):
        return IndexKind.FLAT
    raise ValueError(f"unexpected FAISS index type {type(index).__name__}")


def describe(index: Any) -> dict[str, Any]:
    """What the manifest records about the vector index: its kind and, for IVF, its list count."""
    kind = index_kind(index)
    return {"kind": kind.value} if kind is IndexKind.FLAT else {"kind": kind.value, "nlist": int(index.nlist)}


def make_index(count: int, dimension: int, config: Config, training: np.ndarray | None = None) -> Any:
    """An empty index of the kind for ``count`` vectors; an IVF one is trained on ``training`` first."""
    import faiss

    kind = kind_for(count, config)
    if kind is IndexKind.FLAT:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    if training is None or len(training) == 0:
        raise ValueError(f"a {kind.value} index needs vectors to train on")
    nlist = min(wanted_nlist(count, config), len(training))
    index = faiss.index_factory(dimension, f"IVF{nlist},{IVF_ENCODINGS[kind]}", faiss.METRIC_INNER_PRODUCT)
    index.train(_training_sample(training, nlist))
    return index


def _training_sample(vectors: np.ndarray, nlist: int) -> np.ndarray:
    """At most ``TRAIN_POINTS_PER_LIST`` vectors per list, drawn reproducibly."""
    limit = TRAIN_POINTS_PER_LIST * nlist
    if len(vectors) <= limit:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    chosen = np.sort(np.random.default_rng(0).choice(len(vectors), limit, replace=False))
    return np.ascontiguousarray(vectors[chosen], dtype=np.float32)


def stored_vectors(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """The ids and vectors an index holds (IVF-SQ8 gives them back decoded, within 1/255 a component)."""
    import faiss

    if index_kind(index) is IndexKind.FLAT:
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        return ids, index.index.reconstruct_n(0, index.ntotal)
    lists = index.invlists
    parts = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
        for i in range(index.nlist)
        if lists.list_size(i)
    ]
    ids = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    if not len(ids):
        return ids, np.zeros((0, index.d), dtype=np.float32)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # id -> place in its list, to read vectors back
    return ids, index.reconstruct_batch(ids)


def needs_rebuild(index: Any, config: Config) -> bool:
    """True when ``index`` is not the kind its vector count calls for, or IVF sized far from it."""
    count = int(index.ntotal)
    kind = kind_for(count, config)
    if kind is not index_kind(index):
        return True
    if kind is IndexKind.FLAT:
        return False
    ratio = wanted_nlist(count, config) / index.nlist
    return ratio >= NLIST_SLACK or ratio <= 1 / NLIST_SLACK


def rebuilt(index: Any, config: Config) -> Any:
    """A new index of the kind for ``index``'s size, holding the same ids and vectors."""
    ids, vectors = stored_vectors(index)
    new = make_index(len(ids), index.d, config, training=vectors)
    if len(ids):
        new.add_with_ids(vectors, ids)
    log.info("Rebuilt the vector index: %s -> %s, %d vectors", describe(index), describe(new), len(ids))
    return new


def nprobe(index: Any, config: Config, allowed: int | None = None) -> int:
    """How many IVF lists a search probes: ``ivf_probe_share`` of them, more when filtered.

    A filtered search probes the share divided by the share of the vectors allowed (up to
    every list), so that about as many allowed vectors are compared as in an unfiltered
    search: a narrow filter (the passages of a few articles) scans all of its vectors.
    """
    share = config.ivf_probe_share
    if allowed is not None:
        share *= index.ntotal / max(allowed, 1)
    return max(1, min(math.ceil(share * index.nlist), index.nlist))


def search_parameters(index: Any, config: Config, allowed: np.ndarray | None = None) -> Any:
    """FAISS search parameters: IVF's ``nprobe``, and a filter to the ids in ``allowed``."""
    import faiss

    selector = None if allowed is None else faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
    if index_kind(index) is IndexKind.FLAT:
        return None if selector is None else faiss.SearchParameters(sel=selector)
    probes = nprobe(index, config, None if allowed is None else len(allowed))
    if selector is None:
        return faiss.SearchParametersIVF(nprobe=probes)
    return faiss.SearchParametersIVF(sel=selector, nprobe=probes)


# ---- the llama-index store over these indexes ----------------------------------------------


class VectorIds(Protocol):
    """Which vector id each passage has (``qa.index.passage_table.PassageTable``)."""

    def vector_id(self, node_id: str) -> int | None: ...

    def node_id(self, vector_id: int) -> str | None: ...


class IdMapFaissStore(FaissMapVectorStore):
    """llama-index's FAISS id-map store, over the index kinds above, with the passages' vector ids kept
    by the index's passage table (``use_ids``) rather than in maps of its own: each passage's vector id
    is fixed when its article is added, and never reused for another while the index is in memory.
    The index is exact (``IndexIDMap2`` over ``IndexFlatIP``) or IVF, which carries its own ids;
    searches use ``config``'s IVF settings.
    """

    _config: Config = PrivateAttr()
    _ids: VectorIds | None = PrivateAttr(default=None)

    def __init__(self, faiss_index: Any, config: Config) -> None:
        # Not FaissMapVectorStore.__init__: it accepts IndexIDMap only, and IVF must not be wrapped in one.
        FaissVectorStore.__init__(self, faiss_index=faiss_index)
        self._config = config

    def use_ids(self, ids: VectorIds) -> None:
        """Take each passage's vector id from ``ids``."""
        self._ids = ids

    def _table(self) -> VectorIds:
        if self._ids is None:
            raise RuntimeError("the FAISS store was not given the passages' vector ids (use_ids)")
        return self._ids

    def fit(self, config: Config) -> None:
        """Rebuild the FAISS index into the kind its size calls for, if it is not."""
        self._config = config
        if needs_rebuild(self._faiss_index, config):
            self._faiss_index = rebuilt(self._faiss_index, config)

    def describe(self) -> dict[str, Any]:
        """The index kind and its settings, as the manifest records them."""
        return describe(self._faiss_index)

    def keep_only_known(self, known: Callable[[str], bool]) -> None:
        """Nothing to do: FAISS lives in this process and holds only this index's passages."""

    def persist(self, persist_path: str, fs: Any = None) -> None:
        """Write the FAISS index to ``persist_path``."""
        faiss.write_index(self._faiss_index, persist_path)

    def add(self, nodes: list[BaseNode], **add_kwargs: Any) -> list[str]:
        """Add nodes (with embeddings) to FAISS under their passages' vector ids; returns their node ids."""
        if not nodes:
            return []
        table = self._table()
        ids = [table.vector_id(n.id_) for n in nodes]
        if None in ids:
            raise ValueError(f"passage {nodes[ids.index(None)].id_!r} has no vector id")
        vectors = np.asarray([n.get_embedding() for n in nodes], dtype=np.float32)
        self._faiss_index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        return [n.id_ for n in nodes]

    def delete_nodes(self, node_ids: list[str] | None = None, filters: Any = None, **delete_kwargs: Any) -> None:
        """Remove passages' vectors (call it before the passage table forgets them)."""
        if filters is not None or node_ids is None:
            raise ValueError("FAISS deletes by node_ids only")
        table = self._table()
        ids = [i for i in map(table.vector_id, node_ids) if i is not None]
        if ids:
            self._faiss_index.remove_ids(np.asarray(ids, dtype=np.int64))

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        raise NotImplementedError("delete passages by node id (delete_nodes)")

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Search FAISS; ``query.node_ids`` restricts the search to those passages."""
        if query.filters is not None:
            raise ValueError("Metadata filters are not implemented for FAISS: restrict by node_ids.")
        table = self._table()
        allowed = None
        limit = self._faiss_index.ntotal
        if query.node_ids is not None:
            ids = [i for i in map(table.vector_id, query.node_ids) if i is not None]
            allowed, limit = np.asarray(ids, dtype=np.int64), len(ids)
        top_k = min(query.similarity_top_k or 0, limit)
        if top_k <= 0:
            return VectorStoreQueryResult(similarities=[], ids=[])
        vector = np.asarray(query.query_embedding, dtype=np.float32)[np.newaxis, :]
        params = search_parameters(self._faiss_index, self._config, allowed)
        dists, found = self._faiss_index.search(vector, top_k, params=params)
        pairs = [(float(d), table.node_id(int(i))) for d, i in zip(dists[0], found[0], strict=True) if i >= 0]
        kept = [(d, n) for d, n in pairs if n is not None]
        return VectorStoreQueryResult(similarities=[d for d, _ in kept], ids=[n for _, n in kept])


def new_store(dimension: int, config: Config, vectors: np.ndarray | None) -> IdMapFaissStore:
    """An empty store for ``vectors``: their number picks the index kind, and an IVF index is trained on them."""
    count = 0 if vectors is None else len(vectors)
    return IdMapFaissStore(make_index(count, dimension, config, vectors), config)


def open_store(folder: Path, dimension: int, config: Config) -> IdMapFaissStore:
    """Read the FAISS index (FAISS's own binary format); the passages' ids come from ``use_ids``."""
    faiss_index = faiss.read_index(str(folder / FAISS_FILE))
    if faiss_index.d != dimension:
        raise ValueError(f"{FAISS_FILE} holds {faiss_index.d}-d vectors; the manifest says {dimension}")
    describe(faiss_index)  # raises ValueError for an index of a kind not built here
    return IdMapFaissStore(faiss_index, config)
