"""The extractive sentence reader: evidence sentences become a cited answer.

Every sentence of the retrieved passages is scored against the question with the
cross-encoder; the best few (relevant, not redundant) are the answer, each followed by
its citation marker. Whether to answer at all is ``qa.pipeline.abstain``'s call: the estimated
probability that the evidence answers must reach the strictness. An abstention says what is
missing ("None of the articles mention Russia": quoting what China said is no answer about
Russia) and offers the nearest information the articles do hold, cited, as such.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from qa.config import Config
from qa.models import CrossEncoder
from qa.pipeline.abstain import (
    AbstentionModel,
    Likeliest,
    Retrieved,
    Scored,
    Signals,
    absent_terms,
    sigmoid,
    signals,
)
from qa.pipeline.answer_kind import answer_kind, candidates, short_answer
from qa.pipeline.sentence_scorer import (
    PRECISE_KINDS,
    Features,
    Located,
    SentenceScorer,
    features,
    located_sentences,
)
from qa.text import content_stems, key_terms
from qa.types import NEAREST, NO_ANSWER, Article, Citation, Evidence, Hit, Name, Sentence, ShortAnswer

__all__ = ["NEAREST", "NO_ANSWER", "Reading", "SentenceReader"]

NOTHING_FOUND = "No passage of the articles searched matches the question."

_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Reading:
    """What the reader concluded from the evidence."""

    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    best_score: float
    missing_terms: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    confidence: float | None = None  # estimated probability that the evidence answers
    reason: str = ""  # why the reader abstained ("" when it answers)
    short: ShortAnswer | None = None  # the short answer, when the question asks for one
    signals: Signals | None = None  # what the abstention model read (None when nothing was found)


def _tokens(text: str) -> set[str]:
    return {t.lower() for t in _TOKEN.findall(text)}


def _redundant(candidate: Sentence, chosen: Sequence[Sentence], limit: float = 0.6) -> bool:
    words = _tokens(candidate.text)
    for other in chosen:
        other_words = _tokens(other.text)
        union = words | other_words
        if union and len(words & other_words) / len(union) > limit:
            return True
    return False


class SentenceReader:
    """Answers with the evidence sentences that best answer the question, or abstains."""

    evidence_kept = 10
    nearest_kept = 2

    def __init__(
        self,
        cross_encoder: CrossEncoder,
        config: Config,
        abstention: AbstentionModel | None = None,
        scorer: SentenceScorer | None = None,
    ) -> None:
        self.cross_encoder = cross_encoder
        self.config = config
        self.abstention = abstention or AbstentionModel.load(config.abstention_model or None)
        self.scorer = scorer or SentenceScorer.load()

    def read(
        self,
        question: str,
        hits: Sequence[Hit],
        article: Callable[[str], Article],
        required_terms: Sequence[Name] | None = None,
    ) -> Reading:
        """Return the answer (or an abstention) for ``question`` from the retrieved passages.

        ``required_terms`` are the names the evidence must mention (``qa.question.question_names``;
        default: the capitalised words of ``question``, ``key_terms``); a follow-up passes its
        own, not those it borrowed from the conversation.
        """
        terms = [Name(t) for t in key_terms(question)] if required_terms is None else list(required_terms)
        located, logits, found_features = self.candidates(question, hits, article, terms)
        if not located:
            return _abstain(NOTHING_FOUND, (), float("-inf"), (), (), 0.0)
        # the scorer was fitted on SQuAD, which asks next to no say-questions: those keep the logit's order
        say = answer_kind(question) == "say"
        chances = [sigmoid(x) for x in logits] if say else self.scorer.score(found_features)
        top = max(range(len(chances)), key=chances.__getitem__)
        view = found_features[top]
        likeliest = Likeliest(view.speaker_match, view.names)
        # (chance, logit, sentence), the likeliest answer first; the abstention reads the logits' order
        ranked = sorted(zip(chances, logits, (x.sentence for x in located), strict=True), key=lambda t: -t[0])
        by_logit = sorted(ranked, key=lambda t: -t[1])
        best = by_logit[0][1]
        evidence = tuple(
            Evidence(s.doc_id, s.start, s.end, s.text, round(logit, 4)) for _, logit, s in ranked[: self.evidence_kept]
        )
        retrieved = [
            Retrieved(h.score, h.passage.text, a.title, a.doc_id, a.date)
            for h in hits
            for a in (article(h.passage.doc_id),)
        ]
        missing = absent_terms(terms, retrieved)
        scored = [Scored(logit, s.text, s.doc_id) for _, logit, s in by_logit]
        found = signals(question, scored, retrieved, terms, self._rescore, missing, likeliest)
        confidence = round(self.abstention.confidence(found, len(missing)), 4)
        strictness = self.abstention.strictness if self.config.strictness is None else self.config.strictness
        chosen = self._choose(ranked) if confidence >= strictness else []
        if not chosen:
            if missing:
                reason = f"None of the articles mention {_join(missing)}."
            elif confidence < strictness:
                reason = (
                    "The passages found on this subject do not seem to state what was asked "
                    f"(confidence {confidence:.2f}, below the strictness {strictness:.2f})."
                )
            else:
                reason = "No sentence of the passages found is close enough to the question to quote as an answer."
            nearest = self._nearest(question, [(logit, s) for _, logit, s in ranked], article)
            return replace(_abstain(reason, nearest, best, missing, evidence, confidence), signals=found)
        citations = tuple(_cite(n, s, logit, article) for n, (_, logit, s) in enumerate(chosen, start=1))
        short = _short(question, chosen, citations)
        text = (f"{short.text} [{short.number}]\n\n" if short else "") + quoted(citations)
        return Reading(text, citations, False, best, (), evidence, confidence, short=short, signals=found)

    def candidates(
        self, question: str, hits: Sequence[Hit], article: Callable[[str], Article], terms: Sequence[Name]
    ) -> tuple[list[Located], list[float], list[Features]]:
        """The sentences read (those of the passages worth reading, at most ``read_max_sentences``), their
        cross-encoder logits and their features for the answer-sentence scorer."""
        titles = {h.passage.doc_id: article(h.passage.doc_id).title for h in hits}
        worth = {h.passage.passage_id for h in _worth_reading(hits, self.config.read_margin)}
        every = located_sentences(hits, titles)
        read = [x for x in every if x.passage_id in worth] + _typed_beyond(question, every, worth)
        located = _most_relevant(question, read, self.config.read_max_sentences)
        if not located:
            return [], [], []
        logits = self.cross_encoder.score(question, [x.sentence.text for x in located]).tolist()
        return located, logits, features(question, terms, located, logits)

    def _rescore(self, questions: Sequence[str], sentence: str) -> list[float]:
        return self.cross_encoder.score_pairs([(q, sentence) for q in questions]).tolist()

    def _choose(self, ranked: Sequence[tuple[float, float, Sentence]]) -> list[tuple[float, float, Sentence]]:
        """The answer sentences: the likeliest (when the cross-encoder finds it relevant, or the scorer more
        likely than not the answer), then, likeliest first, those the cross-encoder scores within the margin
        of it and that are not redundant."""
        top_chance, top_logit, _ = ranked[0]
        if top_logit < self.config.support_threshold and top_chance < 0.5:
            return []
        floor = max(self.config.support_threshold, top_logit - self.config.support_margin)
        chosen = [ranked[0]]
        for chance, logit, sentence in ranked[1:]:
            if len(chosen) >= self.config.max_answer_sentences:
                break
            if logit >= floor and not _redundant(sentence, [s for *_, s in chosen]):
                chosen.append((chance, logit, sentence))
        return chosen

    def _nearest(
        self, question: str, ranked: Sequence[tuple[float, Sentence]], article: Callable[[str], Article]
    ) -> tuple[Citation, ...]:
        """The best sentences that the cross-encoder finds relevant (a positive logit) or that share a
        content word with the question: what the articles do say."""
        focus = content_stems(question)
        picked: list[tuple[float, Sentence]] = []
        for score, sentence in ranked[: self.evidence_kept]:
            if len(picked) >= self.nearest_kept:
                break
            related = score > 0 or bool(content_stems(sentence.text) & focus)
            if related and not _redundant(sentence, [s for _, s in picked]):
                picked.append((score, sentence))
        return tuple(_cite(n, s, score, article) for n, (score, s) in enumerate(picked, start=1))


def _worth_reading(hits: Sequence[Hit], margin: float, keep: int = 2) -> Sequence[Hit]:
    """The passages whose sentences are read: the first ``keep``, and the others that scored
    within ``margin`` of the best (all of them when ``margin`` is 0)."""
    if margin <= 0 or len(hits) <= keep:
        return hits
    best = max(h.score for h in hits)
    return [h for i, h in enumerate(hits) if i < keep or h.score >= best - margin]


def _typed_beyond(question: str, located: Sequence[Located], read: set[str], limit: int = 8) -> list[Located]:
    """The sentences of the passages not worth reading as a whole that hold the kind of answer asked for and a
    content word of the question: the retrieved passage that says when may rank below those on the topic."""
    kind = answer_kind(question)
    if kind not in PRECISE_KINDS:
        return []
    focus = content_stems(question)
    beyond = (x for x in located if x.passage_id not in read and content_stems(x.sentence.text) & focus)
    return [x for x in beyond if candidates(kind, question, x.sentence)][:limit]


def _most_relevant(question: str, located: list[Located], limit: int) -> list[Located]:
    """Keep at most ``limit`` sentences for the cross-encoder: those sharing most content words
    with the question, then those of better-ranked passages (the input order)."""
    if len(located) <= limit:
        return located
    focus = content_stems(question)
    overlap = [len(content_stems(x.sentence.text) & focus) for x in located]
    keep = sorted(sorted(range(len(located)), key=lambda i: -overlap[i])[:limit])
    return [located[i] for i in keep]


def _short(
    question: str, chosen: Sequence[tuple[float, float, Sentence]], citations: Sequence[Citation]
) -> ShortAnswer | None:
    """The short answer from the first quoted sentence that holds one, when the question asks for one."""
    kind = answer_kind(question)
    for (_, _, sentence), citation in zip(chosen, citations, strict=True):
        found = short_answer(kind, question, sentence)
        if found is not None and kind is not None:
            return ShortAnswer(found.text, sentence.doc_id, found.start, found.end, citation.number, kind)
    return None


def _cite(number: int, sentence: Sentence, score: float, article: Callable[[str], Article]) -> Citation:
    return Citation.quoting(number, article(sentence.doc_id), sentence.start, sentence.end, score, sentence.speaker)


def quoted(citations: Sequence[Citation]) -> str:
    """The citations' quotes, each followed by its marker and, where the quote does not name its
    speaker, preceded by them: "Hua Chunying (Chinese foreign ministry spokesperson): “…,” she said. [3]"."""
    return " ".join(f"{c.attribution + ': ' if c.attribution else ''}{c.quote} [{c.number}]" for c in citations)


def abstention(reading: Reading, reason: str) -> Reading:
    """``reading`` turned into an abstention for ``reason``, offering its best sentences as the nearest information."""
    nearest = tuple(replace(c, number=n) for n, c in enumerate(reading.citations[: SentenceReader.nearest_kept], 1))
    return _abstain(reason, nearest, reading.best_score, reading.missing_terms, reading.evidence, 0.0)


def _abstain(
    reason: str,
    nearest: tuple[Citation, ...],
    best: float,
    missing: Sequence[str],
    evidence: tuple[Evidence, ...],
    confidence: float,
) -> Reading:
    """An abstention that says why, then offers the ``nearest`` sentences (cited, as not an answer)."""
    text = f"{NO_ANSWER} {reason}"
    if nearest:
        text += f"\n\n{NEAREST} " + quoted(nearest)
    return Reading(text, nearest, True, best, tuple(missing), evidence, confidence, reason)


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
