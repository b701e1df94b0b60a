"""What an article shows of the people and organisations it names, for resolving speakers
(``qa.ingest.speakers``): the fullest form of each person's name, who is a person at all (the small model's
entity labels are noisy), he or she where the article shows it, acronyms spelt out, and what lies inside
quotation marks."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence

from qa.ingest.mentions import (
    GENDER,
    KIND_OF_LABEL,
    NOT_PEOPLE,
    PERSON_AFTER,
    TITLE_PATTERN,
    Candidate,
    Span,
    bare_person,
    clean,
    name_words,
    names_a_person,
    quotations,
    unheadlined,
)
from qa.text import FUNCTION_WORDS
from qa.types import Article, Entity

_AFTER_TITLE = re.compile(rf"\b{TITLE_PATTERN}\.?\s+")
_TICKER = re.compile(r"(?<=[a-z])\s+(?![IVX]+$)[A-Z]{1,5}$")


class ArticleNames:
    """The people and organisations one article names, with the sentences that name them."""

    def __init__(self, article: Article, spans: Sequence[Span], entities: Sequence[Entity], title: Sequence[Entity]):
        self.text, self.spans = article.text, spans
        self.quotes = quotations(article.text)
        self._quote_starts = [q[0] for q in self.quotes]
        publisher = _brand(article.source or "")
        found = [
            m
            for e in entities
            if _may_speak(m := self._mention(article.text, e.start, e.end, e.label), article.text, publisher)
        ]
        headline = [self._mention(article.title, e.start, e.end, e.label)[:2] + (None, None) for e in title]
        people = [unheadlined(name) for name, label, _, _ in found + headline if label == "PERSON"]
        self.people = [n for n in people if len(name_words(n)) > 1 and name_words(n)[-1].lower() not in NOT_PEOPLE]
        self.surnames = {name_words(n)[-1] for n in self.people}
        self.titled = _titled(set(people), self.text)
        self._evidence: dict[str, bool] = {}
        self._fuller: dict[str, str] = {}  # _fullest's answers, until a person is learnt
        self.orgs = [name for name, label, _, _ in found if label == "ORG"]
        self._starts = [s for s, _ in spans]
        self.named: list[list[Candidate]] = [[] for _ in spans]  # who each sentence names, outside quotations
        for name, label, start, end in found + self._unlabelled(found):
            kind = "person" if self.person(name, label) else KIND_OF_LABEL.get(label)
            if kind and kind != "person" and label == "PERSON":
                continue  # a one-word "person" that the article does not show to be one
            if kind and not self.quoted(start):
                self.named[bisect_right(self._starts, start) - 1].append(Candidate(name, start, end, kind))
        for named in self.named:
            named.sort(key=lambda c: c.start or 0)
        self.title = [
            Candidate(n, None, None, "person" if self.person(n, label) else KIND_OF_LABEL.get(label, "org"))
            for n, label, *_ in headline
        ]
        self.gender = self._genders()

    @staticmethod
    def _mention(text: str, start: int, end: int, label: str) -> tuple[str, str, int, int]:
        """(name, label, start, end) of an entity: no "the", no 's, and for a person no title before it."""
        raw = text[start:end]
        name = clean(raw)
        name = bare_person(name) if label == "PERSON" else name
        name = _TICKER.sub("", name)  # "Boeing BA said": a company's stock ticker is not part of its name
        start += raw.find(name)
        return name, label, start, start + len(name)

    def _unlabelled(self, found: list[tuple[str, str, int, int]]) -> list[tuple[str, str, int, int]]:
        """Where the text names a known person (by surname) or organisation that the entity recogniser missed."""
        covered = {i for _, _, start, end in found for i in range(start, end)}
        out = []
        for label, names in (("PERSON", self.surnames), ("ORG", {o for o in self.orgs if len(o) > 2})):
            if names:
                alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
                matches = re.finditer(rf"\b(?:{alternatives})\b", self.text)
                out += [(m.group(), label, m.start(), m.end()) for m in matches if m.start() not in covered]
        return out

    def _genders(self) -> dict[str, str]:
        """he/she for the people whose sentence, naming them alone, and the next refer to them by one of the two."""
        votes: dict[str, dict[str, int]] = {}
        for j, named in enumerate(self.named):
            people = [c for c in named if c.kind == "person"]
            if len({c.name for c in people}) != 1 or people[0].end is None:
                continue
            tally = votes.setdefault(self._fullest(people[0].name), {"he": 0, "she": 0})
            end = self.spans[min(j + 1, len(self.spans) - 1)][1]
            for word in re.finditer(r"\b[A-Za-z]+\b", self.text[people[0].end : end]):
                gender = GENDER.get(word.group().lower())
                if gender and not self.quoted(people[0].end + word.start()):
                    tally[gender] += 1
        return {name: max(tally, key=tally.__getitem__) for name, tally in votes.items() if tally["he"] != tally["she"]}

    def quoted(self, position: int) -> bool:
        """True when ``position`` lies inside quotation marks."""
        i = bisect_right(self._quote_starts, position) - 1
        return i >= 0 and position < self.quotes[i][1]

    def person(self, name: str, label: str, titled: bool = False) -> bool:
        """Whether ``name`` (entity ``label``, "" for none) is a person's (see the module docstring)."""
        words = name_words(name)
        if not words or not name[0].isupper() or words[-1].lower() in NOT_PEOPLE:
            return False
        if titled or words[-1] in self.surnames or name in self.titled or (label == "PERSON" and len(words) > 1):
            return True
        if name not in self._evidence:
            found = (PERSON_AFTER.match(self.text[end : end + 60]) for end in _occurrences(name, self.text))
            self._evidence[name] = any(m and (m.group(1) or names_a_person(m.group(2).lower())) for m in found)
        return self._evidence[name]

    def _learn(self, name: str) -> None:
        if len(name_words(name)) > 1 and name not in self.people:
            self.people.append(name)
            self.surnames.add(name_words(name)[-1])
            self._fuller.clear()

    def _fullest(self, name: str) -> str:
        """The longest person name of the article that holds every word of ``name`` and ends like it."""
        if name not in self._fuller:
            words = name_words(name)
            fuller = [p for p in self.people if name_words(p)[-1:] == words[-1:] and set(words) <= set(name_words(p))]
            self._fuller[name] = max(fuller, key=lambda n: len(name_words(n)), default=name)
        return self._fuller[name]

    def _expand(self, name: str) -> str:
        """An organisation's acronym spelt out, when the article spells it out."""
        if name.isupper() and " " not in name:
            spelt = (o for o in self.orgs if " " in o and "".join(w[0] for w in o.split() if w[:1].isupper()) == name)
            return next(spelt, name)
        return name


def _brand(source: str) -> str:
    """The letters of a publisher's name as its source gives it ("cnn.com" -> "cnn"), or ""."""
    return re.sub(r"[^a-z]", "", source.lower().split(".")[0]) if source else ""


def _may_speak(mention: tuple[str, str, int, int], text: str, publisher: str) -> bool:
    """False for the entities that never speak in an article: a photo credit ("Lindsay Isaac/CNN"), a
    capitalised function word taken for a name ("That"), and the publisher itself ("CNN Business" in a CNN
    article: it reports, its sources speak)."""
    name, _, start, end = mention
    if not name or name.lower() in FUNCTION_WORDS or "/" in text[max(0, start - 1) : end + 1]:
        return False
    return not (publisher and re.sub(r"[^a-z]", "", name.lower()).startswith(publisher))


def _occurrences(name: str, text: str) -> Iterator[int]:
    """The end of each whole-word occurrence of ``name`` in ``text`` (``str.find`` first: a regular expression
    scanning the whole text per name cost more than the rest of the speaker rules)."""
    whole = re.compile(rf"\b{re.escape(name)}\b")
    at = text.find(name)
    while at >= 0:
        if whole.match(text, at):
            yield at + len(name)
        at = text.find(name, at + 1)


def _titled(names: set[str], text: str) -> set[str]:
    """The ``names`` that ``text`` gives right after a title ("President Joe Biden", "Sen. Ted Cruz")."""
    after = [m.end() for m in _AFTER_TITLE.finditer(text)]
    return {
        n
        for n in names
        if any(text.startswith(n, i) and not text[i + len(n) : i + len(n) + 1].isalnum() for i in after)
    }
