"""Which library an index folder holds, and building one: ``PassageIndex`` (the library in the folder)
or ``MilvusLibrary`` (the whole library in Milvus, ``--store milvus://``; the folder keeps its settings).

Both answer the same calls (``Library``); the Milvus one is imported only when it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

from qa.config import Config
from qa.errors import CorruptIndexError, IndexNotFoundError
from qa.index import stores
from qa.index.passage_index import PassageIndex
from qa.index.versions import check_manifest, current_version, read_manifest
from qa.ingest.annotate import Annotator
from qa.models import Embedder
from qa.types import Article

if TYPE_CHECKING:
    from qa.index.milvus_library import MilvusLibrary

Library = Union[PassageIndex, "MilvusLibrary"]


def build(
    articles: Sequence[Article], config: Config, embedder: Embedder, annotator: Annotator, show_progress: bool = True
) -> Library:
    """A new library of ``articles``, where ``config.store`` says."""
    if stores.parse_store(config.store).kind is stores.StoreKind.MILVUS_LIBRARY:
        return milvus_library(config.store).build(articles, config, embedder, annotator, show_progress)
    return PassageIndex.build(articles, config, embedder, annotator, show_progress)


def load(index_dir: str | Path, config: Config, get_embedder: Callable[[], Embedder]) -> Library:
    """The library persisted in ``index_dir`` (raises as ``PassageIndex.load`` does)."""
    folder = current_version(index_dir)
    try:
        manifest = read_manifest(folder, str(index_dir))
    except (CorruptIndexError, IndexNotFoundError):
        manifest = {}  # PassageIndex.load reports it (and reads a version written meanwhile)
    spec = stores.recorded_spec(manifest.get(stores.MANIFEST_KEY))
    if spec is None or spec.kind is not stores.StoreKind.MILVUS_LIBRARY:
        return PassageIndex.load(index_dir, config, get_embedder)
    check_manifest(manifest, config, str(index_dir))
    return milvus_library(spec.uri).load(folder, manifest, str(index_dir), config, get_embedder)


def milvus_library(uri: str) -> type[MilvusLibrary]:
    """``MilvusLibrary``, or ``StoreUnavailableError`` saying how to install the [milvus] extra."""
    stores.milvus_module(uri, "milvus_library")  # the client's import error, worded
    from qa.index.milvus_library import MilvusLibrary

    return MilvusLibrary
