"""The answer-sentence scorer: which of the retrieved sentences answers the question.

The cross-encoder (a web-search relevance model) rewards a sentence on the question's topic; it does
not know what kind of answer is wanted nor who is speaking. Its logit is one input of a small
logistic regression among others (``Features``): whether the sentence holds the kind of thing asked
for (``qa.pipeline.answer_kind``), whether its speaker is the one a say-question names, how much of
the question's words, names and two-word phrases it and its passage hold, the passage's rerank score
and place, and how early in its article it stands. The model is fitted on SQuAD dev articles
(``python -m benchmarks.sentence_scorer collect``, then ``fit``) and shipped as
``qa/pipeline/sentence_scorer.json``; its output orders the sentences the reader quotes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from qa.pipeline.abstain import logistic
from qa.pipeline.answer_kind import answer_kind, candidates
from qa.text import content_stems, name_found
from qa.types import Hit, Name, Sentence

PARAMETERS = "sentence_scorer.json"
# The kinds of answer whose entity labels say well whether a sentence holds one ("which film …" may be
# answered by a phrase no entity covers: its short answer is tried, but no sentence is judged by it).
PRECISE_KINDS = frozenset({"person", "org", "time", "number", "place"})
_MAX_RANK = 10


@dataclass(frozen=True)
class Features:
    """What makes a retrieved sentence the answer (the model's inputs)."""

    logit: float  # the cross-encoder's logit for (question, sentence)
    below_best: float  # the best logit among the sentences read minus this one's
    type_present: float  # 1 when the question wants a kind of answer (PRECISE_KINDS) and the sentence holds one
    type_missing: float  # 1 when it wants one and the sentence holds none
    speaker_match: float  # 1 when a say-question's names include the sentence's speaker
    speaker_other: float  # 1 when a say-question's names do not include the sentence's (known) speaker
    coverage: float  # share of the question's content words in the sentence
    names: float  # share of the question's names in the sentence (1 when it names none)
    phrases: float  # share of the question's two-word phrases (content words) in the sentence
    context: float  # share of the question's content words in the sentence's passage and title
    passage: float  # the best passage's rerank score minus the sentence's passage's
    passage_rank: float  # 1 / (1 + place of the sentence's passage among those retrieved)
    early: float  # 1 / (1 + place of the passage in its article)

    def vector(self) -> list[float]:
        return [float(getattr(self, name)) for name in FEATURES]  # not astuple: it deep-copies


FEATURES = tuple(f.name for f in fields(Features))


@dataclass(frozen=True)
class Located:
    """A sentence with the passage it was read in: the passage's place among the hits and its score."""

    sentence: Sentence
    rank: int
    score: float
    context: str  # the passage's text and its article's title
    position: int  # the passage's place in its article
    passage_id: str


def features(
    question: str, names: Sequence[Name], located: Sequence[Located], logits: Sequence[float]
) -> list[Features]:
    """The ``Features`` of each sentence of ``located`` (their cross-encoder ``logits`` in the same order)."""
    kind = answer_kind(question)
    focus = content_stems(question)
    pairs = _phrases(question)
    best_logit = max(logits, default=0.0)
    best_passage = max((x.score for x in located), default=0.0)
    wanted = kind in PRECISE_KINDS
    out = []
    for item, logit in zip(located, logits, strict=True):
        sentence = item.sentence
        stems = content_stems(sentence.text)
        present = wanted and bool(candidates(kind, question, sentence))
        speaker = sentence.speaker.name if sentence.speaker else ""
        match = kind == "say" and bool(speaker) and any(_same(n.text, speaker) for n in names)
        out.append(
            Features(
                logit=logit,
                below_best=best_logit - logit,
                type_present=float(present),
                type_missing=float(wanted and not present),
                speaker_match=float(match),
                speaker_other=float(kind == "say" and bool(speaker) and not match),
                coverage=len(stems & focus) / len(focus) if focus else 0.0,
                names=sum(name_found(n, sentence.text) for n in names) / len(names) if names else 1.0,
                phrases=len(pairs & _phrases(sentence.text)) / len(pairs) if pairs else 0.0,
                context=len(content_stems(item.context) & focus) / len(focus) if focus else 0.0,
                passage=best_passage - item.score,
                passage_rank=1.0 / (1 + min(item.rank, _MAX_RANK)),
                early=1.0 / (1 + item.position),
            )
        )
    return out


def _same(name: str, speaker: str) -> bool:
    """Whether a question's name is the speaker ("Hua" for "Hua Chunying", "China" never for a person)."""
    words, theirs = set(name.lower().split()), set(speaker.lower().split())
    return bool(words) and (words <= theirs or theirs <= words)


def _phrases(text: str) -> set[tuple[str, str]]:
    """The pairs of consecutive content words of ``text`` (stemmed)."""
    stems = [next(iter(s)) for w in text.split() if (s := content_stems(w))]
    return set(zip(stems, stems[1:], strict=False))


def located_sentences(hits: Sequence[Hit], title: dict[str, str]) -> list[Located]:
    """Each distinct sentence of ``hits`` once, with its first passage's place and score, in hit order."""
    seen: set[tuple[str, int]] = set()
    out: list[Located] = []
    for rank, hit in enumerate(hits):
        context = f"{title.get(hit.passage.doc_id, '')} {hit.passage.text}"
        for sentence in hit.passage.sentences:
            key = (sentence.doc_id, sentence.start)
            if key not in seen:
                seen.add(key)
                out.append(Located(sentence, rank, hit.score, context, hit.passage.position, hit.passage.passage_id))
    return out


class SentenceScorer:
    """The fitted model: the probability that a sentence holds the answer, from the ``features`` it names
    (a subset of ``FEATURES``)."""

    def __init__(
        self,
        mean: Sequence[float],
        scale: Sequence[float],
        coef: Sequence[float],
        intercept: float,
        features: Sequence[str] = FEATURES,
    ):
        unknown = set(features) - set(FEATURES)
        if unknown or not len(mean) == len(scale) == len(coef) == len(features):
            raise ValueError(f"the sentence scorer needs one weight for each of its features, among {FEATURES}")
        self.mean, self.scale, self.coef, self.intercept = list(mean), list(scale), list(coef), float(intercept)
        self.columns = [FEATURES.index(name) for name in features]

    @classmethod
    def load(cls, path: str | Path | None = None) -> SentenceScorer:
        """The parameters of ``path``, or those shipped with the package."""
        text = Path(path).read_text() if path else resources.files(__package__).joinpath(PARAMETERS).read_text()
        data = json.loads(text)
        try:
            return cls(data["mean"], data["scale"], data["coef"], data["intercept"], data["features"])
        except ValueError as error:
            raise ValueError(f"{path or PARAMETERS}: {error}: refit it") from None

    def score(self, found: Sequence[Features]) -> list[float]:
        """The probability, for each sentence's features, that it holds the answer."""
        vectors = ([f.vector()[i] for i in self.columns] for f in found)
        return [logistic(v, self.mean, self.scale, self.coef, self.intercept) for v in vectors]
