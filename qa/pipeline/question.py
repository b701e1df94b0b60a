"""What a question names: the people, organisations, places and things the evidence must mention.

A capital letter does not make a name: "in December 2015", "on Wednesday", "the All-Pro
receiver" or "according to the AP report" name nothing that an article about the event must
repeat. The names are the question's named entities as spaCy's English pipeline finds them
(people, nationalities and groups, organisations, places, facilities, products, events, works,
laws, languages) that hold a proper noun, without dates, times and amounts, and without the
outlet a question cites as its source ("the CNN report"); plus acronyms the pipeline left out.
An acronym is found in the evidence spelled out too ("UVA": "University of Virginia"; see
``qa.abstain.name_found``), and the evidence includes its articles' dates.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from qa.types import Name

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span

# spaCy's entity labels that name something (not DATE, TIME, PERCENT, MONEY, QUANTITY, ORDINAL, CARDINAL).
NAME_LABELS = frozenset(
    {"PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE"}
)
_CALENDAR = frozenset(
    """january february march april may june july august september october november december jan feb mar apr
    jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday""".split()
)
# "the CNN report", "USA Today's story", "the AP reported": the outlet a question cites, not its subject.
_REPORT_WORDS = frozenset("report reports reported reporting story stories article articles coverage piece".split())
_DETERMINER = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
_POSSESSIVE = re.compile(r"(?:['’]s|['’])$")


def question_names(nlp: Language, question: str) -> tuple[Name, ...]:
    """Return the names in ``question`` that the evidence must mention (see the module's docstring)."""
    return names_in(nlp(question, disable=["parser"]))


def names_in(doc: Doc) -> tuple[Name, ...]:
    """Return the names of an analysed question (``question_names`` without running the pipeline)."""
    names: list[Name] = []
    covered: set[int] = set()
    for ent in doc.ents:
        covered.update(range(ent.start, ent.end))
        if ent.label_ in NAME_LABELS and _proper(ent) and not _calendar(ent) and not _cited_outlet(ent):
            names.append(Name(_bare(ent.text), ent.label_))
    shouting = doc.text.upper() == doc.text  # a question in capitals: its words are no acronyms
    for token in doc:
        text = _POSSESSIVE.sub("", token.text).replace(".", "")
        if (
            not shouting
            and token.i not in covered
            and 2 <= len(text) <= 6
            and text.isalpha()
            and text.isupper()
            and text.lower() not in _CALENDAR
            and not (token.i + 1 < len(doc) and doc[token.i + 1].lower_ in _REPORT_WORDS)
        ):
            names.append(Name(text, "ACRONYM"))
    unique: dict[str, Name] = {}
    for name in names:
        if name.text and name.text.lower() not in {n.lower() for n in unique}:
            unique[name.text] = name
    return tuple(unique.values())


def _bare(text: str) -> str:
    return _POSSESSIVE.sub("", _DETERMINER.sub("", text.strip())).strip()


def _proper(ent: Span) -> bool:
    """A name holds a proper noun ("the All-Pro" does not); nationalities and languages are adjectives."""
    return ent.label_ in {"NORP", "LANGUAGE"} or any(t.pos_ == "PROPN" for t in ent)


def _calendar(ent: Span) -> bool:
    """A month or weekday the model took for a name ("March", "May")."""
    return all(t.lower_.rstrip(".") in _CALENDAR or not t.is_alpha for t in ent)


def _cited_outlet(ent: Span) -> bool:
    """An organisation named as the source of a report: "according to the AP report", "the CNN story"."""
    following = ent.doc[ent.end] if ent.end < len(ent.doc) else None
    if following is not None and following.lower_ in {"'s", "’s"} and ent.end + 1 < len(ent.doc):
        following = ent.doc[ent.end + 1]
    return (
        ent.label_ in {"ORG", "PRODUCT", "WORK_OF_ART"} and following is not None and following.lower_ in _REPORT_WORDS
    )
