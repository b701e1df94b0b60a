"""What callers hand the assistant, checked once at the front door: questions, filters, paths, ids.

Every check raises the package's errors (``InvalidQuestionError``, ``InvalidArgumentError``) with
a message that says what to give instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

from qa.errors import InvalidArgumentError, InvalidQuestionError
from qa.options import AskOptions, Filters
from qa.text import parse_date

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # terminal colour codes pasted along: dropped
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")  # C0 and C1 controls: read as spaces
# Invisible format characters (soft hyphen, zero-width, bidi overrides, BOM) and lone surrogates
# (undecodable bytes from a command line): dropped.
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def clean_question(question: object, max_chars: int) -> str:
    """Return the question with control and invisible characters and extra spaces removed.

    Raises ``InvalidQuestionError`` for a question that is not text, empty (once cleaned) or
    longer than ``max_chars``.
    """
    if not isinstance(question, str):
        raise InvalidQuestionError(f"The question must be text, not {type(question).__name__}.")
    cleaned = " ".join(
        unicodedata.normalize("NFC", _INVISIBLE.sub("", _CONTROL.sub(" ", _ANSI.sub("", question)))).split()
    )
    if not cleaned:
        raise InvalidQuestionError("The question is empty: type a question about the articles.")
    if len(cleaned) > max_chars:
        raise InvalidQuestionError(
            f"The question is {len(cleaned):,} characters long; the limit is {max_chars:,}. Ask something shorter."
        )
    return cleaned


def options(given: AskOptions | None, changes: Mapping[str, object]) -> AskOptions:
    """``given`` (default: none set) with the keyword ``changes`` applied; an unknown keyword is an error."""
    if given is not None and not isinstance(given, AskOptions):
        raise InvalidArgumentError(f"options must be qa.AskOptions, not {given!r:.80}.")
    try:
        return (given or AskOptions()).overridden(**changes)  # type: ignore[misc]
    except TypeError as exc:
        raise InvalidArgumentError(str(exc)) from None


def make_filters(options: AskOptions) -> Filters | None:
    """Return the article filters ``options`` ask for (None for none); raises for an unreadable date."""
    as_of = options.as_of
    if isinstance(as_of, str) and as_of.strip().lower() == "today":
        as_of = date.today()
    days = []
    for name, value in (("since", options.since), ("until", options.until), ("as_of", as_of)):
        if value is not None and not isinstance(value, (str, date)):
            raise InvalidQuestionError(f"{name}={value!r:.40} is not a date: use YYYY-MM-DD or a datetime.date.")
        day = parse_date(value) if value not in (None, "") else None
        if value not in (None, "") and day is None:
            raise InvalidQuestionError(f"{name}={value!r} is not a date: use YYYY-MM-DD.")
        days.append(day)
    wanted = tuple(s.strip() for s in texts(options.sources or (), "sources") if s.strip())
    doc_ids = None if options.doc_ids is None else frozenset(texts(options.doc_ids, "doc_ids"))
    filters = Filters(wanted, *days, doc_ids=doc_ids)
    return filters if filters.active else None


def texts(value: object, what: str) -> tuple[str, ...]:
    """``value`` as a tuple of strings: one string, or a list, tuple or set of them."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidArgumentError(f"{what} must be a string or a list of strings, not {value!r:.80}.")


def paths(value: object, what: str = "paths") -> list[str | Path]:
    """``value`` as a list of paths: one path, or an iterable of them."""
    if isinstance(value, (str, Path)):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, dict)):
        items = list(value)
        if all(isinstance(v, (str, Path)) for v in items):
            return items
    raise InvalidArgumentError(f"{what} must be a file or folder path, or a list of them, not {value!r:.80}.")


def strictness(value: object) -> float | None:
    """``value`` as a probability (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidQuestionError(f"strictness={value!r:.40} is not a probability: use a number from 0 to 1.")
    return float(value)


def top_k(value: object) -> int:
    """``value`` as a number of passages, 1 or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"top_k={value!r:.40} is not a number of passages: use a whole number of 1 or more.")
    return value
