"""Where the passage vectors live: FAISS files in the index folder, or a Milvus collection.

``Config.store`` (``--store``, ``$QA_STORE``) names the store of a new index:

- ``faiss`` (the default): an inner-product FAISS index, exact below ``Config.ann_threshold``
  vectors and IVF above (``qa/faiss_index.py``), written into each version folder of the index
  (``default__vector_store.json`` and ``id_map.json``).
- ``milvus://HOST:PORT[/PREFIX]``: a collection on a Milvus server or cluster, through
  llama-index's ``MilvusVectorStore`` (see ``qa/milvus_store.py``). Each build creates a
  collection ``<PREFIX>_<build time>`` (``PREFIX`` defaults to ``newsdesk``); incremental
  updates change that collection in place; the collection of an index replaced by a rebuild is
  dropped once the new one is live. ``$QA_MILVUS_TOKEN`` (``user:password`` or an API key) is
  sent to servers that require a login.

Both keep L2-normalised vectors and search by inner product (cosine), exactly (a flat index),
so they return the same passages. The manifest of each version records its store
(``StoreSpec.to_manifest``); loading reads the vectors from there, and a Milvus ``--store`` given
at load time only changes the address the collection is reached at.
"""

from __future__ import annotations

import enum
import importlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import BasePydanticVectorStore, VectorStoreQuery, VectorStoreQueryResult
from llama_index.vector_stores.faiss import FaissMapVectorStore, FaissVectorStore

from qa.config import Config
from qa.errors import InvalidStoreError, ManifestMismatchError, StoreUnavailableError
from qa.faiss_index import describe, make_index, needs_rebuild, rebuilt, search_parameters

log = logging.getLogger(__name__)

FAISS_FILE = "default__vector_store.json"
ID_MAP = "id_map.json"
MANIFEST_KEY = "store"  # manifest key: the StoreSpec of the version
DEFAULT_MILVUS_PREFIX = "newsdesk"
MILVUS_DEFAULT_PORT = 19530
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")
_COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


class StoreKind(str, enum.Enum):
    """The vector stores an index can use."""

    FAISS = "faiss"
    MILVUS = "milvus"


@dataclass(frozen=True)
class StoreSpec:
    """A vector store: its kind and, for Milvus, the server (``milvus://host:port``) and collection.

    ``collection`` is the collection prefix in a ``--store`` value and the full collection name
    once an index is built.
    """

    kind: StoreKind
    uri: str = ""
    collection: str = ""

    def to_manifest(self) -> dict[str, str]:
        """The spec as recorded in a manifest (never a token)."""
        if self.kind is StoreKind.FAISS:
            return {"kind": self.kind.value}
        return {"kind": self.kind.value, "uri": self.uri, "collection": self.collection}

    def describe(self) -> str:
        """``faiss``, or ``milvus://host:port/collection``."""
        return self.kind.value if self.kind is StoreKind.FAISS else f"{self.uri}/{self.collection}"


def parse_store(value: str) -> StoreSpec:
    """Parse a ``--store`` value: ``faiss`` or ``milvus://HOST[:PORT][/PREFIX]``.

    Raises ``InvalidStoreError`` saying what is accepted.
    """
    text = (value or "").strip()
    if text.lower() in ("", StoreKind.FAISS.value):
        return StoreSpec(StoreKind.FAISS)
    parts = urlsplit(text)
    if parts.scheme.lower() != StoreKind.MILVUS.value or not parts.hostname:
        raise InvalidStoreError(text)
    try:
        port = parts.port or MILVUS_DEFAULT_PORT
    except ValueError:
        raise InvalidStoreError(text) from None
    prefix = parts.path.strip("/") or DEFAULT_MILVUS_PREFIX
    if parts.query or parts.fragment or parts.username or not _PREFIX.fullmatch(prefix):
        raise InvalidStoreError(text)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return StoreSpec(StoreKind.MILVUS, f"milvus://{host}:{port}", prefix)


def spec_for_build(store: str) -> StoreSpec:
    """The store of a new index: for Milvus, a collection of its own named after the build time."""
    spec = parse_store(store)
    if spec.kind is StoreKind.MILVUS:
        spec = replace(spec, collection=f"{spec.collection}_{time.time_ns()}")
    return spec


def recorded_spec(recorded: object) -> StoreSpec | None:
    """The store a manifest records (FAISS when it records none, as before stores existed); None if unreadable."""
    if recorded is None:
        return StoreSpec(StoreKind.FAISS)
    if not isinstance(recorded, Mapping) or recorded.get("kind") not in {k.value for k in StoreKind}:
        return None
    spec = StoreSpec(StoreKind(recorded["kind"]), str(recorded.get("uri", "")), str(recorded.get("collection", "")))
    if spec.kind is StoreKind.FAISS:
        return spec
    return spec if spec.uri.startswith("milvus://") and _COLLECTION.fullmatch(spec.collection) else None


def spec_for_load(recorded: object, store: str, index_dir: str) -> StoreSpec:
    """The store of a persisted index: as its manifest records it (FAISS when it records none).

    A Milvus ``store`` (from the configuration) gives the address to reach the recorded
    collection at; a Milvus ``store`` for an index kept in FAISS raises ``ManifestMismatchError``
    (moving an index to Milvus is a rebuild), and so does an unreadable record.
    """
    spec = recorded_spec(recorded)
    if spec is None:
        raise ManifestMismatchError(index_dir, {MANIFEST_KEY: (recorded, store)})
    wanted = parse_store(store)
    if wanted.kind is StoreKind.FAISS:
        return spec
    if spec.kind is not StoreKind.MILVUS:
        raise ManifestMismatchError(index_dir, {MANIFEST_KEY: (spec.describe(), store)})
    return replace(spec, uri=wanted.uri)


def new_store(
    spec: StoreSpec, dimension: int, config: Config, vectors: np.ndarray | None = None
) -> BasePydanticVectorStore:
    """An empty vector store of ``dimension``-d vectors, as ``spec`` says, for ``vectors``
    (FAISS: their number picks the index kind, and an IVF index is trained on them)."""
    return _NEW[spec.kind](spec, dimension, config, vectors)


def open_store(
    spec: StoreSpec, folder: Path, dimension: int, passages: int, index_dir: str, config: Config
) -> BasePydanticVectorStore:
    """The vector store of a persisted version (``folder``) holding ``passages`` vectors."""
    return _OPEN[spec.kind](spec, folder, dimension, passages, index_dir, config)


def drop_store(spec: StoreSpec) -> None:
    """Delete what a replaced index kept outside its folder (a Milvus collection); FAISS: nothing."""
    if spec.kind is StoreKind.MILVUS:
        _milvus(spec.uri).drop_collection(spec.uri, spec.collection)


def drop_replaced(previous: object, current: StoreSpec) -> None:
    """Drop the store that ``previous`` (a manifest's record) names when a new version stopped using it.

    Failures are logged, not raised: the new version is already live.
    """
    old = recorded_spec(previous)
    if old is None or old.kind is not StoreKind.MILVUS or old.collection == current.collection:
        return
    try:
        drop_store(old)
        log.info("Dropped the Milvus collection %s of the replaced index", old.describe())
    except Exception as exc:  # the new index is live: a server that cannot drop the old one is no error
        log.warning("Could not drop the Milvus collection %s of the replaced index: %s", old.describe(), exc)


def keep_only_known(store: BasePydanticVectorStore, known: Callable[[str], bool]) -> None:
    """Have a shared store leave out hits of passages this index does not hold.

    Another process may have added passages to a Milvus collection since this index was read;
    their ids are not in this index's docstore. FAISS lives in this process: nothing to do.
    """
    setter = getattr(store, "keep_only_known", None)
    if setter is not None:
        setter(known)


# ---- FAISS -----------------------------------------------------------------------------


class IdMapFaissStore(FaissMapVectorStore):
    """llama-index's FAISS id-map store, over the index kinds of ``qa.faiss_index``, with ids that never collide.

    The upstream ``add`` numbers new vectors by ``ntotal``, which after a deletion can
    reuse the id of a vector still in the index; here new ids continue after the largest.
    The index is exact (``IndexIDMap2`` over ``IndexFlatIP``) or IVF, which carries its
    own ids; searches use ``config``'s IVF settings.
    """

    _config: Config = PrivateAttr()

    def __init__(self, faiss_index: Any, config: Config) -> None:
        # Not FaissMapVectorStore.__init__: it accepts IndexIDMap only, and IVF must not be wrapped in one.
        FaissVectorStore.__init__(self, faiss_index=faiss_index)
        self._node_id_to_faiss_id_map = {}
        self._faiss_id_to_node_id_map = {}
        self._config = config

    def fit(self, config: Config) -> None:
        """Rebuild the FAISS index into the kind its size calls for (see ``qa.faiss_index``), if it is not."""
        self._config = config
        if needs_rebuild(self._faiss_index, config):
            self._faiss_index = rebuilt(self._faiss_index, config)

    def add(self, nodes: list[BaseNode], **add_kwargs: Any) -> list[str]:
        """Add nodes (with embeddings) to FAISS; returns their node ids."""
        if not nodes:
            return []
        start = max(self._faiss_id_to_node_id_map, default=-1) + 1
        ids = np.arange(start, start + len(nodes), dtype=np.int64)
        vectors = np.asarray([n.get_embedding() for n in nodes], dtype=np.float32)
        self._faiss_index.add_with_ids(vectors, ids)
        for faiss_id, node in zip(ids.tolist(), nodes, strict=True):
            self._node_id_to_faiss_id_map[node.id_] = faiss_id
            self._faiss_id_to_node_id_map[faiss_id] = node.id_
        return [n.id_ for n in nodes]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Search FAISS; ``query.node_ids`` restricts the search to those passages."""
        if query.filters is not None:
            raise ValueError("Metadata filters are not implemented for FAISS: restrict by node_ids.")
        allowed = None
        limit = self._faiss_index.ntotal
        if query.node_ids is not None:
            known = self._node_id_to_faiss_id_map  # once: each attribute access goes through pydantic
            ids = [faiss_id for faiss_id in map(known.get, query.node_ids) if faiss_id is not None]
            allowed, limit = np.asarray(ids, dtype=np.int64), len(ids)
        top_k = min(query.similarity_top_k or 0, limit)
        if top_k <= 0:
            return VectorStoreQueryResult(similarities=[], ids=[])
        vector = np.asarray(query.query_embedding, dtype=np.float32)[np.newaxis, :]
        params = search_parameters(self._faiss_index, self._config, allowed)
        dists, found = self._faiss_index.search(vector, top_k, params=params)
        pairs = [
            (float(d), self._faiss_id_to_node_id_map[int(i)]) for d, i in zip(dists[0], found[0], strict=True) if i >= 0
        ]
        return VectorStoreQueryResult(similarities=[d for d, _ in pairs], ids=[n for _, n in pairs])


def _new_faiss(spec: StoreSpec, dimension: int, config: Config, vectors: np.ndarray | None) -> IdMapFaissStore:
    count = 0 if vectors is None else len(vectors)
    return IdMapFaissStore(make_index(count, dimension, config, vectors), config)


def _open_faiss(
    spec: StoreSpec, folder: Path, dimension: int, passages: int, index_dir: str, config: Config
) -> IdMapFaissStore:
    """Read the FAISS index (FAISS's own binary format) and its id map (JSON only).

    Unlike llama-index's ``from_persist_dir``, an id map that is not JSON is an error
    rather than something handed to ``ast.literal_eval``.
    """
    import faiss

    faiss_index = faiss.read_index(str(folder / FAISS_FILE))
    if faiss_index.d != dimension:
        raise ValueError(f"{FAISS_FILE} holds {faiss_index.d}-d vectors; the manifest says {dimension}")
    describe(faiss_index)  # raises ValueError for an index of a kind not built here
    id_map = json.loads((folder / ID_MAP).read_text(encoding="utf-8"))
    store = IdMapFaissStore(faiss_index, config)
    store._node_id_to_faiss_id_map = {str(k): int(v) for k, v in id_map["node_id_to_faiss_id_map"].items()}
    store._faiss_id_to_node_id_map = {int(k): str(v) for k, v in id_map["faiss_id_to_node_id_map"].items()}
    return store


# ---- Milvus (the optional [milvus] extra) ------------------------------------------------


def _milvus(uri: str) -> ModuleType:
    """``qa.milvus_store``, or ``StoreUnavailableError`` saying how to install the [milvus] extra."""
    try:
        return importlib.import_module("qa.milvus_store")
    except ImportError as exc:
        raise StoreUnavailableError(uri, str(exc), StoreUnavailableError.INSTALL) from exc


def _new_milvus(spec: StoreSpec, dimension: int, config: Config, vectors: np.ndarray | None) -> BasePydanticVectorStore:
    return _milvus(spec.uri).create_collection(spec.uri, spec.collection, dimension)


def _open_milvus(
    spec: StoreSpec, folder: Path, dimension: int, passages: int, index_dir: str, config: Config
) -> BasePydanticVectorStore:
    return _milvus(spec.uri).open_collection(spec.uri, spec.collection, dimension, passages, index_dir)


_NEW: dict[StoreKind, Callable[[StoreSpec, int, Config, np.ndarray | None], BasePydanticVectorStore]] = {
    StoreKind.FAISS: _new_faiss,
    StoreKind.MILVUS: _new_milvus,
}
_OPEN: dict[StoreKind, Callable[[StoreSpec, Path, int, int, str, Config], BasePydanticVectorStore]] = {
    StoreKind.FAISS: _open_faiss,
    StoreKind.MILVUS: _open_milvus,
}
