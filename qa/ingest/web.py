"""Articles from web pages: fetched (``qa.ingest.http``), main text and metadata extracted with trafilatura.

An article page becomes an ``Article`` whose ``doc_id`` comes from its canonical URL (a readable
slug of the site and the page, and a short hash of the whole URL), so the same page fetched again,
or under another address that names the same canonical URL, replaces its old version rather than
adding a copy. Its ``source`` is the site's name (``og:site_name``), else its host. A page that
cannot be used (not fetched, not HTML, no main text) is a ``FileProblem`` naming its URL and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tqdm.auto import tqdm

from qa.config import Config
from qa.errors import FetchError
from qa.ingest.articles import content_hash, load_articles, source_from_url
from qa.ingest.http import Fetcher, Response, http_url
from qa.text import normalize_text, slug
from qa.types import Article, FileProblem, LoadReport

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
FETCH_WORKERS = 8  # pages fetched at once (each host still gets at most Config.fetch_per_host)
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ocid|cmpid)$", re.I)

# Called as each page is done: (pages done, pages in all, its URL, its article or why not).
OnFetched = Callable[[int, int, str, "Article | FileProblem"], None]


def is_url(item: str | Path) -> bool:
    """True when ``item`` is a URL (any scheme) rather than a file path: a string such as ``https://…``."""
    return isinstance(item, str) and bool(_URL_SCHEME.match(item.strip()))


def canonical_form(url: str) -> str:
    """``url`` as an identity: scheme and host in lower case, no default port, fragment or tracking parameters."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port if parts.port not in (None, {"http": 80, "https": 443}.get(scheme)) else None
    netloc = f"[{host}]" if ":" in host else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)])
    return urlunsplit((scheme, netloc + (f":{port}" if port else ""), parts.path or "/", query, ""))


def url_doc_id(url: str) -> str:
    """The doc id of the page at canonical ``url``: ``host/last-path-segment-<10 hex digits of its hash>``."""
    canonical = canonical_form(url)
    parts = urlsplit(canonical)
    segments = [s.rsplit(".", 1)[0] if "." in s else s for s in parts.path.split("/") if s]
    name = next((s for s in reversed(segments) if s.lower() not in ("index", "amp", "")), "")
    readable = slug(f"{(parts.hostname or 'web').removeprefix('www.')}/{name[:60]}")
    return f"{readable}-{hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:10]}"


def _same_site(a: str, b: str) -> bool:
    """True when one host is the other or under it, ``www.`` aside (m.cnn.com and www.cnn.com are one site)."""
    ha, hb = ((urlsplit(u).hostname or "").lower().removeprefix("www.") for u in (a, b))
    return bool(ha and hb) and (ha == hb or ha.endswith("." + hb) or hb.endswith("." + ha))


def page_article(response: Response) -> Article:
    """The article on a fetched page; raises ``FetchError`` for a body that is not HTML or holds no main text.

    The page's canonical URL (``<link rel=canonical>``, ``og:url``) is its identity when it is on the
    same site as the page; a page cannot claim another site's address.
    """
    import trafilatura

    url = response.url
    body = response.body.lstrip()
    looks_html = body[:512].lower().startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--"))
    if response.media_type not in HTML_TYPES and not (response.media_type in ("", "text/plain") and looks_html):
        raise FetchError(url, f"not an HTML page ({response.media_type or 'no Content-Type'})")
    html: str | bytes = response.body
    if response.charset:
        with contextlib.suppress(LookupError):  # an unknown charset: trafilatura guesses from the bytes
            html = response.body.decode(response.charset, errors="replace")
    doc = trafilatura.bare_extraction(html, url=response.final_url, with_metadata=True, include_comments=False)
    text = normalize_text(getattr(doc, "text", None) or "") if doc is not None else ""
    # Menus and lists of links pass the default extraction; its precise mode finds no main text in them.
    if not text or trafilatura.bare_extraction(html, favor_precision=True, include_comments=False) is None:
        raise FetchError(url, "no article text found on the page (not an article?)")
    claimed = (getattr(doc, "url", None) or "").strip()
    canonical = claimed if http_url(claimed) and _same_site(claimed, response.final_url) else response.final_url
    canonical = canonical_form(canonical)
    host = source_from_url(canonical)
    site = _one_line(doc.sitename)
    if site.lower().split(":")[0].removeprefix("www.") == host:  # trafilatura's stand-in: the host and port
        site = ""
    return Article(
        doc_id=url_doc_id(canonical),
        title=_one_line(doc.title) or _slug_title(canonical) or host or canonical,
        text=text,
        date=_one_line(doc.date) or None,
        source=site or host,
        url=canonical,
        path=url,
    )


def _one_line(value: str | None) -> str:
    return " ".join(normalize_text(value or "").split())


def _slug_title(url: str) -> str:
    """A title from the last path segment of ``url`` ("/2024/tram-line-opens.html" gives "Tram line opens")."""
    segments = [s.rsplit(".", 1)[0] for s in urlsplit(url).path.split("/") if s]
    words = re.split(r"[-_]+", segments[-1]) if segments else []
    return " ".join(words).capitalize() if len(words) >= 2 else ""


def fetch_page(fetcher: Fetcher, url: str) -> Article | FileProblem:
    """Fetch ``url`` and read its article, or say why not."""
    try:
        return page_article(fetcher.get(url, accept=HTML_ACCEPT))
    except FetchError as exc:
        return FileProblem(url, exc.reason)


def fetch_pages(
    urls: Sequence[str], fetcher: Fetcher, show_progress: bool = False, on_fetched: OnFetched | None = None
) -> list[Article | FileProblem]:
    """Fetch ``urls`` (several at once), in their order; a tqdm bar with ``show_progress``."""
    results: dict[int, Article | FileProblem] = {}
    if not urls:
        return []
    with (
        ThreadPoolExecutor(max_workers=min(FETCH_WORKERS, len(urls)), thread_name_prefix="fetch") as pool,
        tqdm(total=len(urls), desc="Fetching pages", unit="page", disable=not show_progress, leave=False) as bar,
    ):
        futures = {pool.submit(fetch_page, fetcher, url): i for i, url in enumerate(urls)}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            bar.update(1)
            if on_fetched is not None:
                on_fetched(len(results), len(urls), urls[i], results[i])
    return [results[i] for i in range(len(urls))]


def unique_articles(
    results: Sequence[Article | FileProblem], known: Sequence[Article] = ()
) -> list[Article | FileProblem]:
    """``results`` with each article that repeats one before it (or one of ``known``) by doc id (the same
    canonical URL) or by text replaced by a ``FileProblem`` saying so; problems are passed on."""
    ids = {a.doc_id: a for a in known}
    texts = {content_hash(a.text): a for a in known}
    out: list[Article | FileProblem] = []
    for item in results:
        where = item.path if isinstance(item, FileProblem) else item.path or item.doc_id
        if isinstance(item, FileProblem):
            out.append(item)
        elif item.doc_id in ids:
            out.append(FileProblem(where, f"the same page as {ids[item.doc_id].path or item.doc_id} ({item.url})"))
        elif (digest := content_hash(item.text)) in texts:
            out.append(FileProblem(where, f"duplicate of article {texts[digest].doc_id!r}"))
        else:
            ids[item.doc_id] = texts[digest] = item
            out.append(item)
    return out


def read_sources(
    items: Iterable[str | Path],
    config: Config,
    fetcher: Fetcher | None = None,
    show_progress: bool = False,
    on_fetched: OnFetched | None = None,
) -> LoadReport:
    """Read article files and folders, and fetch the http(s) URLs among ``items`` (other URLs are refused).

    Each article is read once: a page whose canonical URL or text was met already is reported, not
    repeated. ``on_fetched`` is told about each page as it is done.
    """
    items = list(items)
    paths = [p for p in items if not is_url(p)]
    urls = list(dict.fromkeys(str(u).strip() for u in items if is_url(u)))
    report = load_articles(paths, config.max_file_bytes) if paths else LoadReport(())
    if not urls:
        return report
    wanted = [u for u in urls if http_url(u)]
    refused = [
        FileProblem(u, "not an http(s) URL: only http and https pages are fetched") for u in urls if u not in wanted
    ]
    fetched = unique_articles(
        fetch_pages(wanted, fetcher or Fetcher(config), show_progress, on_fetched), report.articles
    )
    for problem in refused + [p for p in fetched if isinstance(p, FileProblem)]:
        log.warning("%s", problem)
    articles = report.articles + tuple(a for a in fetched if isinstance(a, Article))
    problems = report.problems + tuple(refused) + tuple(p for p in fetched if isinstance(p, FileProblem))
    return LoadReport(articles, problems)
