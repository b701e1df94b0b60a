"""Linguistic annotation of articles, run once at index time: sentences, named entities, and who said what.

What runs on which text (one spaCy pipeline, ``qa.models.load_spacy``; no component is switched on or off
in it, each is called directly, so the same pipeline keeps serving questions from other threads):

* Lines: a line break always ends a sentence, so every line (paragraph) of ``Article.text`` is a Doc.
* Sentences, on every line: the pipeline's ``senter`` (a small statistical sentence recogniser, disabled in
  the stock pipeline and run here on its own), then fix-up rules (``_JOIN_RULES``) that remove a boundary
  where a news sentence never ends: between a quotation and its attribution (“…?” she asked), after a title
  or an abbreviation (Sen., No. 1), after a list number, before a lowercase word, or where no
  sentence-final punctuation precedes. The same splitting serves ``Annotator.sentences`` for any text.
* Entities, on every line: the ``ner`` component (it has its own token-to-vector layer and needs nothing
  else). The fix-ups run before it, and it never lets an entity cross a sentence boundary.
* Speakers: the dependency parser (after the shared ``tok2vec``, the ``tagger`` and the ``attribute_ruler``)
  runs only on the sentences with a reporting verb form or "according to" outside quotation marks, each
  parsed as one sentence; ``qa.ingest.speakers`` finds the mention of the speaker in that parse and resolves
  it, and gives quoted sentences without an attribution of their own the speaker of their quotation.

Offsets are character offsets into ``Article.text``; sentences are whitespace-trimmed and cover every
non-space character exactly once.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from qa.ingest.mentions import may_report_speech
from qa.ingest.speakers import find_speakers
from qa.types import Article, ArticleNotes, Entity, SentenceNotes

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

log = logging.getLogger(__name__)

Span = tuple[int, int]

_LINE = re.compile(r"[^\n]+")
# Components run on every line, and on the sentences that may report speech.
_SPLIT = ("senter",)
_ENTITIES = ("ner",)
_PARSE = ("tok2vec", "tagger", "parser")  # then the coarse tags (``_CoarseTags``, in place of attribute_ruler)
BATCH_SIZE = 64  # lines per nlp batch: measured faster than spaCy's 1000 on this model
ARTICLES_PER_ROUND = 32  # articles whose lines go through the pipeline together

# ---- sentence boundary fix-ups -------------------------------------------------------------
_CLOSE_QUOTES = "”\"’'"
_FINAL = re.compile(r"[.?!…][”\"’')\]]*$")
_QUOTE_THEN_ATTRIBUTION = tuple(c + q for c in ",?!…—–-" for q in _CLOSE_QUOTES)
_REPORTING = (
    r"(?:said|says|say|told|tells|added|adds|asked|asks|wrote|writes|explained|noted|continued|recalled|"
    r"stated|tweeted|posted|warned|argued|insisted|replied|responded|acknowledged|admitted|agreed|"
    r"chimes in|laughed|joked|concluded|declared|announced|according)"
)
_ATTRIBUTION = re.compile(r"^(?:(?:[A-Z][\w.’'-]*|[a-z]+)[ ,]+){0,7}?" + _REPORTING + r"\b")
_NOT_A_WORD_START = re.compile(r"[a-z]+[A-Z]|https?:|www\.")  # iPhone, eBay, URLs
_LIST_NUMBER = re.compile(r"\(?\d{1,3}[.)]")
_CLOCK = re.compile(r"\b[ap]\.m\.$")
_TIME_ZONE = re.compile(r"(?:E[SD]?T|C[SD]?T|M[SD]?T|P[SD]?T|GMT|UTC|ET/PT|(?:[A-Z][a-z]+ )?[Tt]ime)\b")
_TITLES = frozenset(
    "Mr Mrs Ms Dr Sen Sens Rep Reps Gov Gen Lt Col Sgt Capt Cmdr Adm Prof Rev St Ft Mt Atty Supt Det Hon Msgr"
    " Insp".split()
)
_MONTHS = frozenset("Jan Feb Mar Apr Aug Sep Sept Oct Nov Dec".split())
_NUMBERED = frozenset("No Nos Vol Art Fig pp p Res".split())
_COUNTRIES = frozenset({"U.S.", "U.K.", "U.N.", "D.C.", "E.U."})
_COUNTRY_NAMED = re.compile(
    r"(?:Sen|Rep|Reps|Sens|Attorney|Secretary|Department|District|Capitol|Senate|House|Embassy|Navy|Army|Air|Marine|"
    r"Coast|Supreme|Court|Government|Postal|Census|Olympic|Open|Chamber|Border|Customs|Forest|Fish|Geological|"
    r"Health|Treasury|Food|Virgin|Federal|Education|Justice|State|Mint|Conference|Catholic|Bishops|Women|Men|"
    r"Soccer)\b"
)


class _Boundary:
    """A proposed sentence boundary inside a line: the sentence before it and the text after it."""

    def __init__(self, before: str, after: str) -> None:
        self.before = before
        self.after = after
        last = re.search(r"(\S+)$", before)
        self.word = last.group(1).rstrip(_CLOSE_QUOTES + ")]") if last else ""  # "Sen.", "U.S.", "2."
        self.first = after.lstrip("“\"‘'([")

    @property
    def lowercase_next(self) -> bool:
        return self.first[:1].islower() and not _NOT_A_WORD_START.match(self.first)


def _quote_and_attribution(b: _Boundary) -> bool:
    return b.before.endswith(_QUOTE_THEN_ATTRIBUTION) and (
        b.lowercase_next
        or b.before.endswith(tuple("," + q for q in _CLOSE_QUOTES))
        or bool(_ATTRIBUTION.match(b.after))
    )


def _abbreviation_before_number(b: _Boundary) -> bool:
    bare = b.word.rstrip(".")
    return (
        b.word.endswith(".")
        and b.first[:1].isdigit()
        and (
            bare in _MONTHS
            or bare in _NUMBERED
            or "." in bare
            or (bare.isalpha() and len(bare) <= 4 and bare[:1].isupper())
        )
    )


def _initial(b: _Boundary) -> bool:
    if re.fullmatch(r"(?:[A-Z]\.){2,}", b.word):
        return b.word not in _COUNTRIES
    return (
        bool(re.fullmatch(r"[A-Z]\.", b.word))
        and b.word[0] not in "IXA"
        and bool(re.search(r"\b[A-Z][a-z]+\s+" + re.escape(b.word) + r"$", b.before))
        and bool(re.match(r"[A-Z][a-z]+\b", b.first))
    )


# Each rule names a place where the sentence does not end; the first that holds removes the boundary.
_JOIN_RULES: dict[str, Callable[[_Boundary], bool]] = {
    "quote+attribution": _quote_and_attribution,
    "lowercase-start": lambda b: b.lowercase_next,
    "list-number": lambda b: bool(_LIST_NUMBER.fullmatch(b.before.strip())),
    "time-zone": lambda b: bool(_CLOCK.search(b.before) and _TIME_ZONE.match(b.first)),
    "no-final-punctuation": lambda b: not _FINAL.search(b.before),
    "title": lambda b: b.word.endswith(".") and b.word.rstrip(".") in _TITLES,
    "abbrev+number": _abbreviation_before_number,
    "initials": _initial,
    "country-abbrev+name": lambda b: b.word in _COUNTRIES and bool(_COUNTRY_NAMED.match(b.first)),
}


def join_reason(before: str, after: str) -> str | None:
    """Why a sentence boundary between ``before`` (the sentence so far) and ``after`` is wrong, or None."""
    boundary = _Boundary(before, after)
    return next((name for name, rule in _JOIN_RULES.items() if rule(boundary)), None)


def _fix_boundaries(doc: Doc) -> Doc:
    """Remove the sentence starts that ``join_reason`` rejects (a Doc holds one line, its starts set)."""
    text, start = doc.text, 0
    proposed = [int(i) for i in _starts(doc) if i > 0]  # only the starts are visited: the cost is per boundary
    k = 0
    while k < len(proposed):
        token = doc[proposed[k]]
        k += 1
        token.is_sent_start = False
        if token.is_space:  # a boundary at a space token: consider the next word instead
            if token.i + 1 < len(doc):
                doc[token.i + 1].is_sent_start = True
                if proposed[k : k + 1] != [token.i + 1]:
                    proposed.insert(k, token.i + 1)
        elif join_reason(text[start : token.idx].rstrip(), text[token.idx :]) is None:
            token.is_sent_start = True
            start = token.idx
    return doc


def _starts(doc: Doc) -> Any:
    """The indices of the tokens of ``doc`` that start a sentence (a NumPy array)."""
    from spacy.attrs import SENT_START

    return np.flatnonzero(doc.to_array([SENT_START]) == 1)


# ---- the pipeline -------------------------------------------------------------------------------
def _lines(text: str, max_length: int) -> list[tuple[int, str]]:
    """The non-blank lines of ``text`` with their offsets, a line longer than ``max_length`` cut at spaces."""
    lines: list[tuple[int, str]] = []
    for match in _LINE.finditer(text):
        line, offset = match.group(), match.start()
        while len(line) > max_length:
            cut = line.rfind(" ", 0, max_length) + 1 or max_length
            lines.append((offset, line[:cut]))
            line, offset = line[cut:], offset + cut
        if line.strip():
            lines.append((offset, line))
    return lines


def _sentence_spans(doc: Doc, offset: int) -> list[Span]:
    """The whitespace-trimmed spans of ``doc``'s sentences, shifted by ``offset``."""
    from spacy.attrs import IDX

    text, idx = doc.text, doc.to_array([IDX])
    bounds = [int(idx[i]) for i in _starts(doc) if i > 0]
    spans: list[Span] = []
    for first, last in zip([0, *bounds], [*bounds, len(text)], strict=True):
        piece = text[first:last]
        left, right = len(piece) - len(piece.lstrip()), len(piece.rstrip())
        if right > left:
            spans.append((offset + first + left, offset + first + right))
    return spans


class _CoarseTags:
    """The pipeline's ``attribute_ruler`` as far as the speaker rules read it, as a table: the coarse tag
    (``pos_``) of each fine tag, or of a fine tag with a given word, the last matching rule winning as in the
    ruler (whose rules on dependencies never matched before the parse, where it ran). A table lookup per token
    instead of the ruler's token matcher: the same tags at a tenth of the cost."""

    def __init__(self, nlp: Language) -> None:
        from spacy.parts_of_speech import IDS

        strings = nlp.vocab.strings
        self.by_tag: dict[int, tuple[int, int]] = {}
        self.by_word: dict[tuple[int, int], tuple[int, int]] = {}
        ruler = nlp.get_pipe("attribute_ruler") if "attribute_ruler" in nlp.pipe_names else None
        for rank, rule in enumerate(ruler.patterns if ruler is not None else ()):
            pos = rule["attrs"].get("POS")
            for pattern in rule["patterns"]:
                if pos is None or len(pattern) != 1 or not {"TAG"} <= set(pattern[0]) <= {"TAG", "LOWER"}:
                    continue
                for tag in _alternatives(pattern[0]["TAG"]):
                    for word in _alternatives(pattern[0].get("LOWER")):
                        key = (strings.add(tag), strings.add(word)) if word is not None else None
                        if key is None:
                            self.by_tag[strings.add(tag)] = (rank, IDS[pos])
                        else:
                            self.by_word[key] = (rank, IDS[pos])

    def __call__(self, doc: Doc) -> Doc:
        """``doc`` with its coarse tags set from its fine tags."""
        from spacy.attrs import LOWER, POS, TAG

        rows = doc.to_array([TAG, LOWER, POS])
        for row in rows:
            found = max(self.by_tag.get(row[0], (-1, 0)), self.by_word.get((row[0], row[1]), (-1, 0)))
            if found[0] >= 0:
                row[2] = found[1]
        doc.from_array([POS], rows[:, 2:3])
        return doc


def _alternatives(value: object) -> list:
    """The values a token pattern's attribute accepts: ``"NN"``, ``{"IN": ["NN", "NNS"]}``, or ``None`` (any)."""
    if isinstance(value, dict):
        return list(value.get("IN", []))
    return [value]


class Annotator:
    """Annotates articles with spaCy: sentences, entities, speakers (see the module docstring)."""

    def __init__(self, nlp: Language) -> None:
        self.nlp = nlp
        missing = [name for name in (*_SPLIT, *_ENTITIES, "tok2vec", "parser") if name not in nlp.component_names]
        if missing:
            raise ValueError(
                f"the spaCy pipeline lacks {', '.join(missing)}: load en_core_web_sm (qa.models.load_spacy)"
            )

    @cached_property
    def _coarse(self) -> _CoarseTags:
        return _CoarseTags(self.nlp)

    def _run(self, names: Iterable[str], docs: Iterable[Doc]) -> Iterator[Doc]:
        """Run the pipeline's components ``names`` (those it has) over ``docs``, lazily, in order."""
        for name in names:
            if name in self.nlp.component_names:
                docs = self.nlp.get_pipe(name).pipe(docs, batch_size=BATCH_SIZE)
        return iter(docs)

    def _split(self, lines: Sequence[tuple[int, str]]) -> Iterator[Doc]:
        """The line Docs with their sentence starts set (senter, then the fix-ups)."""
        docs = self._run(_SPLIT, (self.nlp.make_doc(line) for _, line in lines))
        return (_fix_boundaries(doc) for doc in docs)

    def sentences(self, text: str) -> list[Span]:
        """The sentence spans of ``text``, split exactly as ``annotate`` splits an article's text."""
        lines = _lines(text, self.nlp.max_length)
        docs = zip(lines, self._split(lines), strict=True)
        return [span for (offset, _), doc in docs for span in _sentence_spans(doc, offset)]

    def annotate(self, articles: Sequence[Article], show_progress: bool = False) -> list[ArticleNotes]:
        """Return the notes of each article, in order: its sentences, their entities and speakers."""
        notes: list[ArticleNotes] = []
        # spaCy's matrix products through NumPy's BLAS: two BLAS threads measured no faster than one (the
        # second mostly spins), and one leaves a core to the embedder working beside (qa.index.nodes).
        with (
            threadpool_limits(1, user_api="blas"),
            tqdm(total=len(articles), desc="Annotating", unit="article", disable=not show_progress) as bar,
        ):
            for first in range(0, len(articles), ARTICLES_PER_ROUND):
                group = articles[first : first + ARTICLES_PER_ROUND]
                notes.extend(self._annotate_group(group))
                bar.update(len(group))
        return notes

    def _annotate_group(self, articles: Sequence[Article]) -> list[ArticleNotes]:
        per_article = [_lines(a.text, self.nlp.max_length) for a in articles]
        titles = [(0, a.title) for a in articles if a.title.strip()]
        flat = [line for lines in per_article for line in lines] + titles
        docs = iter(self._run(_ENTITIES, self._split(flat)))
        spans, entities = [], []
        for lines in per_article:
            article_spans: list[Span] = []
            article_entities: list[Entity] = []
            for offset, _ in lines:
                doc = next(docs)
                article_spans += _sentence_spans(doc, offset)
                article_entities += [Entity(offset + e.start_char, offset + e.end_char, e.label_) for e in doc.ents]
            spans.append(article_spans)
            entities.append(article_entities)
        title_docs = {id(a): next(docs) for a in articles if a.title.strip()}
        parses = self._parse_speech(articles, spans, entities)
        out = []
        for i, article in enumerate(articles):
            title_doc = title_docs.get(id(article))
            title_entities = [Entity(e.start_char, e.end_char, e.label_) for e in title_doc.ents] if title_doc else []
            speakers = find_speakers(article, spans[i], entities[i], parses[i], title_entities)
            out.append(ArticleNotes(article.doc_id, _sentence_notes(spans[i], entities[i], speakers)))
        return out

    def _parse_speech(
        self, articles: Sequence[Article], spans: list[list[Span]], entities: list[list[Entity]]
    ) -> list[dict[int, Doc]]:
        """Parse, per article, the sentences that may report speech: {sentence index: Doc of that sentence}."""
        wanted = [
            (i, k, start, end)
            for i, (article, article_spans) in enumerate(zip(articles, spans, strict=True))
            for k, (start, end) in enumerate(article_spans)
            if may_report_speech(article.text[start:end])
        ]
        docs = (self._sentence_doc(articles[i].text, start, end, entities[i]) for i, _, start, end in wanted)
        parses: list[dict[int, Doc]] = [{} for _ in articles]
        for (i, k, _, _), doc in zip(wanted, map(self._coarse, self._run(_PARSE, docs)), strict=True):
            parses[i][k] = doc
        return parses

    def _sentence_doc(self, text: str, start: int, end: int, entities: Sequence[Entity]) -> Doc:
        """One sentence as a Doc to parse as a single sentence, its entities set; ``doc.user_data["offset"]``."""
        from spacy.attrs import SENT_START

        doc = self.nlp.make_doc(text[start:end])
        starts = np.full((len(doc), 1), np.iinfo(np.uint64).max, dtype=np.uint64)  # -1: not a start
        starts[:1] = 1
        doc.from_array([SENT_START], starts)
        first = bisect_left(entities, start, key=lambda e: e.start)  # ``entities`` are in text order
        inside = [e for e in entities[first : bisect_left(entities, end, key=lambda e: e.start)] if e.end <= end]
        spans = [doc.char_span(e.start - start, e.end - start, e.label, alignment_mode="contract") for e in inside]
        doc.ents = [s for s in spans if s is not None]
        doc.user_data["offset"] = start
        return doc


def _sentence_notes(spans: Sequence[Span], entities: Sequence[Entity], speakers: Sequence) -> tuple[SentenceNotes, ...]:
    """Each sentence with the entities that start in it and its speaker."""
    notes, j = [], 0
    ordered = sorted(entities, key=lambda e: e.start)
    for (start, end), speaker in zip(spans, speakers, strict=True):
        while j < len(ordered) and ordered[j].start < start:
            j += 1
        mine = []
        while j < len(ordered) and ordered[j].start < end:
            mine.append(ordered[j])
            j += 1
        notes.append(SentenceNotes(start, end, tuple(mine), speaker))
    return tuple(notes)
