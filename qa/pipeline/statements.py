"""Questions about statements: "Who said “…”?" and "What did X say (about Y)?".

Their answers come from the speakers the annotation found (``qa.ingest.annotate``), pronouns and
roles resolved: the sentence that says "“…We welcome this,” she said" was said by Hua Chunying.

- **Who said “…”?** The quotation is looked for in the sentences of the retrieved passages (and of
  a search for the quotation alone): a sentence holds it when the quotation's words occur in it, in
  order, allowing for a word or two changed or left out. Found with a speaker, the answer cites it
  with the speaker beside it; found without one, it abstains saying the articles quote it but do
  not say who said it; not found, it abstains saying no article has that statement.
- **What did X say (about Y)?** X's statements among the retrieved sentences: those whose speaker is X
  (by name or surname), holds X's role ("Pakistan's prime minister"), or speaks for X when X is a
  country or organisation (a spokesperson, ministry, embassy or minister the article presents as
  X's: "Chinese foreign ministry spokesperson", "the Chinese Embassy"). About Y, the cross-encoder
  keeps those relevant to the question. They are grouped by speaker, ordered by date. When no
  retrieved sentence is X's, the sentence reader answers as for any question.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.models import CrossEncoder
from qa.pipeline.reader import Reading, abstention, quoted
from qa.text import FUNCTION_WORDS, name_found, term_found
from qa.types import Article, Citation, Evidence, Name, Sentence, ShortAnswer, Speaker

_QUOTES = "\"'“”‘’«»"
_WHO_SAID = re.compile(
    r"^\s*who\s+(?:said|says|told|wrote|stated|added|declared|tweeted|remarked|was\s+quoted\s+as\s+saying)\b"
    r"[\s,:]*(?P<quote>.+?)\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_SAID_WHAT = re.compile(
    r"^\s*what\s+(?:did|does|do|has|have|had|was)\s+(?P<who>.+?)\s+"
    r"(?:say|said|tell|told|state|stated|announce|write|claim|argue|add)\b"
    r"(?:\s+(?:about|on|of|regarding|concerning|after|when)\s+(?P<topic>.+?))?\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w'’-]+")
_POSSESSIVE = re.compile(r"\w['’]s\b")
# What makes a speaker speak for a country or an organisation, as articles put it.
_SPOKESPEOPLE = frozenset(
    """spokesperson spokesman spokeswoman ministry minister embassy ambassador government office president
    premier chancellor secretary official officials department agency foreign statement envoy consulate""".split()
)
MIN_QUOTE_MATCH = 0.8  # share of the quotation's words a sentence must hold, in order
MAX_STATEMENTS = 6
# The confidence of an answer made of X's own statements: found by who said them, not guessed from topic.
SAID_WHAT_CONFIDENCE = 0.8
STATEMENT_MARGIN = 6.0  # about Y: keep statements within this many logits of the best


@dataclass(frozen=True)
class StatementQuestion:
    """A question about a statement: ``kind`` is ``who-said`` (``quote``) or ``said-what`` (``who``, ``topic``)."""

    kind: str
    quote: str = ""
    who: str = ""
    topic: str = ""


def statement_question(question: str) -> StatementQuestion | None:
    """What ``question`` asks about a statement, or None when it asks about something else."""
    if match := _WHO_SAID.match(question):
        quote = match.group("quote").strip().strip(_QUOTES + " ").strip()
        if len(_words(quote)) >= 2:
            return StatementQuestion("who-said", quote=quote)
    if match := _SAID_WHAT.match(question):
        who = match.group("who").strip()
        if who.lower() not in FUNCTION_WORDS and not re.fullmatch(r"(?:he|she|they|it|you|we|i)", who, re.I):
            return StatementQuestion("said-what", who=who, topic=(match.group("topic") or "").strip())
    return None


@dataclass(frozen=True)
class Statements:
    """The sentences that answer a statement question, best first, or why there are none."""

    found: tuple[tuple[float, Sentence], ...]
    reason: str = ""  # why none answers (an abstention's reason)


def who_said(quote: str, sentences: Sequence[Sentence]) -> Statements:
    """The sentences that hold ``quote`` (best match first), or the reason none does."""
    wanted = _words(quote)
    scored = sorted(((_held(wanted, _words(s.text)), s) for s in sentences), key=lambda p: -p[0])
    holding = [(share, s) for share, s in scored if share >= MIN_QUOTE_MATCH]
    if not holding:
        return Statements((), "No article has that statement.")
    spoken = [(share, s) for share, s in holding if s.speaker is not None]
    if not spoken:
        return Statements((), "The articles quote it, but do not say who said it.")
    return Statements(tuple(spoken[:1]))


def said_what(
    who: str,
    names: Sequence[Name],
    question: str,
    sentences: Sequence[Sentence],
    cross_encoder: CrossEncoder,
    topic: bool,
    article: Callable[[str], Article],
) -> Statements:
    """``who``'s statements among ``sentences``: by name, by role, or for a country or organisation."""
    theirs = [s for s in sentences if s.speaker is not None and speaks_for(s.speaker, who, names)]
    if not theirs:
        return Statements(())
    scores = cross_encoder.score(question, [s.text for s in theirs]).tolist()
    ranked = sorted(zip(scores, theirs, strict=True), key=lambda p: -p[0])
    if topic:
        ranked = [(score, s) for score, s in ranked if score >= max(0.0, ranked[0][0] - STATEMENT_MARGIN)]
    kept = ranked[:MAX_STATEMENTS]
    if not kept:
        return Statements(())
    # Grouped by speaker (the most relevant speaker first), each speaker's statements by date, then in order.
    first_seen = {}
    for score, s in kept:
        first_seen.setdefault(s.speaker.name if s.speaker else "", score)

    def order(pair: tuple[float, Sentence]) -> tuple[float, str, str, int]:
        s = pair[1]
        return (-first_seen[s.speaker.name if s.speaker else ""], article(s.doc_id).date or "", s.doc_id, s.start)

    return Statements(tuple(sorted(kept, key=order)))


def speaks_for(speaker: Speaker, who: str, names: Sequence[Name]) -> bool:
    """True when ``speaker`` is ``who`` (by name or surname), holds the role ``who`` names, or speaks for
    the country or organisation ``who`` names."""
    said_by = f"{speaker.name} {speaker.role or ''}"
    words = [w.removesuffix("'s") for w in _words(who)]
    role_words = [w for w in words if w not in FUNCTION_WORDS and not any(w in n.text.lower() for n in names)]
    is_named = bool(names) and all(name_found(n, speaker.name) for n in names)
    if names and role_words and _POSSESSIVE.search(who):  # "Imran Khan's foreign minister": someone else, by role
        of_person = any(n.label == "PERSON" for n in names)
        return (
            not is_named
            and (of_person or all(name_found(n, said_by) for n in names))
            and all(term_found(w, speaker.role or "") for w in role_words)
        )
    if is_named:
        return True
    if names:
        named = all(name_found(n, said_by) for n in names)
        if not named:
            return False
        if role_words:  # "Pakistan's prime minister": the role too
            return all(term_found(w, speaker.role or "") for w in role_words)
        # "China": a spokesperson, ministry, embassy or minister of China speaks for it
        return any(w in _SPOKESPEOPLE for w in _words(said_by)) or any(
            n.label in ("GPE", "NORP", "ORG") and name_found(n, speaker.name) for n in names
        )
    return bool(role_words) and all(term_found(w, said_by) for w in role_words)


def statement_citations(
    found: Sequence[tuple[float, Sentence]], article: Callable[[str], Article]
) -> tuple[Citation, ...]:
    """The found sentences cited in order, each with its speaker."""
    return tuple(
        Citation.quoting(n, article(s.doc_id), s.start, s.end, score, s.speaker)
        for n, (score, s) in enumerate(found, start=1)
    )


def statement_evidence(found: Sequence[tuple[float, Sentence]]) -> tuple[Evidence, ...]:
    """The found sentences as evidence."""
    return tuple(Evidence(s.doc_id, s.start, s.end, s.text, round(score, 4)) for score, s in found)


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def _held(wanted: Sequence[str], words: Sequence[str]) -> float:
    """The share of ``wanted`` that occurs, in order, within one stretch of ``words`` a little longer than it
    (a word or two changed or left out; never words scattered over a long sentence)."""
    if not wanted or not words:
        return 0.0
    width = len(wanted) + 2
    best = 0
    for start in range(max(1, len(words) - width + 1)):
        window = list(words[start : start + width])
        matcher = difflib.SequenceMatcher(None, list(wanted), window, autojunk=False)
        best = max(best, sum(b.size for b in matcher.get_matching_blocks()))
        if best == len(wanted):
            break
    return best / len(wanted)


def read_statement(
    statement: StatementQuestion,
    question: str,
    reading: Reading,
    sentences: Sequence[Sentence],
    names: Sequence[Name],
    cross_encoder: CrossEncoder,
    article: Callable[[str], Article],
    strictness: float,
) -> Reading:
    """The answer to a statement question from ``sentences``, given the sentence reader's ``reading`` of it
    (returned as it is when the statement path has nothing to add: no statement of X was retrieved)."""
    if statement.kind == "who-said":
        found = who_said(statement.quote, sentences)
        confidence = found.found[0][0] if found.found else 0.0
    else:
        if reading.missing_terms:  # "None of the articles mention Russia": nothing of theirs to quote
            return reading
        found = said_what(statement.who, names, question, sentences, cross_encoder, bool(statement.topic), article)
        if not found.found:
            return reading
        confidence = max(reading.confidence or 0.0, SAID_WHAT_CONFIDENCE)
    if not found.found:
        return abstention(reading, found.reason)
    if confidence < strictness:
        return abstention(
            reading, f"Too unsure of the statement (confidence {confidence:.2f}, below {strictness:.2f})."
        )
    citations = statement_citations(found.found, article)
    evidence = statement_evidence(found.found) + reading.evidence
    text = quoted(citations)
    short = None
    if statement.kind == "who-said":  # the speaker first, named in the sentence or not: "Hua Chunying (…): “…” [1]"
        c = citations[0]
        text = f"{c.speaker.label()}: {c.quote} [{c.number}]" if c.speaker is not None else text
        citations, short = speaker_short(citations, sentences, article)
        if short is not None:
            naming = citations[short.number - 1]
            if naming.number > 1:  # the sentence that names the speaker, cited after the statement
                text += f" {naming.quote} [{naming.number}]"
            text = f"{short.text} [{short.number}]\n\n{text}"
    return Reading(text, citations, False, found.found[0][0], (), evidence[:10], round(confidence, 4), short=short)


def speaker_short(
    citations: tuple[Citation, ...], sentences: Sequence[Sentence], article: Callable[[str], Article]
) -> tuple[tuple[Citation, ...], ShortAnswer | None]:
    """Who said the first citation's statement, as a short answer: the words that name its speaker, in the
    cited sentence or, when it says only "she said", in the sentence of the article that names them (then
    cited too, after the others). None when the article names the speaker nowhere but in its headline."""
    first = citations[0]
    speaker = first.speaker
    if speaker is None or speaker.start is None or speaker.end is None:
        return citations, None
    start, end = speaker.start, speaker.end
    holder = next((c for c in citations if c.doc_id == first.doc_id and c.start <= start and end <= c.end), None)
    if holder is None:
        naming = next((s for s in sentences if s.doc_id == first.doc_id and s.start <= start and end <= s.end), None)
        if naming is None:
            return citations, None
        holder = Citation.quoting(
            len(citations) + 1, article(first.doc_id), naming.start, naming.end, first.score, naming.speaker
        )
        citations = (*citations, holder)
    own = (e for s in sentences if s.doc_id == first.doc_id for e in s.entities)
    labels = {e.label for e in own if e.start < end and start < e.end}
    kind = "org" if labels & {"ORG", "NORP", "GPE"} and "PERSON" not in labels else "person"
    text = article(first.doc_id).text[start:end]
    return citations, ShortAnswer(text, first.doc_id, start, end, holder.number, kind)
