"""Abstention: does the evidence answer the question?

The reader's best cross-encoder score alone barely separates answerable questions from
unanswerable ones (a passage on the right topic scores high even when it lacks the fact).
This stage turns what the reader saw into ``Signals`` (relevance and its margins, whether
the question's names, numbers and content words occur in the evidence, whether the best
sentence holds the kind of thing asked for) and a small logistic regression, trained on
SQuAD v2.0 (``python -m benchmarks.abstention fit``), turns them into the probability that the
articles answer. The assistant abstains when that probability is below its strictness.

The parameters live in ``qa/pipeline/abstention.json`` (read with the package, no network).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from qa.text import FUNCTION_WORDS, content_stems, name_found
from qa.types import Name

PARAMETERS = "abstention.json"
MISSING_NAME_FACTOR = 0.1

_MONTHS = "january february march april may june july august september october november december"
_DAYS = "monday tuesday wednesday thursday friday saturday sunday"
_TIME = re.compile(
    rf"\b(?:{'|'.join((_MONTHS + ' ' + _DAYS).split())}|1\d{{3}}s?|20\d{{2}}s?|\d{{1,2}}(?:st|nd|rd|th)"
    r"|centur(?:y|ies)|decades?|years?|months?|weeks?|days?|hours?|ago|earlier|later|yesterday|today"
    r"|tomorrow|morning|evening|night|season|spring|summer|autumn|winter|dynasty|era|period|age)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty"
    r"|hundreds?|thousands?|millions?|billions?|trillions?|dozens?|half|percent|several|few|many)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]+")
_DIGITS = re.compile(r"\d[\d,.]*\d|\d")
_PLAIN_WORD = re.compile(r"[A-Za-z0-9]+")
_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|without|n't|cannot|neither)\b|n't\b", re.IGNORECASE)

# What a question asks for, by its opening words (checked in this order).
_KINDS = (
    ("time", r"when|what (?:year|date|day|month|time|century|decade|period|era)|which (?:year|date|day|month|century)"),
    ("number", r"how (?:many|much|long|far|old|large|big|high|tall|often)|what (?:percent(?:age)?|number|amount|size)"),
    ("person", r"who|whom|whose"),
    ("place", r"where|(?:what|which) (?:country|city|state|place|region|continent)"),
)
_KIND_PATTERNS = tuple((kind, re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE)) for kind, pattern in _KINDS)


@dataclass(frozen=True)
class Signals:
    """What the evidence says about whether it answers the question (the model's inputs)."""

    best: float  # the best sentence's cross-encoder logit
    gap: float  # best minus the second best
    top3: float  # mean of the best three
    passage: float  # the best passage's retrieval (rerank) score
    passage_gap: float  # best passage minus the second
    missing_terms: float  # share of the question's names absent from the evidence
    missing_numbers: float  # share of the question's numbers absent from the evidence
    sentence_coverage: float  # share of the question's content words in the best sentence
    context_coverage: float  # ... in the best sentence's passage and title
    evidence_coverage: float  # ... anywhere in the evidence
    type_missing: float  # 1 when the question asks for a time/number/person/place the best sentence lacks
    same_article: float  # share of the best three sentences from the best sentence's article
    negation_mismatch: float  # 1 when the question is negated and the best sentence is not
    uncovered: float  # how many of the question's content words the best sentence lacks (at most 4)
    probe_gain: float  # how much the best sentence's score rises when one of those words is dropped
    # Of the sentence the answer-sentence scorer finds likeliest (``Likeliest``). Not inputs: the scorer's
    # probability and whether that sentence holds the kind of answer asked for. SQuAD v2.0's unanswerable
    # questions are written to be answered by a plausible entity of the paragraph, so a model fitted there
    # learns that holding one is a bad sign (negative weights), and the seed's "When did the Taliban take
    # over?" abstained.
    speaker_match: float  # 1 when a say-question names the likeliest sentence's speaker
    names_in_sentence: float  # share of the question's names in the likeliest sentence (1 when it names none)

    def vector(self) -> list[float]:
        """Return the signals in ``FEATURES`` order."""
        return [float(getattr(self, name)) for name in FEATURES]  # not astuple: it deep-copies


FEATURES = tuple(f.name for f in fields(Signals))


@dataclass(frozen=True)
class Likeliest:
    """What the answer-sentence scorer (``qa.pipeline.sentence_scorer``) made of its likeliest sentence."""

    speaker_match: float = 0.0  # its ``Features`` of that sentence
    names: float = 0.0


@dataclass(frozen=True)
class Scored:
    """A scored evidence sentence (best first) as the signals need it."""

    score: float
    text: str
    doc_id: str


@dataclass(frozen=True)
class Retrieved:
    """A retrieved passage as the signals need it (``date``: its article's, YYYY-MM-DD, when known)."""

    score: float
    text: str
    title: str
    doc_id: str
    date: str | None = None


def question_kind(question: str) -> str:
    """Return what ``question`` asks for: ``time``, ``number``, ``person``, ``place`` or ``other``."""
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(question):
            return kind
    return "other"


def has_kind(kind: str, sentence: str, question: str) -> bool:
    """True when ``sentence`` holds something of ``kind`` (a name must be one the question lacks)."""
    if kind == "time":
        return _TIME.search(sentence) is not None
    if kind == "number":
        return _NUMBER.search(sentence) is not None
    if kind in ("person", "place"):
        asked = content_stems(question)
        return any(
            w.lower()[:5] not in asked and w.lower() not in FUNCTION_WORDS for w in _CAPITALISED.findall(sentence)
        )
    return True


def uncovered_words(question: str, sentence: str, limit: int = 4) -> list[str]:
    """Return the question's content words (at most ``limit``) whose stem the sentence lacks."""
    have = content_stems(sentence)
    words: list[str] = []
    for word in _PLAIN_WORD.findall(question):
        lower = word.lower()
        if lower not in FUNCTION_WORDS and lower[:5] not in have and word not in words:
            words.append(word)
    return words[:limit]


def without(question: str, word: str) -> str:
    """Return ``question`` with the first occurrence of ``word`` dropped."""
    return re.sub(rf"\b{re.escape(word)}\b\s*", "", question, count=1)


def evidence_text(hits: Sequence[Retrieved]) -> str:
    """The retrieved passages, their titles and their articles' dates, as the name and number checks read
    them: "in November 2022" is found in an article dated 2022-11-09 that says "on Wednesday"."""
    return "\n".join([h.text for h in hits] + [h.title for h in hits] + sorted({h.date for h in hits if h.date}))


def absent_terms(names: Sequence[Name], hits: Sequence[Retrieved]) -> tuple[str, ...]:
    """The ``names`` that no retrieved passage (or its title) mentions."""
    evidence = evidence_text(hits)
    return tuple(n.text for n in names if not name_found(n, evidence))


def _share(needed: Sequence[str] | set[str], found: Sequence[bool]) -> float:
    return sum(found) / len(needed) if needed else 0.0


def signals(
    question: str,
    ranked: Sequence[Scored],
    hits: Sequence[Retrieved],
    terms: Sequence[Name],
    rescore: Callable[[Sequence[str], str], Sequence[float]] | None = None,
    absent: Sequence[str] | None = None,
    likeliest: Likeliest | None = None,
) -> Signals:
    """Return the signals of ``question`` given the reader's ``ranked`` sentences and the ``hits``.

    ``terms`` are the names the evidence must mention (``qa.question.question_names``) and
    ``absent`` those of them it lacks (default: ``absent_terms(terms, hits)``);
    ``rescore(questions, sentence)`` is the cross-encoder that scored ``ranked`` (a score per
    question): with it, each question word the best sentence lacks is dropped in turn and the
    sentence scored again. A big rise means the word contradicts the sentence ("negative" against
    "positive"); a paraphrase barely moves the score. ``likeliest``: the scorer's view of the sentence
    it finds likeliest (default: nothing found)."""
    evidence = evidence_text(hits)
    absent = absent_terms(terms, hits) if absent is None else absent
    best = ranked[0] if ranked else Scored(-12.0, "", "")
    scores = [r.score for r in ranked] or [-12.0]
    context = " ".join(h.text + " " + h.title for h in hits if h.doc_id == best.doc_id and best.text in h.text)
    focus = content_stems(question)
    numbers = set(_DIGITS.findall(question))
    in_sentence, in_context, in_evidence = content_stems(best.text), content_stems(context), content_stems(evidence)
    kind = question_kind(question)
    top = ranked[:3]
    lacking = uncovered_words(question, best.text) if best.text else []
    view = likeliest or Likeliest()
    gain = 0.0
    if rescore is not None and lacking:
        gain = max(rescore([without(question, w) for w in lacking], best.text)) - best.score
    return Signals(
        best=scores[0],
        gap=scores[0] - scores[1] if len(scores) > 1 else 0.0,
        top3=sum(scores[:3]) / len(scores[:3]),
        passage=hits[0].score if hits else 0.0,
        passage_gap=hits[0].score - hits[1].score if len(hits) > 1 else 0.0,
        missing_terms=len(absent) / len(terms) if terms else 0.0,
        missing_numbers=_share(sorted(numbers), [n not in evidence for n in sorted(numbers)]),
        sentence_coverage=_share(focus, [s in in_sentence for s in focus]),
        context_coverage=_share(focus, [s in in_context for s in focus]),
        evidence_coverage=_share(focus, [s in in_evidence for s in focus]),
        type_missing=float(kind != "other" and not has_kind(kind, best.text, question)),
        same_article=sum(r.doc_id == best.doc_id for r in top) / len(top) if top else 0.0,
        negation_mismatch=float(bool(_NEGATION.search(question)) and not _NEGATION.search(best.text)),
        uncovered=float(len(lacking)),
        probe_gain=gain,
        speaker_match=view.speaker_match,
        names_in_sentence=view.names,
    )


@dataclass(frozen=True)
class AbstentionModel:
    """Logistic regression over standardised ``Signals``: P(the evidence answers the question)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    strictness: float  # the default operating point: abstain below this probability
    trained_on: str = ""

    @classmethod
    def load(cls, path: str | Path | None = None) -> AbstentionModel:
        """Read the parameter file (default: the one shipped in the package)."""
        if path:
            raw = Path(path).read_text(encoding="utf-8")
        else:
            raw = resources.files("qa.pipeline").joinpath(PARAMETERS).read_text(encoding="utf-8")
        data = json.loads(raw)
        model = cls(
            features=tuple(data["features"]),
            mean=tuple(data["mean"]),
            scale=tuple(data["scale"]),
            coef=tuple(data["coef"]),
            intercept=float(data["intercept"]),
            strictness=float(data["strictness"]),
            trained_on=str(data.get("trained_on", "")),
        )
        if model.features != FEATURES:
            raise ValueError(f"abstention parameters {path or PARAMETERS} are for other signals: {model.features}")
        return model

    def to_dict(self) -> dict[str, object]:
        """Return the parameters as written to the parameter file."""
        return {
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "strictness": self.strictness,
            "trained_on": self.trained_on,
        }

    def confidence(self, signals: Signals, missing_names: int) -> float:
        """Return the probability that the evidence answers, lowered tenfold for each name of the
        question that no retrieved passage mentions (the model sees few such questions in training,
        and quoting what China said is never an answer about Russia)."""
        return self.probability(signals) * MISSING_NAME_FACTOR**missing_names

    def probability(self, signals: Signals) -> float:
        """Return the model's probability that the evidence answers the question."""
        return logistic(signals.vector(), self.mean, self.scale, self.coef, self.intercept)


def logistic(
    values: Sequence[float], mean: Sequence[float], scale: Sequence[float], coef: Sequence[float], intercept: float
) -> float:
    """A logistic regression's probability for ``values``, standardised by ``mean`` and ``scale``."""
    z = intercept + sum(c * (x - m) / s for c, x, m, s in zip(coef, values, mean, scale, strict=True))
    return sigmoid(z)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
