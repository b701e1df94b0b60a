"""Small text helpers shared by retrieval and reading: function words, crude stems, dates."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

_WORDS = re.compile(r"[A-Za-z0-9]+")
_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")

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
