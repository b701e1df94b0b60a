"""The whole library in Milvus (``--store milvus://HOST:PORT[/PREFIX]``): three collections per library.

Imported only for such a library (the optional ``[milvus]`` extra: ``pymilvus``). A library named
``BASE`` (``<PREFIX>_<build time>``) is:

- ``BASE_passages``: one row per passage: its id (``<doc_id>::<position>``, primary key), article id
  and content hash, place, character span and sentence spans, its text, its BM25 terms (the passage's
  title, date and text as ``qa.index.bm25`` tokenises them: lower case, stopwords out, stemmed, so
  that Milvus's BM25 function scores the same terms as the local index), the sparse BM25 vector
  Milvus computes from them, and the dense vector (FLAT, inner product: exact cosine, as FAISS).
- ``BASE_articles``: one row per piece of an article: the article and its annotation as one JSON
  record, split into pieces of at most ``PIECE_CHARS`` characters (a Milvus VARCHAR holds 65,535
  bytes); the first piece also carries the heading (title, date, source, content hash, passage
  count, when it was added).
- ``BASE_meta``: the change log: a row per write, keyed by its time, listing the articles it changed.
  Replicas read the rows they have not seen (``changes``) to learn what another one changed; a row
  is deleted after ``LOG_KEEP_NS``, and clocks may differ by up to ``LOG_WINDOW_NS``.

Every read is Strong: it waits until the server has applied every write made before it, so a replica
sees another's additions on its next question. Writes are upserts by primary key, so repeating an
interrupted write converges.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.schema import TextNode

from qa.errors import CorruptIndexError, InvalidStoreError
from qa.index.passage_table import passage_node
from qa.index.stores.milvus import _connect, _in_expression, _reaching
from qa.types import Article, ArticleNotes, Passage

try:
    from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker
except ImportError as exc:  # the [milvus] extra is not installed
    raise ImportError(f"the Milvus library needs the [milvus] extra ({exc})") from exc

log = logging.getLogger(__name__)
# Milvus Lite gives a query iterator no server timestamp, and pymilvus warns of it on every one.
logging.getLogger("pymilvus.orm.iterator").addFilter(lambda record: "mvccTs" not in record.getMessage())

PASSAGES, ARTICLES, META = "passages", "articles", "meta"
PIECE_CHARS = 16_000  # at most 64,000 bytes of UTF-8: under Milvus's 65,535-byte VARCHAR
MAX_TEXT_BYTES = 65_535
BATCH = 500  # rows per insert, ids per query expression
QUERY_LIMIT = 16_384  # the most rows one query returns
RRF_K = 59  # Milvus ranks from 1, llama-index from 0: 1/(59 + rank) here is its 1/(60 + rank)
LOG_WINDOW_NS = 120 * 10**9  # replicas' clocks may differ by this much
LOG_KEEP_NS = 24 * 3600 * 10**9
EVERYTHING = "*"  # a change log row that names too many articles: read every heading again
HEADING_FIELDS = ["doc_id", "hash", "title", "date", "source", "url", "passages", "added"]
PASSAGE_FIELDS = ["doc_id", "hash", "position", "span_start", "span_end", "sentences"]
_MIN_VERSION = (2, 5)  # Milvus computes BM25 from 2.5


@dataclass(frozen=True)
class HeadingRow:
    """What the first piece of an article's row says of it."""

    doc_id: str
    hash: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    passages: int
    added: int


class LibraryCollections:
    """The collections of one library on one server, through ``pymilvus.MilvusClient``."""

    def __init__(self, uri: str, base: str, dimension: int, token: str = "") -> None:
        self.uri = uri
        self.base = base
        self.dimension = dimension
        self._client: MilvusClient = _connect(uri, token)

    def name(self, kind: str) -> str:
        return f"{self.base}_{kind}"

    # ---- the collections --------------------------------------------------------
    @classmethod
    def create(cls, uri: str, base: str, dimension: int, token: str = "") -> LibraryCollections:
        """New, empty collections for a library (refused by a server too old to compute BM25)."""
        rows = cls(uri, base, dimension, token)
        rows._check_server()
        client = rows._client
        with _reaching(uri):
            for kind in (PASSAGES, ARTICLES, META):
                if client.has_collection(rows.name(kind)):
                    raise CorruptIndexError(uri, f"the Milvus collection {rows.name(kind)} exists already")
            log.info("Creating the Milvus library %s at %s", base, uri)
            for kind, (schema, indexes) in rows._schemas().items():
                client.create_collection(
                    rows.name(kind), schema=schema, index_params=indexes, consistency_level="Strong"
                )
        return rows

    @classmethod
    def open(cls, uri: str, base: str, dimension: int, index_dir: str, token: str = "") -> LibraryCollections:
        """The collections of a persisted library, loaded for search; checks they are there and their dimension."""
        rows = cls(uri, base, dimension, token)
        client = rows._client
        with _reaching(uri):
            for kind in (PASSAGES, ARTICLES, META):
                name = rows.name(kind)
                if not client.has_collection(name):
                    raise CorruptIndexError(index_dir, f"its Milvus collection {name} is missing from {uri}")
                if str(client.get_load_state(name).get("state")) != "Loaded":
                    client.load_collection(name)
            fields = client.describe_collection(rows.name(PASSAGES))["fields"]
        dims = [f.get("params", {}).get("dim") for f in fields if f.get("name") == "embedding"]
        if not dims or int(dims[0]) != dimension:
            raise CorruptIndexError(index_dir, f"the Milvus library {base} holds {dims} vectors, not {dimension}")
        return rows

    def drop(self) -> None:
        with _reaching(self.uri):
            for kind in (PASSAGES, ARTICLES, META):
                if self._client.has_collection(self.name(kind)):
                    self._client.drop_collection(self.name(kind))

    def _check_server(self) -> None:
        with _reaching(self.uri):
            version = str(self._client.get_server_version())
        if version.startswith("milvus_lite"):
            return
        numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
        if len(numbers) == 2 and numbers < _MIN_VERSION:
            raise InvalidStoreError(
                f"milvus://{self.uri.split('://')[-1]}",
                f"the server runs Milvus {version}, which cannot compute BM25: keeping the whole library there "
                "needs Milvus 2.5 or later. Use --store milvus-vectors://HOST:PORT to keep only the passage "
                "vectors there.",
            )

    def _schemas(self) -> dict[str, tuple[Any, Any]]:
        client = self._client
        passages = client.create_schema(auto_id=False)
        passages.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_TEXT_BYTES)
        passages.add_field("doc_id", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        passages.add_field("hash", DataType.VARCHAR, max_length=128)
        for name in ("position", "span_start", "span_end"):
            passages.add_field(name, DataType.INT64)
        passages.add_field("sentences", DataType.JSON)
        passages.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        analyzer = {"tokenizer": "standard"}  # the terms are tokenised already: it only splits them
        passages.add_field(
            "terms", DataType.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True, analyzer_params=analyzer
        )
        passages.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        passages.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.dimension)
        passages.add_function(
            Function(
                name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"], output_field_names=["sparse"]
            )
        )
        passage_indexes = client.prepare_index_params()
        passage_indexes.add_index("embedding", index_type="FLAT", metric_type="IP")
        passage_indexes.add_index(
            "sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": 1.5, "bm25_b": 0.75}
        )
        articles = client.create_schema(auto_id=False)
        articles.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_TEXT_BYTES)
        articles.add_field("doc_id", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        articles.add_field("hash", DataType.VARCHAR, max_length=128)
        for name in ("part", "parts", "passages", "added"):
            articles.add_field(name, DataType.INT64)
        for name in ("title", "date", "source", "url", "body"):
            articles.add_field(name, DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        meta = client.create_schema(auto_id=False)
        meta.add_field("id", DataType.VARCHAR, is_primary=True, max_length=256)
        meta.add_field("value", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        schemas = {PASSAGES: (passages, passage_indexes)}
        for kind, schema in ((ARTICLES, articles), (META, meta)):
            schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # a collection needs a vector field
            indexes = client.prepare_index_params()
            indexes.add_index("v", index_type="FLAT", metric_type="L2")
            schemas[kind] = (schema, indexes)
        return schemas

    # ---- writing ---------------------------------------------------------------------
    def put(self, kind: str, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert ``rows`` into the ``kind`` collection (articles and meta rows get their placeholder vector)."""
        with _reaching(self.uri):
            for start in range(0, len(rows), BATCH):
                batch = rows[start : start + BATCH]
                if kind != PASSAGES:
                    batch = [{**row, "v": [0.0, 0.0]} for row in batch]
                self._client.upsert(self.name(kind), list(batch))

    def delete(self, kind: str, expression: str) -> None:
        with _reaching(self.uri):
            self._client.delete(self.name(kind), filter=expression)

    def flush(self) -> None:
        """Seal what the writes since the last flush left in the servers' buffers into indexed segments (Milvus
        Lite searches a buffer by brute force: 13,000 passages unflushed take 0.5 s a search, flushed 20 ms)."""
        with _reaching(self.uri):
            for kind in (PASSAGES, ARTICLES, META):
                self._client.flush(self.name(kind))

    def log_change(self, doc_ids: Sequence[str]) -> str:
        """Record that a write changed (added, replaced or removed) ``doc_ids``; returns the log row's key."""
        now = time.time_ns()
        key = f"{now:020d}-{uuid.uuid4().hex[:8]}"
        value = json.dumps(list(doc_ids), ensure_ascii=False)
        self.put(META, [{"id": key, "value": value if len(value.encode()) <= MAX_TEXT_BYTES else EVERYTHING}])
        self.delete(META, f'id < "{now - LOG_KEEP_NS:020d}"')
        return key

    # ---- reading ---------------------------------------------------------------------
    def changes(self, newest: str = "") -> dict[str, list[str] | None]:
        """The change log rows from ``LOG_WINDOW_NS`` before the row ``newest`` on (all rows: ``""``):
        key -> the doc ids the write changed (None: too many to list)."""
        since = max(int(newest.split("-")[0]) - LOG_WINDOW_NS, 0) if newest else 0
        rows = self._query(META, filter=f'id >= "{since:020d}"', output_fields=["value"])
        return {r["id"]: None if r["value"] == EVERYTHING else json.loads(r["value"]) for r in rows}

    def headings(self) -> list[HeadingRow]:
        """Every article's heading, in the order they were added."""
        with _reaching(self.uri):
            iterator = self._client.query_iterator(
                self.name(ARTICLES), batch_size=1000, filter="part == 0", output_fields=HEADING_FIELDS
            )
            rows: list[dict[str, Any]] = []
            try:
                while batch := iterator.next():
                    rows.extend(batch)
            finally:
                iterator.close()
        return sorted((_heading(r) for r in rows), key=lambda h: (h.added, h.doc_id))

    def headings_of(self, doc_ids: Iterable[str] = (), hashes: Iterable[str] = ()) -> list[HeadingRow]:
        """The headings of the articles with these ids or these content hashes."""
        found: list[HeadingRow] = []
        for field, values in (("doc_id", list(doc_ids)), ("hash", list(hashes))):
            for chunk in _chunks(values):
                expression = f"part == 0 and {_in_expression(field, chunk)}"
                found += [_heading(r) for r in self._query(ARTICLES, filter=expression, output_fields=HEADING_FIELDS)]
        return found

    def bodies(self, doc_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Each article's (content hash, record) for those of ``doc_ids`` the library holds."""
        pieces: dict[str, list[tuple[int, int, str, str]]] = {}
        for chunk in _chunks(doc_ids, 50):
            fields = ["doc_id", "part", "parts", "hash", "body"]
            for row in self._query(ARTICLES, filter=_in_expression("doc_id", chunk), output_fields=fields):
                pieces.setdefault(row["doc_id"], []).append((row["part"], row["parts"], row["hash"], row["body"]))
        found = {}
        for doc_id, parts in pieces.items():
            first = min(parts)  # its part 0 says which version is live: other pieces are an earlier version's
            live = sorted(p for p in parts if p[2] == first[2])
            if first[0] != 0 or [p[0] for p in live] != list(range(first[1])):
                log.info("The article %r is being written by another process: left out for now", doc_id)
                continue
            found[doc_id] = (first[2], "".join(p[3] for p in live))
        return found

    def dense(self, vector: Sequence[float], limit: int, expression: str) -> list[dict[str, Any]]:
        """The ``limit`` passages nearest ``vector`` (cosine), as rows with a ``score``."""
        with _reaching(self.uri):
            found = self._client.search(
                self.name(PASSAGES),
                data=[list(vector)],
                anns_field="embedding",
                filter=expression,
                limit=limit,
                output_fields=PASSAGE_FIELDS,
                search_params={"metric_type": "IP"},
            )
        return _hits(found)

    def bm25(self, terms: str, limit: int, expression: str) -> list[dict[str, Any]]:
        """The ``limit`` passages Milvus's BM25 scores best for ``terms`` (tokenised as the passages' terms)."""
        with _reaching(self.uri):
            found = self._client.search(
                self.name(PASSAGES),
                data=[terms],
                anns_field="sparse",
                filter=expression,
                limit=limit,
                output_fields=PASSAGE_FIELDS,
                search_params={"metric_type": "BM25"},
            )
        return _hits(found, bm25=True)

    def hybrid(
        self, vector: Sequence[float], terms: str, per_search: int, limit: int, expression: str
    ) -> list[dict[str, Any]]:
        """Dense and BM25 searches of ``per_search`` passages each, fused in Milvus by reciprocal rank (k=60);
        the rows carry their vectors (to order passages of equal fused score by their dense score)."""
        requests = [
            AnnSearchRequest([list(vector)], "embedding", {"metric_type": "IP"}, per_search, expr=expression or None)
        ]
        if terms:
            requests.append(
                AnnSearchRequest([terms], "sparse", {"metric_type": "BM25"}, per_search, expr=expression or None)
            )
        with _reaching(self.uri):
            found = self._client.hybrid_search(
                self.name(PASSAGES),
                requests,
                RRFRanker(RRF_K),
                limit=limit,
                output_fields=[*PASSAGE_FIELDS, "embedding"],
            )
        return _hits(found)

    def _query(self, kind: str, **kwargs: Any) -> list[dict[str, Any]]:
        if "ids" not in kwargs:
            kwargs.setdefault("limit", QUERY_LIMIT)
        with _reaching(self.uri):
            return list(self._client.query(self.name(kind), **kwargs))


def article_rows(doc_id: str, digest: str, heading: dict[str, Any], record: str) -> list[dict[str, Any]]:
    """An article's rows: its record in pieces of at most ``PIECE_CHARS`` characters, the heading on the first."""
    pieces = [record[i : i + PIECE_CHARS] for i in range(0, len(record), PIECE_CHARS)] or [""]
    rows = []
    for part, piece in enumerate(pieces):
        row = {"id": f"{doc_id}#{part}", "doc_id": doc_id, "hash": digest, "part": part, "parts": len(pieces)}
        row |= {"title": "", "date": "", "source": "", "url": "", "passages": 0, "added": 0, "body": piece}
        if part == 0:
            row |= {k: (fit(v) if isinstance(v, str) else v) for k, v in heading.items()}
        rows.append(row)
    return rows


def passage_row(node: TextNode, digest: str, terms: str) -> dict[str, Any]:
    """A passage node's row: its article's content hash and the passage's BM25 ``terms`` beside it."""
    meta, text = node.metadata, node.get_content()
    return {
        "id": node.node_id, "doc_id": meta["doc_id"], "hash": digest, "position": meta["position"],
        "span_start": meta["start"], "span_end": meta["end"], "sentences": meta["sentences"],
        "text": fit(text), "terms": fit(terms), "embedding": node.get_embedding(),
    }  # fmt: skip


def fit(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8 (at a character boundary)."""
    encoded = text.encode("utf-8")
    return text if len(encoded) <= limit else encoded[:limit].decode("utf-8", errors="ignore")


def stale_pieces(doc_id: str, parts: int) -> str:
    """The expression of an article's pieces past its first ``parts`` (left by a longer earlier version)."""
    return f"doc_id == {_quoted(doc_id)} and part >= {parts}"


def passages_of(doc_ids: Sequence[str]) -> Iterator[str]:
    """Expressions of the rows of ``doc_ids``, ``BATCH`` ids each."""
    for chunk in _chunks(doc_ids):
        yield _in_expression("doc_id", chunk)


def other_versions(doc_ids: Sequence[str], hashes: Sequence[str]) -> str:
    """The expression of the rows of ``doc_ids`` of none of ``hashes`` (their articles' versions now: no two
    articles share a content hash), left by earlier versions of them."""
    return f"{_in_expression('doc_id', doc_ids)} and hash not in {json.dumps(list(hashes))}"


def within(doc_ids: Collection[str] | None) -> str:
    """The filter restricting a search to the passages of ``doc_ids`` (all passages: ``""``)."""
    return "" if doc_ids is None else _in_expression("doc_id", list(doc_ids))


def row_node(row: dict[str, Any]) -> TextNode:
    """A passage row as llama-index's node (without its text: the article holds it)."""
    node = passage_node(
        row["id"], row["doc_id"], row["position"], row["span_start"], row["span_end"], row["sentences"], ""
    )
    node.metadata["hash"] = row["hash"]
    return node


def row_passage(article: Article, notes: ArticleNotes, place: dict[str, Any]) -> Passage:
    """A passage of ``article`` where a row or a node's metadata (``start``/``end``) places it."""
    start, end = place.get("span_start", place.get("start")), place.get("span_end", place.get("end"))
    sentences = tuple(notes.sentence(article.text, s, e) for s, e in place["sentences"])
    return Passage(article.doc_id, place["position"], start, end, article.text[start:end], sentences)


def _quoted(value: str) -> str:
    return _in_expression("x", [value])[len("x in [") : -1]


def _heading(row: dict[str, Any]) -> HeadingRow:
    return HeadingRow(
        row["doc_id"], row["hash"], row["title"], row["date"] or None, row["source"] or None, row["url"] or None,
        int(row["passages"]), int(row["added"]),
    )  # fmt: skip


def _hits(found: Any, bm25: bool = False) -> list[dict[str, Any]]:
    hits = []
    for hit in found[0] if found else []:
        row = dict(hit.get("entity", {}))
        distance = float(hit["distance"])
        row["id"] = str(hit["id"])
        row["score"] = abs(distance) if bm25 else distance  # milvus-lite reports BM25 scores negated
        hits.append(row)
    return hits


def _chunks(values: Sequence[str], size: int = BATCH) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
