"""The kinds of FAISS index that hold the passage vectors (exact below a size, approximate above);
``faiss_segments.py`` keeps them in segments and is llama-index's FAISS store over them.

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
√n, then differs fourfold). With segments, "an index" is the largest segment, and the size is the
whole collection's.
"""

from __future__ import annotations

import logging
import math
from enum import Enum
from typing import Any

import faiss
import numpy as np

from qa.config import Config

log = logging.getLogger(__name__)

FAISS_FILE = "default__vector_store.json"  # the one FAISS file of format 3 and before (qa migrate reads it)
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

    selector = None if allowed is None else faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
    if index_kind(index) is IndexKind.FLAT:
        return None if selector is None else faiss.SearchParameters(sel=selector)
    probes = nprobe(index, config, None if allowed is None else len(allowed))
    if selector is None:
        return faiss.SearchParametersIVF(nprobe=probes)
    return faiss.SearchParametersIVF(sel=selector, nprobe=probes)
