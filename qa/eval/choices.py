"""Multiple-choice scoring: which of a question's choices an answer's evidence supports best.

The system never sees which choice is right. ``pick_choice`` reads only the question, the
choices and what the answer offers, and applies one fixed rule:

1. **Words.** A text is lower-cased; possessive 's is dropped, and so are thousands separators
   and decimal points between digits ("10,000" -> "10000"); any other punctuation (quotes,
   curly or straight, included) splits words. A choice's articles and a few function words
   (``STOP_WORDS``) are not scored, unless it is made only of such words (then only its
   articles are left out).
2. **Matching words.** Two words match when they are equal, or, both being letters only, they
   share their first five letters ("Europe" ~ "European"), or the shorter has at least four
   letters and begins the longer ("Iran" ~ "Iranian"). Words with digits match only exactly.
3. **Coverage of a choice in a text**: the weights of the choice's distinct words that match a
   word of the text, summed, over the number of those words. A word that also matches a word of
   the question (as asked or as resolved) weighs ``QUESTION_WORD_WEIGHT``, any other 1: it
   does not tell the choices apart. So coverage lies in [0, 1].
4. **Sources, in order of trust.** The short answer (``Answer.short``), weight ``SHORT_WEIGHT``;
   the cited sentences together (``Answer.citations`` quotes: the answer's sentences, or the
   nearest sentences offered with an abstention), weight ``CITED_WEIGHT``; each evidence
   sentence (``Answer.evidence``, best first) of rank r = 0, 1, ..., weight 1 / (r + 1).
5. **Score** of a choice: the sum over the sources of weight x coverage. The choice with the
   highest score is picked; none is when every score is 0 or the top two are equal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.types import Answer

SHORT_WEIGHT = 3.0
CITED_WEIGHT = 2.0
QUESTION_WORD_WEIGHT = 0.25
STEM_LETTERS = 5  # words sharing this many first letters match
PREFIX_LETTERS = 4  # a word this long or longer matches the words it begins
STOP_WORDS = frozenset("a an the of in on at to for from by with and or as is are was were be been its it".split())
_ARTICLES = frozenset(("a", "an", "the"))
_POSSESSIVE = re.compile(r"'s\b")
_NUMBER_JOINS = re.compile(r"(?<=\d)[,.](?=\d)")
_NOT_WORD = re.compile(r"[\W_]+")  # anything but letters (any script) and digits
_TIE = 1e-9


@dataclass(frozen=True)
class ChoicePick:
    """The choice picked (its index, or None when no choice stands out) and every choice's score."""

    index: int | None
    scores: tuple[float, ...]


def words(text: str) -> list[str]:
    """The normalised words of ``text`` (rule 1, before dropping function words)."""
    text = text.lower().replace("’", "'")
    text = _POSSESSIVE.sub("", _NUMBER_JOINS.sub("", text))
    return _NOT_WORD.sub(" ", text).split()


def choice_words(choice: str) -> tuple[str, ...]:
    """The distinct words of a choice that are scored (rule 1)."""
    every = words(choice)
    content = [w for w in every if w not in STOP_WORDS] or [w for w in every if w not in _ARTICLES]
    return tuple(dict.fromkeys(content))


def same_word(a: str, b: str) -> bool:
    """True when two normalised words match (rule 2)."""
    if a == b:
        return True
    if not (a.isalpha() and b.isalpha()):
        return False
    short, long = sorted((a, b), key=len)
    if len(short) >= STEM_LETTERS and short[:STEM_LETTERS] == long[:STEM_LETTERS]:
        return True
    return len(short) >= PREFIX_LETTERS and long.startswith(short)


def _found(word: str, vocabulary: set[str]) -> bool:
    return word in vocabulary or any(same_word(word, other) for other in vocabulary)


def coverage(choice: Sequence[str], text: str, question: set[str]) -> float:
    """How much of a choice's words ``text`` holds, question words weighing less (rule 3)."""
    if not choice:
        return 0.0
    vocabulary = set(words(text))
    weight = {w: QUESTION_WORD_WEIGHT if _found(w, question) else 1.0 for w in choice}
    return sum(weight[w] for w in choice if _found(w, vocabulary)) / len(choice)


def weighted_sources(answer: Answer) -> list[tuple[float, str]]:
    """The texts the answer offers as support for a choice, with how far each is trusted (rule 4)."""
    sources: list[tuple[float, str]] = []
    if answer.short is not None:
        sources.append((SHORT_WEIGHT, answer.short.text))
    if answer.citations:
        sources.append((CITED_WEIGHT, " ".join(c.quote for c in answer.citations)))
    sources += [(1 / (rank + 1), e.text) for rank, e in enumerate(answer.evidence)]
    return sources


def pick_choice(question: str, choices: Sequence[str], answer: Answer) -> ChoicePick:
    """The choice the answer's evidence supports best, by the rule in this module's docstring."""
    asked = set(words(f"{question} {answer.resolved_question}"))
    sources = weighted_sources(answer)
    scores = tuple(round(sum(w * coverage(choice_words(c), text, asked) for w, text in sources), 6) for c in choices)
    ranked = sorted(scores, reverse=True)
    if not ranked or ranked[0] <= 0 or (len(ranked) > 1 and ranked[0] - ranked[1] <= _TIE):
        return ChoicePick(None, scores)
    return ChoicePick(scores.index(ranked[0]), scores)
