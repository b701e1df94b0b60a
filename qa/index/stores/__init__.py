"""Where the passage vectors live: FAISS files in the index folder, or a Milvus collection.

``Config.store`` (``--store``, ``$QA_STORE``) names the store of a new index:

- ``faiss`` (the default): an inner-product FAISS index, exact below ``Config.ann_threshold``
  vectors and IVF above (``faiss.py``), in segments that each version folder of the index links
  or adds (``faiss/``, ``faiss_segments.py``); each passage's FAISS id is kept with its article
  (``qa.index.passage_table``).
- ``milvus://HOST:PORT[/PREFIX]``: the whole library (passages and their text, BM25, vectors,
  articles and annotations) in a Milvus 2.5+ server or cluster (``milvus_library.py``,
  ``qa.index.milvus_library``): the index folder keeps only its settings.
- ``milvus-vectors://HOST:PORT[/PREFIX]``: only the passage vectors in a collection on a Milvus server
  (2.3 and later), through llama-index's ``MilvusVectorStore`` (``milvus.py``). Each build creates a
  collection ``<PREFIX>_<build time>`` (``PREFIX`` defaults to ``newsdesk``); incremental
  updates change that collection in place; the collection of an index replaced by a rebuild is
  dropped once the new one is live. ``Config.milvus_token`` (``user:password`` or an API key,
  ``$QA_MILVUS_TOKEN``) is sent to servers that require a login.

Both keep L2-normalised vectors and search by inner product (cosine), exactly (a flat index),
so they return the same passages. The manifest of each version records its store
(``StoreSpec.to_manifest``); loading reads the vectors from there, and a Milvus ``--store`` given
at load time only changes the address the collection is reached at.

Every store class carries its own ``fit(config)`` (FAISS: rebuild into the kind its size calls
for), ``describe()`` (what the manifest records of its index) and ``keep_only_known(known)``
(a shared Milvus collection: leave out passages this process's index does not hold).
"""

from __future__ import annotations

import enum
import importlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import numpy as np
from llama_index.core.vector_stores.types import BasePydanticVectorStore

from qa.config import Config
from qa.errors import InvalidStoreError, ManifestMismatchError, StoreUnavailableError
from qa.index.stores import faiss_segments
from qa.index.stores.faiss_segments import IdMapFaissStore

log = logging.getLogger(__name__)

MANIFEST_KEY = "store"  # manifest key: the StoreSpec of the version
DEFAULT_MILVUS_PREFIX = "newsdesk"
MILVUS_DEFAULT_PORT = 19530
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")
_COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


class StoreKind(str, enum.Enum):
    """The vector stores an index can use."""

    FAISS = "faiss"
    MILVUS = "milvus"  # the passage vectors only (``milvus-vectors://``; what an older manifest's "milvus" meant)
    MILVUS_LIBRARY = "milvus-library"  # the whole library (``milvus://``)


SCHEMES = {"milvus": StoreKind.MILVUS_LIBRARY, "milvus-vectors": StoreKind.MILVUS}


@dataclass(frozen=True)
class StoreSpec:
    """A vector store: its kind and, for Milvus, the server (``milvus://host:port``) and collection.

    ``collection`` is the collection prefix in a ``--store`` value and the full collection name
    once an index is built.
    """

    kind: StoreKind
    uri: str = ""
    collection: str = ""
    token: str = field(default="", repr=False, compare=False)  # Config.milvus_token; never in a manifest

    def to_manifest(self) -> dict[str, str]:
        """The spec as recorded in a manifest (never a token)."""
        if self.kind is StoreKind.FAISS:
            return {"kind": self.kind.value}
        return {"kind": self.kind.value, "uri": self.uri, "collection": self.collection}

    def describe(self) -> str:
        """``faiss``, ``milvus://host:port/library`` or ``milvus-vectors://host:port/collection``."""
        if self.kind is StoreKind.FAISS:
            return self.kind.value
        scheme = next(s for s, k in SCHEMES.items() if k is self.kind)
        return f"{scheme}://{self.uri.split('://', 1)[1]}/{self.collection}"


def manifest_store(manifest: Mapping[str, object]) -> StoreSpec:
    """Where a version's manifest says its library lives (FAISS when it says nothing readable)."""
    return recorded_spec(manifest.get(MANIFEST_KEY)) or StoreSpec(StoreKind.FAISS)


def parse_store(value: str) -> StoreSpec:
    """Parse a ``--store`` value: ``faiss``, ``milvus://HOST[:PORT][/PREFIX]`` or ``milvus-vectors://...``.

    Raises ``InvalidStoreError`` saying what is accepted.
    """
    text = (value or "").strip()
    if text.lower() in ("", StoreKind.FAISS.value):
        return StoreSpec(StoreKind.FAISS)
    parts = urlsplit(text)
    kind = SCHEMES.get(parts.scheme.lower())
    if kind is None or not parts.hostname:
        raise InvalidStoreError(text)
    try:
        port = parts.port or MILVUS_DEFAULT_PORT
    except ValueError:
        raise InvalidStoreError(text) from None
    prefix = parts.path.strip("/") or DEFAULT_MILVUS_PREFIX
    if parts.query or parts.fragment or parts.username or not _PREFIX.fullmatch(prefix):
        raise InvalidStoreError(text)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return StoreSpec(kind, f"milvus://{host}:{port}", prefix)


def spec_for_build(store: str, token: str = "") -> StoreSpec:
    """The store of a new index: for Milvus, a collection of its own named after the build time."""
    spec = replace(parse_store(store), token=token)
    if spec.kind is not StoreKind.FAISS:
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


def spec_for_load(recorded: object, store: str, index_dir: str, token: str = "") -> StoreSpec:
    """The store of a persisted index: as its manifest records it (FAISS when it records none).

    A Milvus ``store`` (from the configuration, either scheme) gives the address to reach the recorded
    collections at; a Milvus ``store`` for an index kept in FAISS raises ``ManifestMismatchError``
    (moving an index to Milvus is a rebuild), and so does an unreadable record.
    """
    spec = recorded_spec(recorded)
    if spec is None:
        raise ManifestMismatchError(index_dir, {MANIFEST_KEY: (recorded, store)})
    wanted = parse_store(store)
    if wanted.kind is StoreKind.FAISS:
        return spec
    if spec.kind is StoreKind.FAISS:
        raise ManifestMismatchError(index_dir, {MANIFEST_KEY: (spec.describe(), store)})
    return replace(spec, uri=wanted.uri, token=token)


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
    """Delete what a replaced index kept outside its folder (Milvus collections); FAISS: nothing."""
    if spec.kind is StoreKind.MILVUS:
        milvus_module(spec.uri).drop_collection(spec.uri, spec.collection, spec.token)
    elif spec.kind is StoreKind.MILVUS_LIBRARY:
        module = milvus_module(spec.uri, "milvus_library")
        module.LibraryCollections(spec.uri, spec.collection, 0, spec.token).drop()


def drop_replaced(previous: object, current: StoreSpec) -> None:
    """Drop the store that ``previous`` (a manifest's record) names when a new version stopped using it.

    Failures are logged, not raised: the new version is already live.
    """
    old = recorded_spec(previous)
    old = old and replace(old, token=current.token)
    if old is None or old.kind is StoreKind.FAISS or old.collection == current.collection:
        return
    try:
        drop_store(old)
        log.info("Dropped the Milvus collections %s of the replaced index", old.describe())
    except Exception as exc:  # the new index is live: a server that cannot drop the old one is no error
        log.warning("Could not drop the Milvus collections %s of the replaced index: %s", old.describe(), exc)


# ---- Milvus (the optional [milvus] extra) ------------------------------------------------


def _new_faiss(spec: StoreSpec, dimension: int, config: Config, vectors: np.ndarray | None) -> IdMapFaissStore:
    return faiss_segments.new_store(dimension, config, vectors)


def _open_faiss(
    spec: StoreSpec, folder: Path, dimension: int, passages: int, index_dir: str, config: Config
) -> IdMapFaissStore:
    return faiss_segments.open_store(folder, dimension, config)


def milvus_module(uri: str, name: str = "milvus") -> ModuleType:
    """``qa.index.stores.NAME``, or ``StoreUnavailableError`` saying how to install the [milvus] extra."""
    try:
        return importlib.import_module(f"qa.index.stores.{name}")
    except ImportError as exc:
        raise StoreUnavailableError(uri, str(exc), StoreUnavailableError.INSTALL) from exc


def _new_milvus(spec: StoreSpec, dimension: int, config: Config, vectors: np.ndarray | None) -> BasePydanticVectorStore:
    return milvus_module(spec.uri).create_collection(spec.uri, spec.collection, dimension, spec.token)


def _open_milvus(
    spec: StoreSpec, folder: Path, dimension: int, passages: int, index_dir: str, config: Config
) -> BasePydanticVectorStore:
    return milvus_module(spec.uri).open_collection(
        spec.uri, spec.collection, dimension, passages, index_dir, spec.token
    )


_NEW: dict[StoreKind, Callable[[StoreSpec, int, Config, np.ndarray | None], BasePydanticVectorStore]] = {
    StoreKind.FAISS: _new_faiss,
    StoreKind.MILVUS: _new_milvus,
}
_OPEN: dict[StoreKind, Callable[[StoreSpec, Path, int, int, str, Config], BasePydanticVectorStore]] = {
    StoreKind.FAISS: _open_faiss,
    StoreKind.MILVUS: _open_milvus,
}
