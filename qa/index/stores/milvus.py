"""Passage vectors in a Milvus collection, through llama-index's ``MilvusVectorStore``.

Imported only for an index whose store is ``milvus://...`` (the optional ``[milvus]`` extra:
``llama-index-vector-stores-milvus`` and ``pymilvus``). The collection holds, per passage, its
id (primary key), its article's ``doc_id``, its text and llama-index's node JSON, and its
vector under a FLAT (exact) inner-product index: the same search as the FAISS store.

Writes are upserts (a passage id written again replaces its row), so repeating an
interrupted update converges. Searches use the collection's Session consistency (this process
sees its own writes at once); opening an index runs one Strong count, which waits until the
server has applied every earlier write, and checks it against the manifest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qa.errors import CorruptIndexError, StoreUnavailableError

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.vector_stores.types import MetadataFilters, VectorStoreQuery, VectorStoreQueryResult
    from llama_index.vector_stores.milvus import MilvusVectorStore
    from pymilvus import MilvusClient, MilvusException
except ImportError as exc:  # the [milvus] extra is not installed
    raise ImportError(f"the Milvus store needs the [milvus] extra ({exc})") from exc

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
ID_FIELD = "id"  # llama-index's primary key field
DELETE_BATCH = 1000  # ids per delete expression
# pymilvus pings every 10 s, even while idle; a gRPC server that keeps gRPC's default policy (Milvus Lite)
# answers a third ping within 5 minutes with GOAWAY "too_many_pings", and the connection is lost. A
# connection of our own (not shared with other clients in the process) pings once it has been idle 6 minutes.
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 360_000}


class QAMilvusStore(MilvusVectorStore):
    """``MilvusVectorStore`` returning passage ids and cosine scores, filtered by article.

    A search restricted to some articles filters on the ``doc_id`` field in Milvus (one
    expression, no post-filtering); hits come back as ids for the index's docstore to resolve,
    leaving out passages this process's index does not hold (see ``keep_only_known``).
    """

    _known: Callable[[str], bool] | None = PrivateAttr(default=None)
    _address: str = PrivateAttr(default="")  # milvus://host:port, for error messages

    def keep_only_known(self, known: Callable[[str], bool]) -> None:
        """Leave out of search results the passages for which ``known(passage_id)`` is false: another
        process may have added passages to the collection since this index was read."""
        self._known = known

    def fit(self, config: object) -> None:
        """Nothing to do: a Milvus collection sizes its own index."""

    def save(self, folder: Path, previous: Path | None) -> None:
        """Nothing to write: the vectors live in the collection."""

    def describe(self) -> None:
        """Nothing for the manifest: the collection is recorded as the store itself."""
        return None

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nearest passages, within ``query.doc_ids`` (or ``node_ids``) when given."""
        if query.filters is not None:
            raise ValueError("Metadata filters are not implemented for Milvus: restrict by doc_ids or node_ids.")
        expr = ""
        for field, values in ((self.doc_id_field, query.doc_ids), (ID_FIELD, query.node_ids)):
            if values is not None:
                if not values:
                    return VectorStoreQueryResult(similarities=[], ids=[])
                expr = _in_expression(field, values)
                break
        if not query.similarity_top_k:
            return VectorStoreQueryResult(similarities=[], ids=[])
        with _reaching(self._address):
            found = self.client.search(
                collection_name=self.collection_name,
                data=[query.query_embedding],
                filter=expr,
                limit=query.similarity_top_k,
                output_fields=[],
                search_params={"metric_type": self.similarity_metric},
                anns_field=self.embedding_field,
            )
        pairs = [(str(hit["id"]), float(hit["distance"])) for hit in found[0]]
        if self._known is not None:
            pairs = [(i, s) for i, s in pairs if self._known(i)]
        return VectorStoreQueryResult(ids=[i for i, _ in pairs], similarities=[s for _, s in pairs])

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete passages by id, in batches of ``DELETE_BATCH`` ids per expression."""
        if filters is not None or node_ids is None:
            super().delete_nodes(node_ids, filters, **delete_kwargs)
            return
        with _reaching(self._address):
            for start in range(0, len(node_ids), DELETE_BATCH):
                expr = _in_expression(ID_FIELD, node_ids[start : start + DELETE_BATCH])
                self.client.delete(collection_name=self.collection_name, filter=expr)

    def count(self) -> int:
        """Rows in the collection, once the server has applied every earlier write (Strong)."""
        with _reaching(self._address):
            rows = self.client.query(
                self.collection_name, filter="", output_fields=["count(*)"], consistency_level="Strong"
            )
        return int(rows[0]["count(*)"])


def create_collection(uri: str, collection: str, dimension: int, token: str = "") -> QAMilvusStore:
    """A new, empty collection of ``dimension``-d vectors (exact inner-product search)."""
    client = _connect(uri, token)
    with _reaching(uri):
        if client.has_collection(collection):
            raise CorruptIndexError(uri, f"the Milvus collection {collection} exists already")
    log.info("Creating the Milvus collection %s at %s", collection, uri)
    return _store(uri, collection, dimension, token)


def open_collection(
    uri: str, collection: str, dimension: int, passages: int, index_dir: str, token: str = ""
) -> QAMilvusStore:
    """The collection of a persisted index, loaded for search; checks its dimension and row count.

    Raises ``StoreUnavailableError`` when the server cannot be reached, ``CorruptIndexError``
    when the collection is missing or holds vectors of another dimension.
    """
    client = _connect(uri, token)
    with _reaching(uri):
        if not client.has_collection(collection):
            raise CorruptIndexError(index_dir, f"its Milvus collection {collection} is missing from {uri}")
        fields = client.describe_collection(collection)["fields"]
    dims = [f.get("params", {}).get("dim") for f in fields if f.get("name") == "embedding"]
    if not dims or int(dims[0]) != dimension:
        raise CorruptIndexError(index_dir, f"the Milvus collection {collection} holds {dims} vectors, not {dimension}")
    store = _store(uri, collection, dimension, token)
    with _reaching(uri):
        if str(client.get_load_state(collection).get("state")) != "Loaded":
            client.load_collection(collection)
    rows = store.count()
    if rows != passages:
        log.warning(
            "The Milvus collection %s at %s holds %d passages, the index in %s %d: an update was interrupted or "
            "another writer is changing it. Searches use only the passages the index holds; `qa index ... --rebuild` "
            "makes them agree again.",
            collection,
            uri,
            rows,
            index_dir,
            passages,
        )
    return store


def drop_collection(uri: str, collection: str, token: str = "") -> None:
    """Delete a collection (when it exists)."""
    client = _connect(uri, token)
    with _reaching(uri):
        if client.has_collection(collection):
            client.drop_collection(collection)


def _store(uri: str, collection: str, dimension: int, token: str) -> QAMilvusStore:
    with _reaching(uri):
        store = QAMilvusStore(
            uri=_http(uri),
            token=token,
            collection_name=collection,
            dim=dimension,
            similarity_metric="IP",
            index_config={"index_type": "FLAT", "metric_type": "IP"},
            upsert_mode=True,
            consistency_level="Session",
            use_async_client=False,
            timeout=CONNECT_TIMEOUT_S,
        )
    store._address = uri
    return store


def _connect(uri: str, token: str) -> MilvusClient:
    """A client of the server at ``uri``, or ``StoreUnavailableError`` naming it."""
    with _reaching(uri, connecting=True):
        client = MilvusClient(
            uri=_http(uri), token=token, timeout=CONNECT_TIMEOUT_S, grpc_options=GRPC_OPTIONS, dedicated=True
        )
        client.get_server_version()
    return client


@contextmanager
def _reaching(uri: str, connecting: bool = False) -> Iterator[None]:
    """Turn a failure to reach the server (any failure while ``connecting``) into ``StoreUnavailableError``."""
    try:
        yield
    except MilvusException as exc:
        if connecting or _is_connection_error(exc):
            raise StoreUnavailableError(uri, _detail(exc)) from exc
        raise


def _is_connection_error(exc: MilvusException) -> bool:
    text = f"{getattr(exc, 'message', '')} {exc}".lower()
    return any(w in text for w in ("connect", "unavailable", "timeout", "timed out", "deadline"))


def _detail(exc: MilvusException) -> str:
    return str(getattr(exc, "message", "") or exc).strip() or type(exc).__name__


def _http(uri: str) -> str:
    """``milvus://host:port`` as pymilvus's ``http://host:port``."""
    parts = urlsplit(uri if "://" in uri else f"milvus://{uri}")
    return f"http://{parts.netloc}"


def _in_expression(field: str, values: Sequence[str]) -> str:
    """A Milvus boolean expression ``field in ["a", "b"]`` (string literals quoted as JSON)."""
    return f"{field} in {json.dumps(list(values))}"
