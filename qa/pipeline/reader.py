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
from qa.pipeline.abstain import AbstentionModel, Retrieved, Scored, absent_terms, signals
from qa.text import content_stems, key_terms
from qa.types import NEAREST, NO_ANSWER, Article, Citation, Evidence, Hit, Name, Sentence

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

    def __init__(self, cross_encoder: CrossEncoder, config: Config, abstention: AbstentionModel | None = None) -> None:
        self.cross_encoder = cross_encoder
        self.config = config
        self.abstention = abstention or AbstentionModel.load(config.abstention_model or None)

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
        sentences = _unique_sentences(_worth_reading(hits, self.config.read_margin))
        sentences = _most_relevant(question, sentences, self.config.read_max_sentences)
        if not sentences:
            return _abstain(NOTHING_FOUND, (), float("-inf"), (), (), 0.0)
        terms = [Name(t) for t in key_terms(question)] if required_terms is None else list(required_terms)
        scores = self.cross_encoder.score(question, [s.text for s in sentences])
        ranked = sorted(zip(scores.tolist(), sentences, strict=True), key=lambda pair: -pair[0])
        best = ranked[0][0]
        evidence = tuple(
            Evidence(s.doc_id, s.start, s.end, s.text, round(score, 4)) for score, s in ranked[: self.evidence_kept]
        )
        retrieved = [
            Retrieved(h.score, h.passage.text, a.title, a.doc_id, a.date)
            for h in hits
            for a in (article(h.passage.doc_id),)
        ]
        missing = absent_terms(terms, retrieved)
        scored = [Scored(score, s.text, s.doc_id) for score, s in ranked]
        found = signals(question, scored, retrieved, terms, self._rescore, missing)
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
            nearest = self._nearest(question, ranked, article)
            return _abstain(reason, nearest, best, missing, evidence, confidence)
        citations = tuple(_cite(n, s, score, article) for n, (score, s) in enumerate(chosen, start=1))
        return Reading(quoted(citations), citations, False, best, (), evidence, confidence)

    def _rescore(self, questions: Sequence[str], sentence: str) -> list[float]:
        return self.cross_encoder.score_pairs([(q, sentence) for q in questions]).tolist()

    def _choose(self, ranked: Sequence[tuple[float, Sentence]]) -> list[tuple[float, Sentence]]:
        """The answer sentences: the best, and those close to it that are not redundant."""
        floor = max(self.config.support_threshold, ranked[0][0] - self.config.support_margin)
        chosen: list[tuple[float, Sentence]] = []
        for score, sentence in ranked:
            if score < floor or len(chosen) >= self.config.max_answer_sentences:
                break
            if not _redundant(sentence, [s for _, s in chosen]):
                chosen.append((score, sentence))
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


def _unique_sentences(hits: Sequence[Hit]) -> list[Sentence]:
    seen: set[tuple[str, int]] = set()
    out: list[Sentence] = []
    for hit in hits:
        for sentence in hit.passage.sentences:
            key = (sentence.doc_id, sentence.start)
            if key not in seen:
                seen.add(key)
                out.append(sentence)
    return out


def _most_relevant(question: str, sentences: list[Sentence], limit: int) -> list[Sentence]:
    """Keep at most ``limit`` sentences for the cross-encoder: those sharing most content words
    with the question, then those of better-ranked passages (the input order)."""
    if len(sentences) <= limit:
        return sentences
    focus = content_stems(question)
    overlap = [len(content_stems(s.text) & focus) for s in sentences]
    keep = sorted(sorted(range(len(sentences)), key=lambda i: -overlap[i])[:limit])
    return [sentences[i] for i in keep]


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
