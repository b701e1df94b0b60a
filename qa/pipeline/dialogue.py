"""Follow-up questions without an LLM: rewrite a question that points back into one that stands alone.

A question in a conversation may point back to a person ("Where was he?"), to something
said ("Who said that?"), to a topic it leaves out ("And what did Pakistan's prime minister
say?"), or only name a new subject ("What about South Korea?"). ``resolve`` looks through
the earlier turns, most recent first, for what it points to: names in their questions,
people and quotations in the sentences that answered them, and the articles those came
from. It returns the question as it should be searched, the names it borrowed (which an
answer need not mention) and the articles of the turn it points back to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.text import key_terms
from qa.types import Answer

MAX_BORROWED = 4
MAX_QUOTE_WORDS = 8

_LEAD = re.compile(r"^\s*(?:and|also|but|so|then|plus)\b[\s,]*", re.IGNORECASE)
_ELLIPSIS = re.compile(r"^\s*(?:(?:and\s+)?(?:what|how)\s+about|and)\s+(?P<rest>[^?]+?)\s*\??\s*$", re.IGNORECASE)
_VERB_OR_WH = re.compile(
    r"\b(?:what|who|whom|whose|where|when|why|how|which|is|are|was|were|do|does|did|has|have|had|can|could|will|"
    r"would|should|say|said|says)\b",
    re.IGNORECASE,
)
_PERSON_PRONOUN = re.compile(r"\b(?P<word>he|she|him|his|her)\b", re.IGNORECASE)
_GENDERED = re.compile(r"\b(?:(?P<he>he|him|his|himself|mr)|(?P<she>she|her|hers|herself|mrs|ms))\b", re.IGNORECASE)
_OTHER_ANAPHOR = re.compile(
    r"\b(?:it|its|they|them|their|there|this|these|those|else|the same)\b"
    r"|\bthat\b(?!\s+(?:(?-i:[A-Z])|the\b|a\b|an\b|he\b|she\b|they\b|it\b|we\b|i\b|you\b))",
    re.IGNORECASE,
)
_STATEMENT = re.compile(
    r"\b(?P<verb>say|said|says|saying|mean|meant|claim|claimed|announce|announced|write|wrote|tell|told|add|added)"
    r"\s+(?P<ref>that|it|this|so)(?=\s*(?:[?.!,]|$|\b(?:about|when|while|before|after|where|in|at|on|to)\b))",
    re.IGNORECASE,
)
_ABOUT = re.compile(r"\b(?:about|regarding|concerning)\s+[^?.!,;]{2,60}", re.IGNORECASE)
_QUOTED = re.compile(r"[“\"]([^”\"]{3,300})[”\"]")
_NAME_TOKEN = re.compile(r"[A-Z][\w.’'-]*")
_SPEECH_VERB = re.compile(
    r"^\s*,?\s*(?:had\s+|has\s+)?(?:said|says|told|added|stated|announced|wrote|argued|explained|noted|warned|"
    r"claimed|insisted|urged|asked|replied|tweeted)\b"
)

# Words in a name that make it a title (the person follows it), or make it no person at all.
_TITLES = frozenset(
    """president prime minister foreign secretary spokesperson spokesman spokeswoman mr mrs ms dr sen senator rep
    governor gov mayor chancellor king queen prince princess pope general gen judge justice chairman chairwoman
    chief ambassador commissioner director professor prof premier sheikh vice deputy lord lady sir dame coach
    captain officer sergeant lieutenant colonel admiral ceo leader""".split()
)
_ROLES = frozenset(
    """spokesperson spokesman spokeswoman minister president secretary official leader ambassador envoy chief
    director chairman premier governor mayor senator general commander analyst professor economist author founder
    ceo executive judge lawyer manager coach captain player officer correspondent reporter editor researcher
    scientist doctor""".split()
)
_NOT_PEOPLE = frozenset(
    """embassy ministry government council committee party nations states union republic kingdom bank company
    corporation group university agency department office court parliament congress senate army forces police
    airport news times post press association organisation organization foundation institute club league
    federation airlines air street square city county province region district island islands river sea ocean
    north south east west korea africa america europe asia""".split()
)


@dataclass(frozen=True)
class Resolution:
    """A question as asked, and as it is searched in the light of the conversation."""

    question: str
    text: str
    borrowed: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()

    @property
    def resolved(self) -> bool:
        """True when the question was rewritten from earlier turns."""
        return self.text != self.question


def points_back(question: str) -> bool:
    """True when ``question`` refers to earlier turns (a pronoun, "and …", "what about …", or a bare "Why?")."""
    if _LEAD.match(question) or _ELLIPSIS.match(question):
        return True
    if _PERSON_PRONOUN.search(question) or _OTHER_ANAPHOR.search(question):
        return True
    return not key_terms(question) and len(question.split()) <= 3


def name_spans(text: str) -> list[str]:
    """Return the runs of capitalised words in ``text`` that are names ("Pakistan Prime Minister Imran Khan")."""
    names = set(key_terms(text))
    spans: list[list[str]] = []
    last_end = -2
    for match in _NAME_TOKEN.finditer(text):
        token = match.group().rstrip(".-")
        bare = re.sub(r"(['’]s|['’])$", "", token).replace(".", "")
        if bare not in names:
            last_end = -2
            continue
        if spans and text[last_end : match.start()] == " " and not re.search(r"['’]s?$", spans[-1][-1]):
            spans[-1].append(token)
        else:
            spans.append([token])
        last_end = match.start() + len(token)
    return [" ".join(re.sub(r"(['’]s|['’])$", "", w) for w in span) for span in spans]


def person_names(text: str) -> list[str]:
    """Return the people named in ``text``, in order: a name after a title or a role, or one that speaks."""
    people: list[str] = []
    for span in name_spans(text):
        words = span.split()
        titled = [i for i, w in enumerate(words) if w.lower().rstrip(".") in _TITLES]
        if titled:
            person = words[titled[-1] + 1 :]
        elif len(words) >= 2 and not any(w.lower() in _NOT_PEOPLE for w in words) and _acts_as_person(text, span):
            person = words
        else:
            continue
        name = " ".join(person)
        if person and name not in people:
            people.append(name)
    return people


def _acts_as_person(text: str, span: str) -> bool:
    at = text.find(span)
    before = text[max(0, at - 40) : at].lower().split()
    after = text[at + len(span) :]
    return bool(before and (before[-1] in _ROLES or before[-1] == "said")) or _SPEECH_VERB.match(after) is not None


def _quotation(sentence: str) -> str | None:
    """Return the first quotation of ``sentence``, cut to a few words, in curly quotes."""
    match = _QUOTED.search(sentence)
    if not match or len(match.group(1).split()) < 2:
        return None
    words = match.group(1).split()
    cut = words[:MAX_QUOTE_WORDS]
    text = " ".join(cut).rstrip(",;:.")
    return f"“{text}{'…' if len(words) > len(cut) else ''}”"


def _strip_context(question: str) -> str:
    """The question without the names a previous resolution appended in parentheses."""
    return re.sub(r"\s*\([^()]*\)\s*$", "", question)


def _searched(answer: Answer) -> str:
    return _strip_context(answer.resolved_question or answer.question)


def _with_ending(question: str, addition: str) -> str:
    """Insert ``addition`` before the question's final punctuation."""
    body = question.rstrip(" ?.!")
    ending = question[len(body) :].strip() or "?"
    return f"{body} {addition}{ending}"


def _pronoun_gender(word: str) -> str:
    return "she" if word.lower() in ("she", "her", "hers", "herself") else "he"


def _gender(person: str, answer: Answer, article_text: Callable[[str], str] | None) -> str | None:
    """ "he" or "she" when the article refers to ``person`` so right after naming them, else None."""
    for c in answer.citations:
        at = c.quote.find(person)
        if at < 0:
            continue
        text = article_text(c.doc_id) if article_text else ""
        after = text[c.start + at + len(person) : c.end + 400] if text[c.start : c.end] == c.quote else c.quote[at:]
        before = c.quote[max(0, at - 5) : at]
        match = _GENDERED.search(before) or _GENDERED.search(after)
        if match:
            return "he" if match.group("he") else "she"
    return None


def _person(
    history: Sequence[Answer], pronoun: str, article_text: Callable[[str], str] | None
) -> tuple[str, Answer] | None:
    """The person ``pronoun`` most likely means: the latest named in a question, else in the sentence
    that answered it, whose articles do not call them by the other gender's pronoun."""
    wanted = _pronoun_gender(pronoun)
    for answer in reversed(history):
        for text in (_searched(answer), *(c.quote for c in answer.citations)):
            for person in person_names(text):
                if _gender(person, answer, article_text) in (None, wanted):
                    return person, answer
        for c in answer.citations:  # who said the cited sentences ("she said" resolved at indexing)
            speaker = c.speaker
            if speaker is not None and speaker.kind == "pronoun" and speaker.mention_start is not None:
                said = c.quote[speaker.mention_start - c.start : speaker.mention_end - c.start]
                if _pronoun_gender(said) == wanted and said.lower() in ("he", "she"):
                    return speaker.name, answer
    return None


def _replace_person_pronoun(question: str, person: str) -> str:
    match = _PERSON_PRONOUN.search(question)
    assert match is not None
    word = match.group("word").lower()
    following = question[match.end() :].lstrip()
    possessive = word == "his" or (
        word == "her"
        and bool(re.match(r"[a-z]", following))
        and not re.match(r"(?:to|about|in|on|at|for|with|from|of|and|or|when|where|if)\b", following)
    )
    return question[: match.start()] + (f"{person}’s" if possessive else person) + question[match.end() :]


def _replace_subject(previous: str, subject: str) -> str:
    """``previous`` with its first name replaced by ``subject`` ("What did China say …" → "What did Pakistan say …")."""
    spans = name_spans(previous)
    if not spans:
        return _with_ending(previous, f"({subject})")
    name = r"\W+".join(map(re.escape, spans[0].split()))
    first = re.search(rf"(?:\bthe\s+)?{name}(?:['’]s?\s+[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*)?", previous)
    if first is None:
        return _with_ending(previous, f"({subject})")
    return previous[: first.start()] + subject + previous[first.end() :]


def _topic(history: Sequence[Answer]) -> str | None:
    """The most recent "about …" phrase of the conversation."""
    for answer in reversed(history):
        match = _ABOUT.search(_searched(answer))
        if match:
            return match.group().strip()
    return None


def _context_names(answer: Answer, exclude: Sequence[str]) -> list[str]:
    """Names of a turn, for a question that points at it without naming anything."""
    seen = {w.lower() for name in exclude for w in name.split()}
    names = name_spans(_searched(answer)) or (name_spans(answer.citations[0].quote) if answer.citations else [])
    out = []
    for name in names:
        if not any(w.lower() in seen for w in name.split()):
            out.append(name)
            seen.update(w.lower() for w in name.split())
    return out[:MAX_BORROWED]


def resolve(question: str, history: Sequence[Answer], article_text: Callable[[str], str] | None = None) -> Resolution:
    """Return ``question`` resolved against the earlier answers of its conversation (oldest first).

    ``article_text(doc_id)`` lets it read around a cited sentence (to tell "he" from "she").
    """
    if not history or not points_back(question):
        return Resolution(question, question)
    own = key_terms(question)
    text, borrowed, anchor = question, [], history[-1]

    ellipsis = _ELLIPSIS.match(question)
    if ellipsis and own and not _VERB_OR_WH.search(ellipsis.group("rest")):
        # "What about South Korea?": the previous question, asked of the new subject.
        text = _replace_subject(_searched(anchor), ellipsis.group("rest").strip())
    else:
        pronoun = _PERSON_PRONOUN.search(text)
        if pronoun and (found := _person(history, pronoun.group("word"), article_text)):
            person, anchor = found
            text = _replace_person_pronoun(text, person)
            borrowed.append(person)
        statement = _STATEMENT.search(text)
        quote = _quotation(anchor.citations[0].quote) if anchor.citations else None
        if statement and quote:
            text = text[: statement.start("ref")] + quote + text[statement.end("ref") :]
        if _LEAD.match(question) and not _ABOUT.search(question) and (topic := _topic(history)):
            text = _with_ending(text, topic)
        elif _OTHER_ANAPHOR.search(text) or not own and text == question:
            names = _context_names(anchor, own + borrowed)
            if names:
                text = _with_ending(text, f"({', '.join(names)})")
                borrowed.extend(names)
    doc_ids = tuple(dict.fromkeys(c.doc_id for c in anchor.citations)) if not own else ()
    return Resolution(question, text, tuple(borrowed), doc_ids)
