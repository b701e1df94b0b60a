"""The articles, their annotations and their passages in a version, in segments: a write costs the
articles it changes, and loading reads where each article's records are, not the records.

A segment holds the articles written together. A version's ``articles/`` folder lists its segments
in ``segments.json``; segment ``NAME`` is ``NAME.jsonl`` (one article a line, as ``Article.to_dict``),
``NAME.notes.jsonl`` (their annotations), ``NAME.passages.jsonl`` (their passages' spans,
``qa.index.passage_table``) and ``NAME.ids.json`` (for each line: the doc id, the content hash, the
title, date and source, the first vector id and passage count, and the byte offsets and CRC-32 of the
line in each file). A heading is ``[title, date, source, url]``; segments written before headings kept the
url have ``[title, date, source]`` and read as url None. A segment never
changes: a new version links the segments of the previous one and writes one new segment of the
articles added or replaced since. The manifest's ``articles`` (doc id → content hash) says which line
of which segment is live: a removed or replaced article's old line stays in its segment until the
segment is rewritten with its live lines only, when fewer than half of its lines are live or when
``MERGE_FACTOR`` segments reach the same size class.

Articles, annotations and passage spans are read when a question needs them (``qa.index.records``),
each checked against its CRC-32 then: loading does not read the record files (``read_on_demand``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from qa.index.bm25 import merge_due
from qa.index.durability import link_or_copy
from qa.index.passage_table import PassageTable, Span
from qa.index.records import LazyRecords, RecordFile
from qa.types import Article, ArticleNotes, Listed

FOLDER = "articles"
LISTING = "segments.json"
ARTICLES = "articles.jsonl"  # the layout before segments
ANNOTATIONS = "annotations.jsonl"  # (both read by qa migrate only)


KINDS = ("articles", "notes", "passages")  # a segment's record files, in the order of ``_files``


@dataclass(frozen=True)
class ArticleSegment:
    """A segment's name and what each of its lines holds: doc id → content hash. A segment written by
    this process also carries its files, opened, and each line's byte offsets in them."""

    name: str
    held: Mapping[str, str]
    opened: Mapping[str, RecordFile] = field(default_factory=dict, compare=False)


Heading = tuple[str, "str | None", "str | None", "str | None"]  # an article's title, date, source and url


@dataclass
class Stored:
    """A version's live articles and their headings (in indexing order), annotations and passages."""

    articles: LazyRecords[Article]
    headings: dict[str, Heading]
    notes: LazyRecords[ArticleNotes]
    passages: PassageTable
    segments: list[ArticleSegment]

    @classmethod
    def empty(cls) -> Stored:
        spans: LazyRecords[list[Span]] = LazyRecords(orjson.loads, orjson.dumps)
        return cls(new_articles(), {}, new_notes(), PassageTable(spans, {}), [])

    def put(self, article: Article, notes: ArticleNotes, spans: list[Span]) -> int:
        """Hold a new article, its annotation and passages; returns its first vector id."""
        self.articles[article.doc_id] = article
        self.headings[article.doc_id] = heading(article)
        self.notes[article.doc_id] = notes
        return self.passages.add(article.doc_id, spans)

    def records(self) -> tuple[tuple[LazyRecords[Any], str], ...]:
        """Each kind of record kept in a segment's files, with its name (``KINDS``)."""
        return tuple(zip((self.articles, self.notes, self.passages.spans), KINDS, strict=True))

    def listing(self) -> list[Listed]:
        """Every live article's heading and passage count, in indexing order (no record is read)."""
        count = self.passages.count
        return [(d, *heading, count(d)) for d, heading in self.headings.items()]

    def drop(self, doc_id: str) -> None:
        for records in (self.articles, self.headings, self.notes):
            records.pop(doc_id, None)
        self.passages.remove(doc_id)


def heading(article: Article) -> Heading:
    return (article.title, article.date, article.source, article.url)


def _stored_heading(stored: list[Any]) -> Heading:
    """A heading as a segment holds it: written before headings kept the url, it has none (3 elements)."""
    return (*stored, None) if len(stored) == 3 else tuple(stored)  # type: ignore[return-value]


def new_articles() -> LazyRecords[Article]:
    """An empty article store (records as ``Article.to_dict`` lines; the last 1,024 read stay parsed)."""
    return LazyRecords(lambda line: Article(**orjson.loads(line)), lambda a: orjson.dumps(a.to_dict()), 1024)


def read_on_demand(rel: str) -> bool:
    """True for a version's files (path relative to it) that are read a record at a time, never whole."""
    return rel.startswith(f"{FOLDER}/") and rel.endswith(".jsonl")


def new_notes() -> LazyRecords[ArticleNotes]:
    """An empty annotation store (records as ``ArticleNotes.to_json`` lines)."""
    return LazyRecords(_parse_notes, lambda n: orjson.dumps(n.to_json()))


def write(folder: Path, stored: Stored, hashes: Mapping[str, str], previous: Path | None) -> list[ArticleSegment]:
    """Write the articles of a new version into ``folder``: the segments of ``previous`` (a version
    folder) that still hold live lines are linked, the articles no linked segment holds are written as
    one new segment. ``hashes``: the live articles' content hashes. Returns the version's segments."""
    target = folder / FOLDER
    target.mkdir(parents=True, exist_ok=True)
    source = previous / FOLDER if previous is not None else None
    kept: list[tuple[ArticleSegment, set[str]]] = []
    covered: set[str] = set()
    for segment in stored.segments:
        live = {d for d, h in segment.held.items() if hashes.get(d) == h and d not in covered}
        linkable = source is not None and all((source / n).is_file() for n in _files(segment.name))
        if live and linkable and len(live) * 2 >= len(segment.held):
            kept.append((segment, live))
            covered |= live
    while (places := merge_due([len(s.held) for s, _ in kept])) is not None:  # rewritten with the new lines
        merging = {kept[i][0].name for i in places}
        for segment, live in kept:
            if segment.name in merging:
                covered -= live
        kept = [(s, live) for s, live in kept if s.name not in merging]
    out = []
    for segment, _ in kept:
        assert source is not None
        for name in _files(segment.name):
            link_or_copy(source / name, target / name)
        out.append(segment)
    fresh = [d for d in hashes if d not in covered]
    if fresh:
        out.append(_write_segment(target, fresh, stored, hashes))
    (target / LISTING).write_text(json.dumps({"segments": [s.name for s in out]}), encoding="utf-8")
    return out


def locate(segment: ArticleSegment, stored: Stored) -> ArticleSegment:
    """Read the records of a segment this process wrote from its files from now on (they were in memory);
    returns the segment without its open files (its records hold them)."""
    if not segment.opened:
        return segment
    live = [(i, d) for i, d in enumerate(segment.held) if d in stored.headings]
    for records, kind in stored.records():
        records.locate((d for _, d in live), segment.opened[kind], (i for i, _ in live))
    return ArticleSegment(segment.name, segment.held)


def read(folder: Path, hashes: Mapping[str, str]) -> Stored:
    """The live articles of a version folder (by ``hashes``, doc id → content hash), with their annotations
    and passages to read on demand (``ValueError`` when an article of ``hashes`` is not stored)."""
    with _collector_paused():
        return _read(folder, hashes)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off meanwhile. Reading where 50,000 articles are makes hundreds of
    thousands of small lists and tuples and no cycle, and each collection those allocations set off scans the
    whole heap: 60% of the time of ``read`` at 50,000 articles (0.32 s against 0.13 s)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(folder: Path, hashes: Mapping[str, str]) -> Stored:
    listing = json.loads((folder / FOLDER / LISTING).read_text(encoding="utf-8"))
    found: dict[str, Heading] = {}
    stored = Stored.empty()
    vectors: dict[str, tuple[int, int]] = {}
    segments = []
    for name in listing["segments"]:
        ids = orjson.loads((folder / FOLDER / f"{name}.ids.json").read_bytes())
        held = dict(zip(ids["doc_ids"], ids["hashes"], strict=True))
        segments.append(ArticleSegment(name, held))
        wanted = [i for i, (d, h) in enumerate(held.items()) if hashes.get(d) == h and d not in found]
        if not wanted:
            continue
        doc_ids = [ids["doc_ids"][i] for i in wanted]
        for (records, kind), file in zip(stored.records(), _files(name)[:3], strict=True):
            records.locate(doc_ids, RecordFile(folder / FOLDER / file, ids["offsets"][kind], ids["crc"][kind]), wanted)
        found.update(zip(doc_ids, (_stored_heading(ids["headings"][i]) for i in wanted), strict=True))
        vectors.update(zip(doc_ids, (tuple(ids["vectors"][i]) for i in wanted), strict=True))
    missing = [d for d in hashes if d not in found]
    if missing:
        raise ValueError(f"{len(missing)} article(s) of the manifest are not stored, e.g. {missing[0]!r}")
    order = list(hashes)  # indexing order, as the manifest keeps it
    stored.headings = {d: found[d] for d in order}
    stored.passages = PassageTable(stored.passages.spans, {d: vectors[d] for d in order})
    stored.segments = segments
    return stored


def _parse_notes(line: bytes) -> ArticleNotes:
    return ArticleNotes.from_json(orjson.loads(line))


def _files(name: str) -> tuple[str, str, str, str]:
    return f"{name}.jsonl", f"{name}.notes.jsonl", f"{name}.passages.jsonl", f"{name}.ids.json"


def _write_segment(target: Path, doc_ids: Sequence[str], stored: Stored, hashes: Mapping[str, str]) -> ArticleSegment:
    name = f"a{uuid.uuid4().hex[:12]}"
    lines = {
        "articles": (stored.articles.line(d) for d in doc_ids),
        "notes": (stored.notes.line(d) for d in doc_ids),
        "passages": (stored.passages.spans.line(d) for d in doc_ids),
    }
    offsets: dict[str, list[int]] = {}
    crcs: dict[str, list[int]] = {}
    for kind, file in zip(KINDS, _files(name), strict=False):
        at, crc = [0], []
        with open(target / file, "wb") as fh:
            for line in lines[kind]:
                fh.write(line)
                at.append(at[-1] + len(line))
                crc.append(zlib.crc32(line))
        offsets[kind], crcs[kind] = at, crc
    held = {d: hashes[d] for d in doc_ids}
    record = {
        "doc_ids": list(held),
        "hashes": list(held.values()),
        "vectors": [list(stored.passages.vectors(d)) for d in doc_ids],
        "headings": [list(stored.headings[d]) for d in doc_ids],
        "offsets": offsets,
        "crc": crcs,
    }
    (target / _files(name)[3]).write_bytes(orjson.dumps(record))
    files = zip(KINDS, _files(name), strict=False)
    opened = {kind: RecordFile(target / file, offsets[kind], crcs[kind]) for kind, file in files}
    return ArticleSegment(name, held, opened)
