"""The articles and their annotations in a version, in segments: a write costs the articles it changes.

A segment holds the articles (and their annotations) written together. A version's ``articles/``
folder lists its segments in ``segments.json``; segment ``NAME`` is ``NAME.jsonl`` (one article a
line, as ``Article.to_dict``), ``NAME.notes.jsonl`` (their annotations) and ``NAME.ids.json`` (the doc
id and content hash of each line). A segment never changes: a new version links the segments of the
previous one and writes one new segment of the articles added or replaced since. The manifest's
``articles`` (doc id → content hash) says which line of which segment is live: a removed or replaced
article's old line stays in its segment until the segment is rewritten with its live lines only, when
fewer than half of its lines are live or when ``MERGE_FACTOR`` segments reach the same size class.

Versions written before segments hold ``articles.jsonl`` and ``annotations.jsonl``: they are read as
they are, and their first new version writes every article as one segment.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from qa.index.bm25 import merge_due
from qa.index.durability import link_or_copy
from qa.types import Article, ArticleNotes

FOLDER = "articles"
LISTING = "segments.json"
ARTICLES = "articles.jsonl"  # the layout before segments
ANNOTATIONS = "annotations.jsonl"


@dataclass(frozen=True)
class ArticleSegment:
    """A segment's name and what each of its lines holds: doc id → content hash."""

    name: str
    held: Mapping[str, str]


def write(
    folder: Path,
    articles: Mapping[str, Article],
    notes: Mapping[str, ArticleNotes],
    hashes: Mapping[str, str],
    segments: Sequence[ArticleSegment],
    previous: Path | None,
) -> list[ArticleSegment]:
    """Write the articles of a new version into ``folder``: the ``segments`` of ``previous`` (a version
    folder) that still hold live lines are linked, the articles no linked segment holds are written as
    one new segment. ``hashes``: the live articles' content hashes. Returns the version's segments."""
    target = folder / FOLDER
    target.mkdir(parents=True, exist_ok=True)
    source = previous / FOLDER if previous is not None else None
    kept: list[tuple[ArticleSegment, set[str]]] = []
    covered: set[str] = set()
    for segment in segments:
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
        out.append(_write_segment(target, [articles[d] for d in fresh], notes, hashes))
    (target / LISTING).write_text(json.dumps({"segments": [s.name for s in out]}), encoding="utf-8")
    return out


def read(
    folder: Path, hashes: Mapping[str, str]
) -> tuple[dict[str, Article], MutableMapping[str, ArticleNotes], list[ArticleSegment]]:
    """The live articles of a version folder (by ``hashes``, doc id → content hash), their annotations and
    the version's segments (``ValueError`` when an article of ``hashes`` is not stored)."""
    if not (folder / FOLDER / LISTING).is_file():
        return (*_read_single(folder), [])
    listing = json.loads((folder / FOLDER / LISTING).read_text(encoding="utf-8"))
    found: dict[str, tuple[Article, bytes]] = {}
    segments = []
    for name in listing["segments"]:
        ids = json.loads((folder / FOLDER / f"{name}.ids.json").read_text(encoding="utf-8"))
        held = dict(zip(ids["doc_ids"], ids["hashes"], strict=True))
        segments.append(ArticleSegment(name, held))
        wanted = [hashes.get(d) == h and d not in found for d, h in held.items()]
        if not any(wanted):
            continue
        texts, annotations, _ = (folder / FOLDER / n for n in _files(name))
        with open(texts, "rb") as lines, open(annotations, "rb") as notes_lines:
            for keep, line, note in zip(wanted, lines, notes_lines, strict=True):
                if keep:
                    article = Article(**orjson.loads(line))
                    found[article.doc_id] = (article, note)
    missing = [d for d in hashes if d not in found]
    if missing:
        raise ValueError(f"{len(missing)} article(s) of the manifest are not stored, e.g. {missing[0]!r}")
    order = list(hashes)  # indexing order, as the manifest keeps it
    return {d: found[d][0] for d in order}, LazyNotes({d: found[d][1] for d in order}), segments


class LazyNotes(MutableMapping[str, ArticleNotes]):
    """Annotations by doc id, kept as their JSON lines and parsed when first asked for (the most recently
    used ``keep_parsed`` stay parsed). Parsing every annotation was three quarters of loading an index; a
    question reads those of the few articles its passages come from. Annotations set here stay parsed."""

    def __init__(self, raw: dict[str, bytes], keep_parsed: int = 4096) -> None:
        self._raw = raw
        self._set: dict[str, ArticleNotes] = {}
        self._parsed: OrderedDict[str, ArticleNotes] = OrderedDict()
        self._keep = keep_parsed
        self._lock = threading.Lock()

    def __getitem__(self, doc_id: str) -> ArticleNotes:
        if doc_id in self._set:
            return self._set[doc_id]
        with self._lock:
            if doc_id in self._parsed:
                self._parsed.move_to_end(doc_id)
                return self._parsed[doc_id]
        notes = ArticleNotes.from_json(orjson.loads(self._raw[doc_id]))
        if notes.doc_id != doc_id:
            raise ValueError(f"the annotation stored for {doc_id!r} is of {notes.doc_id!r}")
        with self._lock:
            self._parsed[doc_id] = notes
            while len(self._parsed) > self._keep:
                self._parsed.popitem(last=False)
        return notes

    def __setitem__(self, doc_id: str, notes: ArticleNotes) -> None:
        with self._lock:
            self._raw.pop(doc_id, None)
            self._parsed.pop(doc_id, None)
            self._set[doc_id] = notes

    def __delitem__(self, doc_id: str) -> None:
        with self._lock:
            found = self._set.pop(doc_id, None) is not None
            found = self._raw.pop(doc_id, None) is not None or found
            self._parsed.pop(doc_id, None)
        if not found:
            raise KeyError(doc_id)

    def line(self, doc_id: str) -> bytes:
        """The annotation of ``doc_id`` as a JSON line, as stored (no parsing when it was not asked for)."""
        raw = self._raw.get(doc_id)
        return raw.rstrip(b"\n") + b"\n" if raw is not None else orjson.dumps(self[doc_id].to_json()) + b"\n"

    def __iter__(self) -> Iterator[str]:
        return iter([*self._raw, *self._set])

    def __len__(self) -> int:
        return len(self._raw) + len(self._set)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._set or doc_id in self._raw


def _files(name: str) -> tuple[str, str, str]:
    return f"{name}.jsonl", f"{name}.notes.jsonl", f"{name}.ids.json"


def _write_segment(
    target: Path, articles: Sequence[Article], notes: Mapping[str, ArticleNotes], hashes: Mapping[str, str]
) -> ArticleSegment:
    name = f"a{uuid.uuid4().hex[:12]}"
    texts, annotations, ids = _files(name)
    with open(target / texts, "w", encoding="utf-8") as fh:
        for article in articles:
            fh.write(json.dumps(article.to_dict(), ensure_ascii=False) + "\n")
    with open(target / annotations, "wb") as fh:
        for article in articles:
            d = article.doc_id
            fh.write(notes.line(d) if isinstance(notes, LazyNotes) else orjson.dumps(notes[d].to_json()) + b"\n")
    held = {a.doc_id: hashes[a.doc_id] for a in articles}
    (target / ids).write_text(json.dumps({"doc_ids": list(held), "hashes": list(held.values())}), encoding="utf-8")
    return ArticleSegment(name, held)


def _read_single(folder: Path) -> tuple[dict[str, Article], dict[str, ArticleNotes]]:
    """The articles and annotations of a version written before segments."""
    articles: dict[str, Article] = {}
    with open(folder / ARTICLES, "rb") as fh:
        for line in fh:
            article = Article(**orjson.loads(line))
            articles[article.doc_id] = article
    notes: dict[str, ArticleNotes] = {}
    with open(folder / ANNOTATIONS, "rb") as fh:
        for line in fh:
            annotation = ArticleNotes.from_json(orjson.loads(line))
            notes[annotation.doc_id] = annotation
    if set(notes) != set(articles):
        raise ValueError(f"{ANNOTATIONS} does not annotate exactly the articles of {ARTICLES}")
    return articles, notes
