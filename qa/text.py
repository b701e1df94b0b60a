"""Small text helpers shared by the stages: function words, crude stems, dates, and names (which words of
a text are names, and whether a text mentions a name, allowing inflections, demonyms and acronyms)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.types import Name

_WORDS = re.compile(r"[A-Za-z0-9]+")
_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# Control characters (C0 but tab/newline, DEL, C1), zero-width space, BOM, lone surrogates.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff\ud800-\udfff]")
_WORD = re.compile(r"[A-Za-z0-9][\w'’.-]*")
_DEMONYM_ENDINGS = ("ese", "ian", "ish", "an", "i")

# Words that carry no topic (and that are capitalised only because they start a question).
FUNCTION_WORDS = frozenset(
    """what who whom whose where when why how which whether did does do is are was were be been can could should
    would will shall may might must has have had and but so or nor yet the a an in on at of for to from by with
    about above across after against along amid among amongst apart around as aside at before behind below
    beneath beside besides between beyond despite down during except following given inside into like near
    off onto out outside over past per regarding since than through throughout toward towards under unlike
    until upon via within without although though while whereas because unless once if then there here now
    today tell give name list describe explain identify define state provide mention according please
    this that these those it its they them he she his her their i we you my our your other another some any
    all each every both either neither many much more most less least few several such same only also just
    even still not no yes one two three first second third last next new old after apart approximately
    roughly originally initially finally eventually usually generally typically currently recently""".split()
)


def normalize_text(text: str) -> str:
    """Return ``text`` with normalised Unicode and whitespace (paragraphs kept)."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def slug(value: str) -> str:
    """Return ``value`` as a document id: letters, digits and ``._-``, segments joined by ``/``.

    Empty, ``.`` and ``..`` segments are dropped, so an id never climbs out of a folder.
    """
    parts = (re.sub(r"[^A-Za-z0-9._-]+", "-", part).strip("-") for part in value.split("/"))
    return "/".join(p for p in parts if p not in ("", ".", "..")) or "article"


def content_stems(text: str) -> set[str]:
    """Return the crude stems (first five letters, lower case) of the content words of ``text``."""
    return {w[:5] for w in (m.group().lower() for m in _WORDS.finditer(text)) if w not in FUNCTION_WORDS}


@lru_cache(maxsize=65_536)
def _parse_day(value: str) -> date | None:
    match = _DATE.search(value)
    if not match:
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def parse_date(value: str | date | None) -> date | None:
    """Read ``YYYY-MM-DD`` (also with ``/`` or ``.``, or a longer ISO timestamp); None if absent."""
    if value is None or isinstance(value, date):
        return value
    return _parse_day(value)


def key_terms(question: str) -> list[str]:
    """Return the names and acronyms in a question that the evidence must mention."""
    terms: list[str] = []
    for match in _WORD.finditer(question):
        word = re.sub(r"(['’]s|['’])$", "", match.group().rstrip(".-"))
        bare = word.replace(".", "")
        if len(bare) < 2 or not bare[0].isupper():
            continue
        possessive = word != match.group().rstrip(".-")
        if bare.lower() in FUNCTION_WORDS and not bare.isupper() and not possessive:
            continue
        if bare not in terms:
            terms.append(bare)
    return terms


def term_found(term: str, text: str) -> bool:
    """Return True if ``term`` (allowing inflections, or as an acronym) occurs in ``text``.

    "Russia" matches "Russian", "China" matches "Chinese" (a shared stem of at least four
    letters), "Chinese" matches "China" and "Pakistani" "Pakistan" (a demonym's ending
    dropped); "US" matches "U.S." and "United States" (initials of capitalised words). Places
    are not equated with their capitals: "Moscow" says nothing about what "Russia" said.
    """
    if term.isupper() and len(term) <= 6:
        dotted = r"\.?".join(map(re.escape, term)) + r"\.?"
        if re.search(rf"\b{dotted}(?!\w)", text):
            return True
        return any(_spells(term.lower(), words) for words in _capitalised_runs(text))
    stems = {term if len(term) <= 4 else term[: max(4, len(term) - 2)]}
    stems |= {term[: -len(end)] for end in _DEMONYM_ENDINGS if term.endswith(end) and len(term) - len(end) >= 4}
    pattern = "|".join(re.escape(s) for s in sorted(stems, key=len, reverse=True))
    return re.search(rf"\b(?:{pattern})", text, flags=re.IGNORECASE) is not None


_CONNECTORS = frozenset({"of", "the", "and", "for", "de", "&"})
_RUN = re.compile(r"[A-Z][\w'’.-]*(?:,?\s+(?:(?:of|the|and|for|de|&)\s+)*[A-Z][\w'’.-]*)+")


def _capitalised_runs(text: str) -> list[list[str]]:
    """The runs of two or more capitalised words in ``text`` (connectors such as "of" dropped)."""
    return [[w for w in re.split(r",?\s+", m.group()) if w.lower() not in _CONNECTORS] for m in _RUN.finditer(text)]


def _spells(letters: str, words: Sequence[str], extra: int = 2) -> bool:
    """True when two or more consecutive ``words`` spell the acronym ``letters``: each word gives its
    initial, in order, and at most ``extra`` further letters come from inside them ("UVA": University of
    VirginiA)."""

    def from_word(i: int, at: int, spare: int, used: int) -> bool:
        word = words[i].lower()
        if word[0] != letters[at]:
            return False
        at, inner, used = at + 1, 1, used + 1
        while True:
            if at == len(letters):
                return used >= 2
            if i + 1 < len(words) and from_word(i + 1, at, spare, used):
                return True
            found = word.find(letters[at], inner)
            if spare == 0 or found < 0:
                return False
            at, inner, spare = at + 1, found + 1, spare - 1

    return any(from_word(i, 0, extra, 0) for i in range(len(words) - 1))


def name_found(name: Name, text: str) -> bool:
    """True when ``text`` mentions ``name``: a one-word name as ``term_found`` reads it; a longer one by all
    its words (a person by the surname alone: "President Biden" for "Joe Biden") or by its initials
    ("FTC" for "Federal Trade Commission")."""
    words = [w for w in re.split(r"[\s-]+", name.text) if w and w.lower() not in FUNCTION_WORDS]
    if len(words) <= 1:
        return term_found(words[0] if words else name.text, text)
    if name.label == "PERSON" and term_found(words[-1], text):
        return True
    if all(term_found(w, text) for w in words):
        return True
    initials = "".join(w[0] for w in words if w[0].isupper())
    return len(initials) >= 2 and term_found(initials, text)
