"""The lexical half of the index: BM25 over passages, kept in segments so that a write costs what it changes.

Words are bm25s's tokens (English stemming, its stopwords), scored as bm25s's Lucene variant does
(k1 1.5, b 0.75; idf ln(1 + (N - df + 0.5) / (df + 0.5))), but from statistics summed over every
segment at query time, as Lucene does: a passage scores the same whichever segment holds it, and the
same as one bm25s index over all of them.

A segment is immutable: the term-by-passage frequencies of the passages indexed together (one write).
Adding passages adds a segment; removing one marks it deleted (its segment's statistics still count,
as in Lucene, until a merge rewrites the segment without it). When ``MERGE_FACTOR`` segments reach
the same size class (powers of ``MERGE_FACTOR`` passages), they are merged into one, so a passage is
rewritten a logarithmic number of times over the life of the library.

On disk (a folder): ``segments.json`` names the segments, their sizes and the deleted passage ids; a
segment's files (``qa.index.bm25_files``) are read when a search first needs them, so loading the index
and adding to it read no postings. Saving into a new folder links the files of the segments that the
previous folder holds instead of writing them again.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from qa.index import bm25_files
from qa.index.durability import link_or_copy

log = logging.getLogger(__name__)

SEGMENTS = "segments.json"
K1, B = 1.5, 0.75
MERGE_FACTOR = 8


def _stemmer():  # noqa: ANN202 - PyStemmer has no type hints
    """The stemmer of ``tokens``, made with an index. bm25s, which ``tokens`` uses, is imported with it (50 ms):
    an index is loaded before its first search or add, as ``qa index`` loads one while spaCy loads beside it."""
    import bm25s  # noqa: F401
    import Stemmer

    return Stemmer.Stemmer("english")


def tokens(texts: Sequence[str], stemmer: object) -> list[list[str]]:
    """Each text's BM25 tokens (lower case, stopwords out, stemmed)."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)


@dataclass(frozen=True, eq=False)
class Segment:
    """The passages indexed together: term ``t``'s postings are ``docs[indptr[t]:indptr[t+1]]`` (rows of
    ``ids``) with their frequencies ``tfs``; ``lengths`` are the passages' token counts. They are in memory
    for a segment made by this process, else read from its files when first needed (``qa.index.bm25_files``);
    ``stored_size`` is its passage count, as its index's listing records it."""

    name: str
    source: bm25_files.Source
    stored_size: int | None = None

    @classmethod
    def of(cls, ids: Sequence[str], docs_tokens: Sequence[Sequence[str]]) -> Segment:
        """A segment of passages ``ids`` with their tokens."""
        terms: dict[str, int] = {}
        rows, cols, counts = [], [], []
        for doc, words in enumerate(docs_tokens):
            freq: dict[int, int] = {}
            for w in words:
                t = terms.setdefault(w, len(terms))
                freq[t] = freq.get(t, 0) + 1
            rows.extend(freq)
            cols.extend([doc] * len(freq))
            counts.extend(freq.values())
        lengths = np.array([len(w) for w in docs_tokens], dtype=np.float32)
        return cls._sorted(list(ids), terms, np.array(rows, np.int64), np.array(cols, np.int64), counts, lengths)

    @classmethod
    def _sorted(
        cls,
        ids: list[str],
        terms: dict[str, int],
        rows: np.ndarray,
        cols: np.ndarray,
        counts: Sequence[float] | np.ndarray,
        lengths: np.ndarray,
    ) -> Segment:
        order = np.lexsort((cols, rows))
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(terms)), out=indptr[1:])
        tfs = np.asarray(counts, dtype=np.float32)[order]
        name = f"s{uuid.uuid4().hex[:12]}"
        contents = bm25_files.Contents(tuple(ids), terms, indptr, lengths)
        return cls(name, bm25_files.InMemory(contents, cols[order].astype(np.int32), tfs), len(ids))

    @property
    def ids(self) -> tuple[str, ...]:
        return self.source.contents().ids

    @property
    def terms(self) -> dict[str, int]:
        return self.source.contents().terms

    @property
    def indptr(self) -> np.ndarray:
        return self.source.contents().indptr

    @property
    def lengths(self) -> np.ndarray:
        return self.source.contents().lengths

    @property
    def size(self) -> int:
        """How many passages the segment holds (its files are not read when its listing says)."""
        return self.source.size() if self.stored_size is None else self.stored_size

    def all_postings(self) -> tuple[np.ndarray, np.ndarray]:
        """Every posting's row and frequency (all of them read)."""
        return self.source.postings(0, int(self.indptr[-1]))

    @cached_property
    def row(self) -> dict[str, int]:
        """Each passage id's row."""
        return {pid: i for i, pid in enumerate(self.ids)}

    @cached_property
    def article_rows(self) -> dict[str, slice | list[int]]:
        """Each article's rows (its passages' ids are ``<doc_id>::<position>``): a slice, as an article's
        passages are added together, else the list of them."""
        rows: dict[str, list[int]] = {}
        for i, pid in enumerate(self.ids):
            rows.setdefault(pid.rpartition("::")[0], []).append(i)
        return {d: slice(r[0], r[-1] + 1) if r[-1] - r[0] == len(r) - 1 else r for d, r in rows.items()}

    def df(self, term: str) -> int:
        t = self.terms.get(term)
        return 0 if t is None else int(self.indptr[t + 1] - self.indptr[t])

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        t = self.terms.get(term)
        if t is None:
            return None
        return self.source.postings(int(self.indptr[t]), int(self.indptr[t + 1]))

    # ---- files -------------------------------------------------------------------------------------
    @property
    def files(self) -> tuple[str, ...]:
        """The names of this segment's files (those it was read from, else those it is written to)."""
        return self.source.files or bm25_files.file_names(self.name)

    def save(self, folder: Path, previous: Path | None = None) -> None:
        """Write this segment's files into ``folder``, or link them from ``previous`` (a folder this
        index was saved to before) when they are there: a segment's name is unique and it never changes."""
        if previous is not None and all((previous / n).is_file() for n in self.files):
            for n in self.files:
                link_or_copy(previous / n, folder / n)
            return
        bm25_files.write(folder, self.name, self.source.contents(), *self.all_postings())


def merged(segments: Sequence[Segment], deleted: Collection[str]) -> Segment:
    """One segment holding the passages of ``segments`` that are not ``deleted``."""
    terms: dict[str, int] = {}
    ids: list[str] = []
    rows, cols, counts, lengths = [], [], [], []
    for seg in segments:
        docs, tfs = seg.all_postings()
        keep = np.array([i not in deleted for i in seg.ids], dtype=bool)
        new_row = np.cumsum(keep) - 1 + len(ids)
        ids.extend(i for i, k in zip(seg.ids, keep, strict=True) if k)
        lengths.append(seg.lengths[keep])
        term_map = np.array([terms.setdefault(t, len(terms)) for t in sorted(seg.terms, key=seg.terms.__getitem__)])
        term_of = np.repeat(np.arange(len(seg.terms)), np.diff(seg.indptr))
        live = keep[docs]
        rows.append(term_map[term_of[live]] if len(term_map) else np.zeros(0, np.int64))
        cols.append(new_row[docs[live]])
        counts.append(tfs[live])
    cat = lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)  # noqa: E731
    return Segment._sorted(
        ids, terms, cat(rows, np.int64), cat(cols, np.int64), cat(counts, np.float32), cat(lengths, np.float32)
    )


class BM25Index:
    """BM25 scores of passages for a query, optionally restricted to some passages (immutable: a change
    returns a new index sharing the unchanged segments)."""

    def __init__(self, segments: Sequence[Segment] = (), deleted: Collection[str] = ()) -> None:
        self.segments = tuple(segments)
        self.deleted = frozenset(deleted)
        self._stemmer = _stemmer()
        self._documents = sum(s.size for s in self.segments)

    @cached_property
    def _average(self) -> float:
        """The mean passage length (a search reads every segment's lengths; adding to the index does not)."""
        total = float(sum(float(s.lengths.sum()) for s in self.segments))
        return total / self._documents if self._documents else 1.0

    @cached_property
    def _dead(self) -> list[list[int]]:
        """Each segment's deleted rows, found once rather than on every search."""
        return [[s.row[p] for p in self.deleted if p in s.row] if self.deleted else [] for s in self.segments]

    @classmethod
    def build(cls, texts: Sequence[str], ids: Sequence[str]) -> BM25Index:
        """Index ``texts`` (one per passage id)."""
        return cls().added(texts, ids)

    @property
    def ids(self) -> list[str]:
        """The passage ids indexed (not deleted)."""
        return [i for s in self.segments for i in s.ids if i not in self.deleted]

    def added(self, texts: Sequence[str], ids: Sequence[str]) -> BM25Index:
        """This index with passages ``ids`` added (their ``texts``), segments merged where due."""
        if not texts:
            return self
        segments = [*self.segments, Segment.of(ids, tokens(texts, self._stemmer))]
        deleted = set(self.deleted)
        while (places := merge_due([s.size for s in segments])) is not None:
            due = [segments[i] for i in places]
            merged_segment = merged(due, deleted)
            gone = {i for s in due for i in s.ids}
            deleted -= gone
            segments = [s for s in segments if s not in due] + [merged_segment]
        return BM25Index(segments, deleted)

    def without(self, ids: Collection[str]) -> BM25Index:
        """This index with passages ``ids`` deleted; a segment that is half deleted is rewritten."""
        if not ids:
            return self
        deleted = set(self.deleted) | set(ids)
        segments = []
        for seg in self.segments:
            gone = sum(i in deleted for i in seg.ids)
            if gone and gone * 2 >= len(seg.ids):
                deleted -= set(seg.ids)
                if gone < len(seg.ids):
                    segments.append(merged([seg], set(ids) | self.deleted))
            else:
                segments.append(seg)
        return BM25Index(segments, deleted & {i for s in segments for i in s.ids})

    def save(self, folder: Path, previous: Path | None = None) -> None:
        """Write the index into ``folder``; the segments already in ``previous`` (the folder it was saved
        to or read from before) are linked from there, not written again."""
        folder.mkdir(parents=True, exist_ok=True)
        for segment in self.segments:
            segment.save(folder, previous)
        listing = {
            "segments": [s.name for s in self.segments],
            "sizes": [s.size for s in self.segments],
            "deleted": sorted(self.deleted),
        }
        (folder / SEGMENTS).write_text(json.dumps(listing), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, checksums: Mapping[str, str] | None = None) -> BM25Index:
        """Open an index written by ``save``: its segments are read when a search first needs them, each file
        checked then against its SHA-256 in ``checksums`` (by file name; None: not checked)."""
        listing = json.loads((folder / SEGMENTS).read_text(encoding="utf-8"))
        names = listing["segments"]
        sizes = listing.get("sizes", [None] * len(names))  # not listed before the segments were read on demand
        if len(sizes) != len(names):
            raise ValueError(f"{SEGMENTS} lists {len(names)} segments and {len(sizes)} sizes")
        opened = [bm25_files.open_segment(folder, n, checksums) for n in names]
        return cls([Segment(n, o, z) for n, o, z in zip(names, opened, sizes, strict=True)], listing["deleted"])

    def search(self, query: str, top_k: int, only: Collection[str] | None = None) -> list[tuple[str, float]]:
        """Return up to ``top_k`` (passage id, score) pairs with a positive score, best first;
        ``only`` (article ids: passage ids are ``<doc_id>::<position>``) restricts the search to their passages."""
        if not self.segments or top_k <= 0 or (only is not None and not only):
            return []
        words = tokens([query], self._stemmer)[0]
        idf = {w: _idf(sum(s.df(w) for s in self.segments), self._documents) for w in set(words)}
        found: list[tuple[float, int, int, str]] = []
        for place, (seg, dead) in enumerate(zip(self.segments, self._dead, strict=True)):
            scores = np.zeros(len(seg.ids), dtype=np.float32)
            norm = K1 * ((1 - B) + B * seg.lengths / self._average)
            for w in words:  # a repeated word counts again, as in bm25s
                hit = seg.postings(w)
                if hit is not None:
                    docs, tfs = hit
                    scores[docs] += idf[w] * tfs / (norm[docs] + tfs)
            if only is not None:
                allowed = np.zeros(len(seg.ids), dtype=bool)
                rows_of = seg.article_rows
                for doc_id in only:
                    if (held := rows_of.get(doc_id)) is not None:
                        allowed[held] = True
                scores[~allowed] = 0.0
            scores[dead] = 0.0
            rows = np.flatnonzero(scores > 0)
            if len(rows) > top_k:
                rows = rows[np.argpartition(-scores[rows], top_k - 1)[:top_k]]
            found.extend((-float(scores[r]), place, int(r), seg.ids[r]) for r in rows)
        found.sort()
        return [(pid, -score) for score, _, _, pid in found[:top_k]]


def _idf(df: int, documents: int) -> float:
    return math.log(1 + (documents - df + 0.5) / (df + 0.5))


def merge_due(sizes: Sequence[int]) -> list[int] | None:
    """The places of ``MERGE_FACTOR`` segments (of these ``sizes``) of the same size class (powers of
    ``MERGE_FACTOR``), the smallest class first; None when no class has that many."""
    classes: dict[int, list[int]] = {}
    for place, size in enumerate(sizes):
        classes.setdefault(int(math.log(max(1, size), MERGE_FACTOR)), []).append(place)
    for _, members in sorted(classes.items()):
        if len(members) >= MERGE_FACTOR:
            return members[:MERGE_FACTOR]
    return None
