"""What the chat page shows, as pure functions of answers and articles: chat Markdown with linked
citation markers, the sources panel, the library table. Everything that comes from an article is
escaped before it is shown: titles, quotes, passages, names, URLs (only http(s) become links).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from urllib.parse import urlparse

from qa.errors import UnknownArticleError
from qa.types import (
    NEAREST,
    NO_ANSWER,
    Answer,
    Article,
    Catalog,
    Citation,
    FeedStatus,
    LibrarySummary,
    removed_note,
)

CONTEXT_CHARS = 400  # of the article shown on each side of a quoted sentence
SEARCHING = "<em>Searching the articles…</em>"
EARLIER_TURNS_SHOWN = 10  # earlier answers whose sources stay in the panel
FAILED = "<em>Something went wrong while answering; the server log has the details.</em>"
NO_SOURCES = "<p class='qa-meta'>The sources of each answer appear here.</p>"
DRAFTING = "<em>Drafting (to be checked against the sources)…</em>\n\n"
_MARKERS = re.compile(r"\[(\d+)\]")

CSS = """
.qa-source { border-left: 3px solid #999; padding: 2px 10px; margin: 8px 0; }
.qa-source[open] { border-left-color: #c89b00; }
.qa-source summary { cursor: pointer; }
.qa-source mark { background: #ffe58a; color: #111; padding: 0 2px; }
.qa-source.qa-flash { background: rgba(255, 229, 138, 0.35); }
.qa-earlier > summary { cursor: pointer; margin-top: 12px; }
.qa-meta { color: #777; font-size: 0.9em; }
.qa-speaker { font-style: italic; }
.qa-library table { width: 100%; border-collapse: collapse; }
.qa-library th, .qa-library td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #ddd; }
a.qa-cite { text-decoration: none; font-weight: 600; }
.qa-failed { color: #b00020; }
"""

# Citation markers are links to "#source-<turn>-<n>": open that source (and the group of
# earlier answers it may be in) in the panel and show it.
HEAD = """
<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#source-"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const source = document.getElementById(link.getAttribute("href").slice(1));
  if (!source) return;
  for (let d = source; d; d = d.parentElement && d.parentElement.closest("details")) d.open = true;
  source.scrollIntoView({block: "nearest"});
  source.classList.add("qa-flash");
  setTimeout(() => source.classList.remove("qa-flash"), 1500);
}, true);
</script>
"""

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")


def escape_text(text: str) -> str:
    """Return ``text`` safe to show in Markdown: HTML escaped, Markdown syntax neutralised."""
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=False)


def safe_url(url: str | None) -> str | None:
    """Return ``url`` if it is an http(s) address (never ``javascript:`` and the like), else None."""
    if not url:
        return None
    parsed = urlparse(url.strip())
    return url.strip() if parsed.scheme in ("http", "https") and parsed.netloc else None


def source_id(turn: int, number: int) -> str:
    """Return the element id of source ``number`` of the answer to question ``turn`` (from 1)."""
    return f"source-{turn}-{number}"


def marker(turn: int, number: int) -> str:
    """Return the citation marker ``[n]``, a link to its source in the sources panel."""
    return f"<a href='#{source_id(turn, number)}' class='qa-cite' title='Show source {number}'>[{number}]</a>"


def answer_markdown(answer: Answer, turn: int, shown: int | None = None) -> str:
    """Return the answer to question ``turn`` as chat Markdown: escaped sentences, each with its linked marker.

    ``shown`` limits it to the first sentences (while an answer is being streamed); the
    full answer ends with what was searched when a follow-up was resolved.
    """
    if answer.abstained:  # why, then what the articles do say, set apart from an answer
        said = escape_text(f"{NO_ANSWER} {answer.reason}".strip())
        if not answer.nearest:
            return said
        nearest = " ".join(_quote_markdown(c, turn) for c in answer.nearest)
        return f"{said}\n\n> *{escape_text(NEAREST)}* {nearest}"
    if not answer.citations:
        return escape_text(answer.text)
    if answer.reader == "llm":
        return _generated_markdown(answer, turn)
    citations = answer.citations[:shown]
    text = " ".join(_quote_markdown(c, turn) for c in citations)
    if answer.short is not None and (shown is None or shown > 0):  # the words asked for first, bold, with a marker
        text = f"**{escape_text(answer.short.text)}** {marker(turn, answer.short.number)}\n\n{text}"
    if shown is None and answer.resolved_question and answer.resolved_question != answer.question:
        text += f"\n\n<small>Searched: {escape_text(answer.resolved_question)}</small>"
    return text


def _quote_markdown(citation: Citation, turn: int) -> str:
    """A quoted sentence with its marker, and its speaker before it (in italics, as attribution) when the
    sentence does not name them."""
    said = f"*{escape_text(citation.attribution)}:* " if citation.attribution else ""
    return f"{said}{escape_text(citation.quote)} {marker(turn, citation.number)}"


def _generated_markdown(answer: Answer, turn: int) -> str:
    """An LLM's checked answer: escaped text with linked markers, and how many sentences were removed."""
    numbers = {c.number for c in answer.citations}
    parts, cursor = [], 0
    for match in _MARKERS.finditer(answer.text):
        parts.append(escape_text(answer.text[cursor : match.start()]))
        number = int(match.group(1))
        parts.append(marker(turn, number) if number in numbers else escape_text(match.group()))
        cursor = match.end()
    parts.append(escape_text(answer.text[cursor:]))
    text = "".join(parts)
    if answer.unsupported:
        text += f"\n\n<small>{escape_text(removed_note(answer.unsupported))}.</small>"
    if answer.resolved_question and answer.resolved_question != answer.question:
        text += f"\n\n<small>Searched: {escape_text(answer.resolved_question)}</small>"
    return text


def _context(text: str, start: int, end: int) -> tuple[int, int]:
    """The paragraph around ``text[start:end]``, at most ``CONTEXT_CHARS`` on each side."""
    left = max(text.rfind("\n", 0, start) + 1, start - CONTEXT_CHARS)
    right = text.find("\n", end)
    right = min(len(text) if right < 0 else right, end + CONTEXT_CHARS)
    return left, right


def source_html(citation: Citation, article: Article | None, turn: int, open_: bool = False) -> str:
    """Return one source: title, source, date, link, and the passage with the quote highlighted."""
    c = citation
    quote = f"<mark>{html.escape(c.quote)}</mark>"
    if article is not None and article.text[c.start : c.end] == c.quote:
        left, right = _context(article.text, c.start, c.end)
        passage = (
            ("…" if left > 0 and article.text[left - 1] != "\n" else "")
            + html.escape(article.text[left : c.start])
            + quote
            + html.escape(article.text[c.end : right])
            + ("…" if right < len(article.text) and article.text[right] != "\n" else "")
        )
    else:
        passage = quote + " <span class='qa-meta'>(the article has since been removed from the library)</span>"
    meta = " · ".join(html.escape(x) for x in (c.source, c.date) if x)
    url = safe_url(c.url)
    link = (
        f"<a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener noreferrer'>open article</a>"
        if url
        else ""
    )
    details = [f"{html.escape(c.doc_id)}, characters {c.start}–{c.end}", f"score {c.score:.2f}", link]
    said = f"<div class='qa-speaker'>Said by {html.escape(c.speaker.label())}</div>" if c.speaker is not None else ""
    return (
        f"<details class='qa-source' id='{source_id(turn, c.number)}'{' open' if open_ else ''}>"
        f"<summary><b>[{c.number}] {html.escape(c.title)}</b> <span class='qa-meta'>{meta}</span></summary>"
        f"{said}<div class='qa-meta'>{' · '.join(d for d in details if d)}</div>"
        f"<p class='qa-passage'>{passage}</p></details>"
    )


def sources_html(answers: Sequence[Answer], article: Callable[[str], Article], shown: int | None = None) -> str:
    """Return the sources panel of a conversation: the latest answer's sources (the first
    one open), then those of earlier answers, folded. ``article`` looks articles up;
    ``shown`` limits the latest answer to its first sources (while it is streamed)."""
    if not answers:
        return NO_SOURCES

    def block(turn: int, citations: Sequence[Citation], open_first: bool) -> str:
        parts = []
        for c in citations:
            try:
                found: Article | None = article(c.doc_id)
            except UnknownArticleError:  # removed from the library since it was cited
                found = None
            parts.append(source_html(c, found, turn, open_=open_first and c.number == 1))
        return "\n".join(parts)

    latest = answers[-1]
    panel = block(len(answers), latest.citations[:shown], True) or (
        "<p class='qa-meta'>No sources: the answer quotes no article.</p>"
    )
    if latest.nearest:
        panel = f"<p class='qa-meta'>{html.escape(NEAREST)}</p>" + panel
    earlier = []
    for turn in range(len(answers) - 1, max(0, len(answers) - 1 - EARLIER_TURNS_SHOWN), -1):
        answer = answers[turn - 1]
        if answer.citations:
            question = f"<p class='qa-meta'>Question {turn}: {html.escape(answer.question)}</p>"
            earlier.append(question + block(turn, answer.citations, False))
    if earlier:
        panel += "<details class='qa-earlier'><summary>Sources of earlier answers</summary>" + "".join(earlier)
        panel += "</details>"
    return panel


def library_html(catalog: Catalog, query: str = "") -> str:
    """Return a page of the library's catalog as an HTML table (title, source, date, passages, id) under a line
    that says which articles of how many it shows; ``query`` is the filter it was made with."""
    if not catalog.total:
        if query.strip():
            return f"<p class='qa-meta'>No article's title, source or id contains “{html.escape(query.strip())}”.</p>"
        return "<p class='qa-meta'>The library is empty: upload articles below.</p>"
    rows = []
    for a in catalog.entries:
        url = safe_url(a.url)
        title = html.escape(a.title)
        if url:
            title = f"<a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener noreferrer'>{title}</a>"
        cells = [title, html.escape(a.source or ""), html.escape(a.date or ""), str(a.passages), html.escape(a.doc_id)]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("Title", "Source", "Date", "Passages", "ID"))
    first, last = catalog.offset + 1, catalog.offset + len(catalog.entries)
    which = f" matching “{html.escape(query.strip())}”" if query.strip() else ""
    shown = f"Articles {first:,}–{last:,} of {catalog.total:,}{which}, newest first" if rows else "No more articles"
    caption = f"<p class='qa-meta' id='qa-library-shown'>{shown}</p>"
    return f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def header_markdown(summary: LibrarySummary) -> str:
    """Return the page's heading: how many articles it answers from."""
    count = summary.articles
    return (
        f"## Newsdesk QA\nAnswers from **{count:,}** indexed article{'' if count == 1 else 's'}, "
        "every sentence with its source. When the articles do not say, it says so."
    )


def user_message(text: str) -> dict[str, str]:
    return {"role": "user", "content": escape_text(text)}


def bot_message(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def feeds_html(feeds: Sequence[FeedStatus], every: Callable[[int], str]) -> str:
    """Return the followed feeds as an HTML table: title, address, schedule (``every`` writes it), last refresh."""
    if not feeds:
        return "<p class='qa-meta'>No feeds yet: add the address of an RSS or Atom feed below.</p>"
    rows = []
    for f in feeds:
        url = safe_url(f.url)
        link = f"<a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener noreferrer'>" if url else ""
        address = f"{link}{html.escape(f.url)}{'</a>' if url else ''}"
        outcome = f"<span class='qa-failed'>{html.escape(f.outcome)}</span>" if f.failed else html.escape(f.outcome)
        cells = [
            html.escape(f.title),
            address,
            html.escape(every(f.every)),
            html.escape(f.refreshed_at or "never"),
            outcome,
        ]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("Feed", "Address", "Every", "Last refreshed", "Outcome"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def feeds_signature(feeds: Sequence[FeedStatus]) -> str:
    """Return a string that changes whenever a feed is added, removed, rescheduled or refreshed."""
    return "|".join(f"{f.url}:{f.title}:{f.every}:{f.refreshed_at}:{f.outcome}" for f in feeds)


def format_answer(answer: Answer) -> str:
    """Return the answer and its numbered sources as plain text for a terminal."""
    lines = [answer.text]
    if answer.unsupported:
        lines.append(f"({removed_note(answer.unsupported)})")
    if answer.reader == "llm-fallback":
        lines.append("(the LLM's answer was not supported by its sources: these are the quoted sentences)")
    for c in answer.citations:
        meta = ", ".join(x for x in (c.source, c.date) if x)
        said = f" · said by {c.speaker.label()}" if c.speaker is not None else ""
        lines.append(
            f"  [{c.number}] {c.title}{f' ({meta})' if meta else ''} · {c.doc_id} "
            f"chars {c.start}-{c.end} · score {c.score:.2f}{said}"
        )
        if c.url:
            lines.append(f"      {c.url}")
    return "\n".join(lines)
