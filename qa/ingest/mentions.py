"""The parse-level pieces of finding who said what (``qa.ingest.speakers`` resolves them): the words that
report speech, quotation spans, and the mention phrases of a dependency parse (subjects of reporting verbs,
"according to", names, roles, the owners of documents)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.tokens import Token


def _words_of(text: str) -> frozenset[str]:
    return frozenset(text.split())


REPORTING_VERBS = _words_of(
    """say says said saying tell tells told telling add adds added adding urge urges urged urging state states stated
    note notes noted explain explains explained explaining warn warns warned warning write writes wrote writing ask
    asks asked announce announces announced announcing continued recall recalls recalled tweet tweets tweeted reply
    replies replied respond responds responded acknowledge acknowledged admit admits admitted argue argues argued
    insist insists insisted claim claims claimed confirm confirms confirmed estimate estimated joke joked describe
    describes described suggest suggests suggested predict predicted stress stressed emphasize emphasized concede
    conceded reiterate reiterated read reads"""
)
_INVERTIBLE = _words_of("say says said add adds added explain explained continued write wrote writes note noted")
# Reporting verbs that stay reporting with an infinitive ("urged them to leave"); others do not ("continued to").
SPEECH_ACTS = _words_of("tell tells told telling urge urges urged urging ask asks asked warn warns warned")
# A reporting verb, "according to", or a quotation introduced by a colon ("…echoed his sentiment: “I will …").
_CUE = re.compile(r"\b(?:" + "|".join(sorted(REPORTING_VERBS)) + r")\b|\baccording to\b|:\s*[“\"]", re.IGNORECASE)
DOCUMENTS = _words_of(
    """statement release post blog letter tweet email memo filing notice announcement message complaint document
    website transcript report account article story study survey write-up editorial column book lawsuit suit ruling
    petition indictment affidavit advisory alert bulletin guidance update warrant opinion decision"""
)
ORGANISATION_NOUNS = _words_of(
    """company firm agency ministry department organization organisation group government administration office
    retailer airline maker manufacturer giant brand bank club league network service board council commission
    committee court police military army embassy union university school hospital center centre foundation institute
    association chain startup carrier operator party campaign station outlet newspaper paper command fund authority
    regulator watchdog body publisher studio platform corporation business team automaker coalition band utility
    tribe palace zoo airport site federation library college force festival"""
)
GOVERNMENT_BODIES = _words_of("agency department division administration bureau office service commission ministry")
NEARBY = 3  # sentences back within which an organisation whose name holds the noun beats a nearer one
PLACE_NOUNS = _words_of("city state county town country village district province region island nation")
SPOKESPEOPLE = _words_of("spokesperson spokesman spokeswoman representative spokespeople")
# Nouns for people that no suffix gives away ("-er", "-ist", "-man" …): a role must name a person.
PEOPLE_NOUNS = _words_of(
    """official chief head leader boss expert doctor nurse lawyer attorney judge mayor governor senator minister
    secretary star champion veteran actress coach quarterback guard forward ceo cfo host father mother son daughter
    wife husband sister brother friend aide analyst executive democrat republican candidate priest bishop nun chef
    athlete rookie teen child kid girl boy victim witness fan mom dad nominee president resident student agent suspect
    general couple"""
)
_AGENT = re.compile(r"(?:er|or|ist|ian|man|woman|person|ee|year-old)$")
_NOT_AGENTS = _words_of(
    """fever number water power center centre order letter paper border matter winter summer computer river tower
    cancer dinner chapter quarter corner floor door color colour error sector factor motor mirror interior minor labor
    favor honor harbor tumor rumor indicator reactor elevator ocean"""
)
# Words a headline puts before a name ("Will Elon Musk …?"): no part of it.
_LEADING_WORDS = _words_of("Will Can Does Did Is Was Has Had How Why What When Where Could Should Would As After If")
# Words before a name that make it a person's and are no part of it ("Dr.", "Mayor", "CEO").
TITLES = _words_of(
    """mr mrs ms dr prof sen rep gov gen lt col sgt capt adm rev president mayor governor senator judge pope king queen
    prince princess minister secretary ceo chairman chairwoman commissioner director chief coach officer sheriff
    professor sir dame lord lady premier chancellor ambassador administrator"""
)
_NAME_TITLES = _words_of("pope king queen prince princess sir dame lord lady")  # part of the name in use
_STRIPPED = (TITLES - _NAME_TITLES) | _words_of("principal superintendent detective deputy attorney former")
NOT_PEOPLE = (
    ORGANISATION_NOUNS
    | PLACE_NOUNS
    | _words_of(
        "road street avenue park river lake bridge airport church senate house congress parliament assembly legislature"
    )
)
TITLE_PATTERN = "(?i:" + "|".join(sorted(TITLES)) + ")"
_HONORIFICS = _words_of("mr mrs ms dr")
ABBREVIATED = {"governor": "gov", "senator": "sen", "representative": "rep", "doctor": "dr", "president": "pres"}
GENDER = {"he": "he", "his": "he", "him": "he", "himself": "he", "she": "she", "her": "she", "hers": "she"}
PRONOUNS = {"he": "he", "his": "he", "she": "she", "her": "she", "it": "it", "its": "it"}
_RELATIVE = _words_of("who that which")
NAME_LABELS = _words_of("PERSON ORG GPE NORP FAC PRODUCT WORK_OF_ART EVENT")
KIND_OF_LABEL = {"PERSON": "person", "ORG": "org", "GPE": "place"}
_OWN_CLAUSE = _words_of("conj xcomp advcl pcomp csubj acl")
_PHRASE_STOP = _words_of("relcl acl appos punct cc conj advcl prep")
_QUOTE_MARK = re.compile(r"[“”\"]")
ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)
# After a name: ", 86," / ", who" / ", the meteorologist" say it is a person's.
PERSON_AFTER = re.compile(r",\s+(?:(\d{1,3}[,\s]|who\b)|(?:a|an|the)\s+(?:[\w’'-]+\s+){0,3}?([\w-]+)[,.])")
QUOTED_SHARE = 0.5  # a sentence at least this much inside quotation marks may continue a quotation

Span = tuple[int, int]


def may_report_speech(sentence: str) -> bool:
    """True when ``sentence`` holds a reporting verb form, "according to" or a colon before a quotation (then it
    is worth parsing)."""
    return bool(_CUE.search(sentence))


def quotations(text: str) -> list[tuple[int, int, int]]:
    """The quoted stretches of ``text`` as (start, end, quotation id), in order, marks included.

    “ opens and ” closes; a straight " opens when none is open, else closes. A quotation still open at the end
    of a paragraph goes on in the next one when that starts with a quotation mark (the news convention), else it
    ends there."""
    spans: list[tuple[int, int, int]] = []
    qid, carry = -1, False
    for line in re.finditer(r"[^\n]+", text):
        opened: int | None = None
        for mark in _QUOTE_MARK.finditer(text, line.start(), line.end()):
            if opened is not None and mark.group() != "“":
                spans.append((opened, mark.end(), qid))
                opened = None
            elif mark.group() != "”":
                if opened is not None:  # “ inside an open quotation: that one was never closed
                    spans.append((opened, mark.start(), qid))
                qid += 0 if carry and not text[line.start() : mark.start()].strip() else 1
                opened = mark.start()
            carry = False
        carry = opened is not None
        if opened is not None:
            spans.append((opened, line.end(), qid))
    return spans


@dataclass(frozen=True)
class Candidate:
    """Someone the article names, where it names them (None: in the headline), and their kind."""

    name: str
    start: int | None
    end: int | None
    kind: str  # "person", "org" or "place"


def clean(name: str) -> str:
    name = re.sub(r"^(?:the|The)\s+", "", name.strip())
    return re.sub(r"\s*(?:['’]s|['’])$", "", name).strip()


def bare_person(name: str) -> str:
    """A person's name without the titles before it ("Principal Eric Toot": "Eric Toot")."""
    words = name.split()
    while len(words) > 1 and words[0].lower().rstrip(".") in _STRIPPED:
        words.pop(0)
    return " ".join(words)


def unheadlined(name: str) -> str:
    """A person's name without a headline's question word before it ("Will Elon Musk": "Elon Musk")."""
    first, _, rest = name.partition(" ")
    return rest if first in _LEADING_WORDS and rest else name


def name_words(name: str) -> list[str]:
    return name.replace(".", " ").split()


def singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def is_title(token: Token) -> bool:
    return token.lower_.rstrip(".") in TITLES


def noun_pattern(noun: str) -> re.Pattern[str]:
    """What an organisation called ``noun`` may have in its name ("the agency": "… Department of Health")."""
    words = GOVERNMENT_BODIES if noun in GOVERNMENT_BODIES else {noun}
    return re.compile(r"\b(?:" + "|".join(sorted(words)) + r")", re.IGNORECASE)


def names_a_person(noun: str) -> bool:
    if noun in _NOT_AGENTS:
        return False
    return noun in PEOPLE_NOUNS or noun in TITLES or bool(_AGENT.search(noun)) or noun == "old"  # "44-year-old"


def joined(head: Token, token: Token) -> bool:
    """True when ``token`` belongs to ``head``'s own noun phrase, not to a clause or a preposition's object:
    "President and CEO Roger Dow", "Griner's agent, Lindsay Colas" (not "the lawyer for Griner")."""
    while token.i != head.i:  # spaCy makes a new Token object on each access: compare positions
        if token.dep_ not in ("compound", "conj", "appos", "flat", "cc"):
            return False
        token = token.head
    return True


def _nsubj(verb: Token) -> Token | None:
    """The verb's subject: the nearest before it when the parse gives two ("Key quote: "…," Zandi told")."""
    subjects = [c for c in verb.children if c.dep_ == "nsubj"]
    subject = max((c for c in subjects if c.i < verb.i), key=lambda c: c.i, default=subjects[0] if subjects else None)
    if subject is not None and subject.lower_ in _RELATIVE and verb.dep_ == "relcl":
        return verb.head  # "Blagovolina, who said …"
    return subject


def speech_subject(verb: Token) -> Token | None:
    """The subject of a reporting verb: its own, one after it ("said Smith"), or its clause's ("…, telling")."""
    subject = _nsubj(verb)
    if subject is None and (verb.lower_ in _INVERTIBLE or (verb.i > 0 and verb.nbor(-1).is_punct)):
        subject = next(
            (c for c in verb.rights if c.dep_ in ("dobj", "attr", "npadvmod") and (c.pos_ == "PROPN" or c.ent_type_)),
            None,
        )
    if subject is None and verb.tag_ == "VBG" and verb.sent.root is not verb:  # "…, telling the court"
        return _nsubj(verb.sent.root)
    node = verb
    while subject is None and node.dep_ in _OWN_CLAUSE and node.head is not node:
        node = node.head
        subject = _nsubj(node)
    return subject


def according_object(according: Token) -> Token | None:
    """X in "according to X"."""
    to = next((c for c in according.rights if c.lower_ == "to"), None)
    if to is None and according.i + 1 < len(according.doc):
        to = according.nbor(1)
    return next((c for c in to.children if c.dep_ == "pobj"), None) if to is not None else None


def in_document(verb: Token) -> bool:
    """True for "said in a statement", "wrote in a blog post", "saying in a release"."""
    return any(
        prep.dep_ == "prep" and any(singular(o.lower_) in DOCUMENTS for o in prep.children if o.dep_ == "pobj")
        for prep in verb.children
    )


def phrase_span(head: Token) -> tuple[int, int]:
    """Character span (within its Doc) of the noun phrase ``head`` heads, without clauses, appositives or commas."""
    tokens = [head]
    for child in head.children:
        if child.dep_ not in _PHRASE_STOP or (child.dep_ == "prep" and child.i > head.i):
            tokens += list(child.subtree)
    span = head.doc[min(t.i for t in tokens) : max(t.i for t in tokens) + 1]
    return span.start_char, span.end_char


def name_span(head: Token) -> tuple[int, int, str, bool]:
    """(first token, end token, entity label, titled) of the name a proper noun gives: the entity holding it, or
    the run of proper nouns ending at it; a title before it ("Dr.", "Mayor") is left out and makes it a person."""
    doc = head.doc
    ent = next((e for e in doc.ents if e.start <= head.i < e.end), None)
    first = head.i
    while first > 0 and doc[first - 1].dep_ in ("compound", "flat") and doc[first - 1].pos_ == "PROPN":
        first -= 1
    label = ent.label_ if ent is not None else ""
    titles = [t.i for t in doc[first : head.i] if is_title(t)]
    if titles:
        return titles[-1] + 1, head.i + 1, label, True
    if ent is not None and label in NAME_LABELS:
        return ent.start, ent.end, label, False
    return first, head.i + 1, label, False


def document_owner(document: Token) -> Token | None:
    """Whose the document is: "Johnson's tweet", "the EPA statement", "a statement from the company"."""
    proper = (c for c in document.children if c.dep_ == "poss" or (c.dep_ == "compound" and c.pos_ == "PROPN"))
    owner = next(proper, None)
    if owner is None and document.i > 1 and document.nbor(-1).tag_ == "POS":
        return document.nbor(-2)
    prep = next((c for c in document.children if c.dep_ == "prep" and c.lower_ in ("from", "by")), None)
    return owner or (next((c for c in prep.children if c.dep_ == "pobj"), None) if prep is not None else None)


def role_words(head: Token, name_start: int) -> str | None:
    """What a name mention calls its speaker: the words before the name ("Foreign ministry spokesperson") or an
    appositive ("…, a spokesperson for the ministry,")."""
    doc = head.doc
    words = [t for t in doc[head.left_edge.i : name_start] if t.dep_ not in ("det", "punct", "cc")]
    words = [t for t in words if t.lower_.rstrip(".") not in _HONORIFICS]
    if words:
        return doc[words[0].i : words[-1].i + 1].text
    appositive = next((c for c in head.children if c.dep_ == "appos"), None)
    if appositive is None:
        return None
    start, end = phrase_span(appositive)
    return ARTICLE.sub("", doc.text[start:end].strip(" ,")) or None
