"""The extractive sentence reader: evidence sentences become a cited answer.

Every sentence of the retrieved passages is scored against the question with the
cross-encoder; the best few (relevant, not redundant) are the answer, each followed by
its citation marker. The reader abstains when the best sentence scores below the
threshold or when a name the question asks about (a capitalised word or an acronym)
occurs nowhere in the evidence: quoting what China said is no answer about Russia.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.config import Config
from qa.index import Hit
from qa.models import CrossEncoder
from qa.text import FUNCTION_WORDS, content_stems
from qa.types import Article, Citation, Evidence, Sentence

NO_ANSWER = "The articles do not answer this question."

_WORD = re.compile(r"[A-Za-z0-9][\w'’.-]*")
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
    letters); "US" matches "U.S." and "United States" (initials of capitalised words).
    """
    if term.isupper() and len(term) <= 6:
        dotted = r"\.?".join(map(re.escape, term)) + r"\.?"
        if re.search(rf"\b{dotted}(?!\w)", text):
            return True
        initials = r"\s+(?:of\s+|the\s+|and\s+)*".join(rf"{c}[a-z]+" for c in term)
        return re.search(rf"\b{initials}\b", text) is not None
    stem = term if len(term) <= 4 else term[: max(4, len(term) - 2)]
    return re.search(rf"\b{re.escape(stem)}", text, flags=re.IGNORECASE) is not None


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
    """Answers with the evidence sentences that best answer the question."""

    evidence_kept = 10

    def __init__(self, cross_encoder: CrossEncoder, config: Config) -> None:
        self.cross_encoder = cross_encoder
        self.config = config

    def read(
        self,
        question: str,
        hits: Sequence[Hit],
        article: Callable[[str], Article],
        required_terms: Sequence[str] | None = None,
    ) -> Reading:
        """Return the answer (or an abstention) for ``question`` from the retrieved passages.

        ``required_terms`` are the names the evidence must mention (default: those of
        ``question``); a follow-up passes its own, not those it borrowed from the conversation.
        """
        sentences = _unique_sentences(hits)
        sentences = _most_relevant(question, sentences, self.config.read_max_sentences)
        if not sentences:
            return Reading(NO_ANSWER, (), True, float("-inf"))
        evidence = "\n".join([h.passage.text for h in hits] + [article(h.passage.doc_id).title for h in hits])
        terms = key_terms(question) if required_terms is None else required_terms
        missing = tuple(t for t in terms if not term_found(t, evidence))
        scores = self.cross_encoder.score(question, [s.text for s in sentences])
        ranked = sorted(zip(scores.tolist(), sentences, strict=True), key=lambda pair: -pair[0])
        best = ranked[0][0]
        evidence = tuple(
            Evidence(s.doc_id, s.start, s.end, s.text, round(score, 4)) for score, s in ranked[: self.evidence_kept]
        )
        if missing or best < self.config.abstain_threshold:
            text = NO_ANSWER
            if missing:
                text += f" None of them mention {_join(missing)}."
            return Reading(text, (), True, best, missing, evidence)
        floor = max(self.config.support_threshold, best - self.config.support_margin)
        chosen: list[tuple[float, Sentence]] = []
        for score, sentence in ranked:
            if score < floor or len(chosen) >= self.config.max_answer_sentences:
                break
            if not _redundant(sentence, [s for _, s in chosen]):
                chosen.append((score, sentence))
        citations = tuple(_cite(n, s, score, article(s.doc_id)) for n, (score, s) in enumerate(chosen, start=1))
        text = " ".join(f"{c.quote} [{c.number}]" for c in citations)
        return Reading(text, citations, False, best, (), evidence)


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


def _cite(number: int, sentence: Sentence, score: float, article: Article) -> Citation:
    quote = article.text[sentence.start : sentence.end]
    return Citation(
        number=number,
        doc_id=article.doc_id,
        title=article.title,
        source=article.source,
        date=article.date,
        url=article.url,
        quote=quote,
        start=sentence.start,
        end=sentence.end,
        score=round(float(score), 4),
    )


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
