"""Who said what: the speaker of each sentence of reported speech, resolved to the name the article gives.

A sentence reports speech when a reporting verb (said, told, added, wrote …) outside quotation marks has a
subject the dependency parse finds: its own ("she said", "said the statement"), its clause's ("…, telling the
court"; "who said"), or the object of "according to". That subject is the *mention*, of one of four kinds:

* ``name``: a proper name; a person's fullest name is the longest person name of the article that holds it, an
  acronym is spelt out when the article spells it out;
* ``pronoun``: he/she resolve to the nearest person before (a subject earlier in the sentence, then each earlier
  sentence's speaker and the people it names, first-named first), of the same gender where the article shows
  it; it/they to the nearest organisation;
* ``role``: "the spokesperson", "the company", "the mayor", "the city": the person the article called so
  ("Mayor Chokwe Lumumba", "…, the mayor, …"), the organisation whose name holds the noun, the nearest place,
  else the nearest organisation (unnamed spokespeople speak for it) or person; unnamed plural or indefinite
  sources ("officials said", "a senior official said") get no speaker;
* ``document``: "the statement said": its owner ("Johnson's tweet"), else who issued the last statement
  ("X said in a statement"), else the nearest organisation.

A person who is only in the headline is taken from it (``start``/``end`` None). A sentence mostly inside
quotation marks without an attribution of its own is a ``continuation``: it takes the speaker of the nearest
attributed sentence of the same quotation (which may run over sentences and paragraphs), else that of the
sentence just before the quotation. Entity labels of the small model are noisy, so a name counts as a
person's when the article shows it: a full PERSON name, a surname of one, a title before it ("President
Biden"), or "Name, 86," / "Name, who" / "Name, the meteorologist" after it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import chain
from typing import TYPE_CHECKING

from qa.types import Article, Entity, Speaker

if TYPE_CHECKING:
    from spacy.tokens import Doc, Token
from qa.ingest.mentions import (
    ABBREVIATED,
    ARTICLE,
    DOCUMENTS,
    KIND_OF_LABEL,
    NAME_LABELS,
    NEARBY,
    ORGANISATION_NOUNS,
    PLACE_NOUNS,
    PRONOUNS,
    QUOTED_SHARE,
    REPORTING_VERBS,
    SPEECH_ACTS,
    SPOKESPEOPLE,
    Candidate,
    Span,
    according_object,
    bare_person,
    clean,
    document_owner,
    in_document,
    is_title,
    joined,
    name_span,
    name_words,
    names_a_person,
    noun_pattern,
    phrase_span,
    role_words,
    singular,
    speech_subject,
)
from qa.ingest.names import ArticleNames


class _Resolver(ArticleNames):
    """One article's state while its sentences are attributed in order."""

    def __init__(self, article: Article, spans: Sequence[Span], entities: Sequence[Entity], title: Sequence[Entity]):
        super().__init__(article, spans, entities, title)
        self.said: dict[int, tuple[Speaker, Candidate]] = {}
        self.roles: dict[str, str] = {}
        self.issuer: Candidate | None = None

    # ---- attributions ------------------------------------------------------------------------
    def attribute(self, k: int, doc: Doc) -> Speaker | None:
        """The speaker of sentence ``k`` (parsed as ``doc``) from its own attribution, or None."""
        offset = doc.user_data["offset"]
        cues = [t for t in doc if self._is_cue(t, offset)]
        introducing = [t.head for t in doc[:-1] if t.text == ":" and t.nbor(1).text in '“"' and t.head.pos_ == "VERB"]
        for cue in sorted(cues, key=lambda t: (t.dep_ != "ROOT", t.i)) + introducing:
            if cue.lower_ == "according":
                head = according_object(cue)
            else:
                head = cue.nbor(-1) if cue.lower_ in ("read", "reads") else speech_subject(cue)
            found = self._resolve(k, head, offset) if head is not None else None
            if found is None or (cue.lower_ in ("read", "reads") and found[1] != "document"):
                continue
            candidate, kind = found
            if any(in_document(c) for c in cues):
                self.issuer = candidate
            start, end = phrase_span(head)
            speaker = Speaker(
                candidate.name, self.roles.get(candidate.name), candidate.start, candidate.end,
                offset + start, offset + end, kind,
            )  # fmt: skip
            self.said[k] = (speaker, candidate)
            return speaker
        return None

    def _is_cue(self, token: Token, offset: int) -> bool:
        """True for a reporting verb outside quotation marks that reports (not "declined to say", "added to")."""
        low = token.lower_
        if low not in REPORTING_VERBS and low not in ("according", "read", "reads"):
            return False  # what the last line would say, before the costlier checks
        deps = {c.dep_ for c in token.children}
        if self.quoted(offset + token.idx) or "neg" in deps or token.dep_ == "xcomp":
            return False
        if low not in SPEECH_ACTS and any(
            c.dep_ == "xcomp" and "aux" in {a.dep_ for a in c.children} for c in token.children
        ):
            return False  # "continued to rely"
        if low.startswith("add") and "dobj" in deps:
            return False
        if low.startswith("add") and any(c.lower_ == "to" for c in token.children):
            return False
        if low == "according":
            return token.i + 1 < len(token.doc) and token.nbor(1).lower_ == "to"
        if low in ("read", "reads"):  # "the statement read": the tagger often takes it for a noun
            return token.i > 0 and singular(token.nbor(-1).lower_) in DOCUMENTS
        return low in REPORTING_VERBS and token.tag_.startswith("VB")

    def _resolve(self, k: int, head: Token, offset: int) -> tuple[Candidate, str] | None:
        """Who the mention ``head`` refers to, and the mention's kind."""
        low = head.lower_
        if head.tag_ == "PRP" or head.pos_ == "PRON":
            pronoun = PRONOUNS.get(low)  # "they" is left out: mostly unnamed people ("officials … they said")
            if pronoun in ("he", "she"):
                found = self._subject_before(head, offset, pronoun) or self._antecedent(k, "person", pronoun)
            else:
                found = self._organisation(k, head, offset) if pronoun == "it" else None
            return (found, "pronoun") if found else None
        if singular(low) in DOCUMENTS:
            found = self._document(k, head, offset)
            return (found, "document") if found else None
        described = not head.ent_type_ and any(c.dep_ == "det" for c in head.children)  # "the Northern Irishman"
        proper = head.pos_ == "PROPN" and not is_title(head) and not described
        if head.ent_type_ in NAME_LABELS or proper or head.text in self.surnames:
            return self._name(head, offset), "name"
        people = (c for c in head.subtree if (c.ent_type_ == "PERSON" or c.dep_ == "appos" and c.pos_ == "PROPN"))
        named = next((c for c in people if joined(head, c)), None)
        if named is None and head.dep_ == "appos" and head.head.pos_ == "PROPN":
            named = head.head  # "Brittany Commisso, the executive assistant who says …"
        if named is not None:  # "Griner's agent, Lindsay Colas"
            return self._name(named, offset), "name"
        found = self._role(k, head, offset)
        return (found, "role") if found else None

    def _name(self, head: Token, offset: int) -> Candidate:
        """The speaker a proper name names, with its fullest form; records the role the mention gives."""
        first, last, label, titled = name_span(head)
        span = head.doc[first:last]
        name = clean(span.text)
        person = self.person(name, label, titled)
        name = bare_person(name) if person else name
        start = offset + span.start_char + span.text.find(name)
        if person:
            self._learn(name)
        full = self._fullest(name) if person else self._expand(name)
        role = role_words(head, first)
        if role and full not in self.roles:
            self.roles[full] = role
        kind = "person" if person else "place" if label == "GPE" else "org"
        return Candidate(full, start, start + len(name), kind)

    # ---- antecedents -------------------------------------------------------------------------
    def _earlier(self, k: int, kind: str) -> Iterator[Candidate]:
        """Who the sentences before ``k`` name, nearest first: each sentence's speaker, then its names in order."""
        return (c for _, c in self._earlier_at(k, kind))

    def _earlier_at(self, k: int, kind: str) -> Iterator[tuple[int, Candidate]]:
        for j in range(k - 1, -1, -1):
            if j in self.said and self.said[j][1].kind == kind:
                yield j, self.said[j][1]
            yield from ((j, c) for c in self.named[j] if c.kind == kind)

    def _organisation(self, k: int, mention: Token, offset: int, noun: str | None = None) -> Candidate | None:
        """The organisation "it", "the company", "the agency" is: the nearest one named before it, in its sentence
        first; within ``NEARBY`` sentences one whose name holds the noun ("the ministry": "Defense Ministry")."""
        pattern = noun_pattern(noun) if noun else None
        before = [(k, c) for c in self._in_sentence(mention, offset, "org")]
        nearest = None
        for j, candidate in chain(before, self._earlier_at(k, "org")):
            nearest = nearest or candidate
            if pattern is None or k - j > NEARBY:
                break
            if pattern.search(candidate.name):
                return candidate
        return nearest or next((c for c in self.title if c.kind == "org"), None)

    def _in_sentence(self, mention: Token, offset: int, kind: str) -> list[Candidate]:
        """Who the mention's sentence names before it, outside quotations, nearest first."""
        found = []
        for ent in mention.doc.ents:
            if ent.end <= mention.i and ent.label_ in KIND_OF_LABEL and not self.quoted(offset + ent.start_char):
                candidate = self._name(ent.root, offset)
                if candidate.kind == kind:
                    found.append(candidate)
        return found[::-1]

    def _fits(self, candidate: Candidate, gender: str | None) -> Candidate | None:
        """``candidate`` with its fullest name when of ``gender`` (or its gender is not known yet)."""
        name = self._fullest(candidate.name) if candidate.kind == "person" else candidate.name
        if gender is not None and self.gender.setdefault(name, gender) != gender:
            return None
        return replace(candidate, name=name)

    def _antecedent(self, k: int, kind: str, gender: str | None = None) -> Candidate | None:
        """The nearest person (of ``gender`` where known), organisation or place before sentence ``k``, else the
        headline's."""
        for candidate in self._earlier(k, kind):
            found = self._fits(candidate, gender)
            if found is not None:
                return found
        headline = next((c for c in self.title if c.kind == kind), None)
        nearest = next(self._earlier(k, kind), None)  # the article's genders are a guess: better than nobody
        return headline or (self._fits(nearest, None) if nearest is not None else None)

    def _subject_before(self, pronoun: Token, offset: int, gender: str) -> Candidate | None:
        """A person named as a subject earlier in the pronoun's sentence ("Watts, 86, was in line, she said")."""
        for token in pronoun.doc[: pronoun.i]:
            if token.dep_ == "nsubj" and token.pos_ == "PROPN" and not self.quoted(offset + token.idx):
                candidate = self._name(token, offset)
                full_name = len(name_words(candidate.name)) > 1 and token.ent_type_ in ("", "PERSON")  # "Iverice Viera"
                if candidate.kind == "person" or full_name:
                    return self._fits(replace(candidate, kind="person"), gender)
        return None

    def _called(self, k: int, noun: str, kind: str) -> Candidate | None:
        """The nearest person the article calls ``noun`` ("the mayor": "Mayor Chokwe Lumumba", "…, the mayor,") or
        organisation whose name holds it ("the ministry": "Defense Ministry") before sentence ``k``."""
        short = ABBREVIATED.get(noun, noun)
        pattern = re.compile(rf"\b(?i:{re.escape(noun)}|{re.escape(short)}\.)(?!\w)")
        for c in self._earlier(k, kind):
            if kind != "person":
                if pattern.search(c.name):
                    return c
                continue
            name = self._fullest(c.name)
            if pattern.search(self.roles.get(name, "")) or (c.start is not None and self._titled(c, pattern)):
                return replace(c, name=name)
        return self._title_before(k, pattern) if kind == "person" else None

    def _title_before(self, k: int, pattern: re.Pattern[str]) -> Candidate | None:
        """The last person named right after the title ``pattern`` before sentence ``k``, quotations included
        ("… “President Biden has been very clear” …" for "the President")."""
        titled = re.compile(pattern.pattern + r"\s+((?:[A-Z][\w’'.-]+\s+){0,2}[A-Z][\w’'-]+)\b")
        found = None
        for match in titled.finditer(self.text, 0, self.spans[k][0]):
            found = match
        if found is None:
            return None
        name = clean(found.group(1))
        return Candidate(self._fullest(name), found.start(1), found.start(1) + len(name), "person")

    def _titled(self, c: Candidate, pattern: re.Pattern[str]) -> bool:
        """True when the words just before the name, or an appositive just after it, match ``pattern``."""
        assert c.start is not None and c.end is not None
        before = re.search(r"(?:[\w.’'-]+\s+){0,4}$", self.text[max(0, c.start - 60) : c.start])
        after = re.match(r",\s+(?:the\s+|a\s+|an\s+)?[^,.;]{0,60}", self.text[c.end : c.end + 80])
        return bool((before and pattern.search(before.group())) or (after and pattern.search(after.group())))

    def _role(self, k: int, head: Token, offset: int) -> Candidate | None:
        """Who "the spokesperson", "the company", "the mayor", "the city" is."""
        noun = singular(head.lower_)
        owners = [c for c in head.children if c.dep_ in ("compound", "poss")]
        owners += [o for p in head.children if p.lower_ in ("for", "at", "of") for o in p.children if o.dep_ == "pobj"]
        principal = next((o for o in owners if o.ent_type_ in ("ORG", "GPE", "NORP") or o.pos_ == "PROPN"), None)
        determiner = next((c.lower_ for c in head.children if c.dep_ in ("det", "nummod")), "the")
        if noun in SPOKESPEOPLE:
            if principal is not None:
                return self._name(principal, offset)
            return self._called(k, noun, "person") or self._antecedent(k, "org")
        if head.tag_ in ("NNS", "NNPS") or determiner in ("a", "an", "some", "one", "another"):
            return None  # unnamed sources: "officials said", "a senior official said", "one parent said"
        if noun in PLACE_NOUNS:
            return self._antecedent(k, "place")
        if noun in ORGANISATION_NOUNS:
            proper = [o for o in owners if o.pos_ == "PROPN" and o.ent_type_ not in ("GPE", "NORP")]
            if proper:  # "the Biden administration", "Vance's office": named by its own words
                start, end = phrase_span(head)
                name = clean(head.doc.text[start:end])
                return Candidate(name, offset + end - len(name), offset + end, "org")
            found = self._organisation(k, head, offset, noun)
            if found is not None:
                return found
        if not (names_a_person(noun) or any(names_a_person(c.lower_) for c in head.children if c.dep_ == "appos")):
            return None  # "the 44-year-old, arguably the greatest NFL quarterback" is a person, "the version" not
        found = self._called(k, noun, "person")
        owned = principal is not None and (principal.dep_ == "poss" or principal.head.lower_ in ("for", "at", "of"))
        if found is None and owned:  # "Sweden's Foreign Minister", never named: the mention names them
            start, end = phrase_span(head)
            name = clean(head.doc.text[start:end])
            return Candidate(name, offset + end - len(name), offset + end, "person")
        found = found or self._antecedent(k, "person")
        if found is not None and found.name not in self.roles:
            start, end = phrase_span(head)
            self.roles[found.name] = ARTICLE.sub("", head.doc.text[start:end])
        return found

    def _document(self, k: int, head: Token, offset: int) -> Candidate | None:
        """Who issued the statement (post, release …) that ``head`` names."""
        owner = document_owner(head)
        if owner is not None and not (owner.ent_type_ in ("GPE", "NORP") and self.issuer is not None):
            found = self._resolve(k, owner, offset)
            if found is not None:
                self.issuer = found[0]
                return found[0]
        if self.issuer is not None:
            return self.issuer
        if any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in head.children):
            return None  # "according to a new study": whose, the article does not say
        return self._antecedent(k, "org") or next((said[1] for _, said in sorted(self.said.items())[-1:]), None)

    # ---- quotations without an attribution of their own -------------------------------------
    def continue_quotations(self, speakers: list[Speaker | None]) -> None:
        """Give each mostly-quoted sentence without a speaker the speaker of its quotation (in place)."""
        inside: list[set[int]] = []
        share: list[float] = []
        for start, end in self.spans:
            ids, covered = set(), 0
            for q_start, q_end, qid in self.quotes[max(bisect_right(self._quote_starts, start) - 1, 0) :]:
                if q_start >= end:
                    break
                if min(end, q_end) > max(start, q_start):
                    ids.add(qid)
                    covered += min(end, q_end) - max(start, q_start)
            inside.append(ids)
            share.append(covered / max(end - start, 1))
        for k, ids in enumerate(inside):
            if speakers[k] is not None or share[k] < QUOTED_SHARE:
                continue
            same = [j for j in self.said if inside[j] & ids]
            if same:
                source = speakers[min(same, key=lambda j: (abs(j - k), j))]
            else:
                first = min(j for j, other in enumerate(inside) if other & ids)
                source = speakers[first - 1] if first > 0 else None
            if source is not None:
                speakers[k] = replace(source, kind="continuation", mention_start=None, mention_end=None)


def find_speakers(
    article: Article,
    spans: Sequence[Span],
    entities: Sequence[Entity],
    parses: dict[int, Doc],
    title_entities: Sequence[Entity] = (),
) -> list[Speaker | None]:
    """The speaker of each sentence of ``article`` (``spans``), or None where it reports no speech.

    ``entities`` are the article's (offsets into its text), ``parses`` the dependency parses of the sentences that
    may report speech (by sentence index; ``doc.user_data["offset"]`` is the sentence's start) and
    ``title_entities`` the headline's (offsets into ``article.title``)."""
    resolver = _Resolver(article, spans, entities, title_entities)
    speakers: list[Speaker | None] = [None] * len(spans)
    for k in range(len(spans)):
        if k in parses:
            speakers[k] = resolver.attribute(k, parses[k])
    resolver.continue_quotations(speakers)
    return speakers
