"""A real HTTP server on 127.0.0.1 (port 0) in a thread, serving what a test puts in ``Site.routes``:
article pages, feeds, robots.txt, redirects, errors, a slow page and a huge body. Nothing else is reached."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Route:
    """What a path answers: a body, a redirect (``location``), a status, an ETag; ``slow``: only at teardown;
    ``gate``: only once the test sets it; ``stream``: that many bytes sent in chunks without a Content-Length."""

    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    location: str | None = None
    etag: str | None = None
    slow: bool = False
    gate: threading.Event | None = None
    stream: int = 0
    headers: dict[str, str] = field(default_factory=dict)


class Site:
    """The server's routes, and what it saw: every request's path and headers, the most requests at once."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()  # lets slow pages answer (at teardown)
        self.lock = threading.Condition()
        self.in_flight = 0
        self.most_in_flight = 0
        self.hold_until_in_flight = 0  # the first pages asked for wait until this many requests are in flight at once
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[dict[str, str]]:
        """The headers of each request made for ``path`` (query included)."""
        with self.lock:
            return [h for p, h in self.requests if p == path]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with site.lock:
                site.requests.append((self.path, dict(self.headers.items())))
                site.in_flight += 1
                site.most_in_flight = max(site.most_in_flight, site.in_flight)
                site.lock.notify_all()
                if self.path != "/robots.txt":
                    site.lock.wait_for(lambda: site.most_in_flight >= site.hold_until_in_flight, timeout=120)
            # The answer is written once this request no longer counts as in flight: counted after the client has
            # its answer, a request would overlap with the one the client sends next.
            sending, self.wfile = self.wfile, io.BytesIO()
            try:
                self._answer(site.routes.get(self.path) or site.routes.get(urlsplit(self.path).path))
            finally:
                answer, self.wfile = self.wfile.getvalue(), sending
                with site.lock:
                    site.in_flight -= 1
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client stopped reading
                self.wfile.write(answer)

        def _answer(self, route: Route | None) -> None:
            if route is None:
                self.send_error(404, "Not Found")
                return
            if route.slow:
                site.release.wait(120)
            if route.gate is not None:
                route.gate.wait(120)
            if route.etag and self.headers.get("If-None-Match") == route.etag:
                self.send_response(304)
                self.send_header("ETag", route.etag)
                self.end_headers()
                return
            self.send_response(route.status)
            if route.location:
                self.send_header("Location", route.location)
            if route.etag:
                self.send_header("ETag", route.etag)
            self.send_header("Content-Type", route.content_type)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.stream:
                self.end_headers()  # HTTP/1.0: the body ends when the connection closes
                chunk = b"<p>" + b"x" * 65_536 + b"</p>"
                for _ in range(route.stream // len(chunk) + 1):
                    self.wfile.write(chunk)
                return
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

    return Handler


@contextmanager
def serving(site: Site) -> Iterator[Site]:
    """Serve ``site`` on 127.0.0.1 on a free port until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="test-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def article_html(
    title: str,
    paragraphs: list[str],
    *,
    canonical: str | None = None,
    site_name: str | None = None,
    published: str | None = None,
) -> bytes:
    """An article page as news sites write them: head metadata (when given), navigation, the article, a footer."""
    meta = [f"<title>{title}</title>"]
    if canonical:
        meta.append(f'<link rel="canonical" href="{canonical}">')
    if site_name:
        meta.append(f'<meta property="og:site_name" content="{site_name}">')
        meta.append(f'<meta property="og:title" content="{title}">')
    if published:
        meta.append(f'<meta property="article:published_time" content="{published}T08:00:00Z">')
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'>{''.join(meta)}</head><body>"
        "<nav><a href='/'>Home</a> <a href='/world'>World</a> <a href='/sport'>Sport</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        "<footer>© The newsroom. All rights reserved.</footer></body></html>"
    ).encode()


def rss(title: str, items: list[tuple[str, str, str]]) -> bytes:
    """An RSS 2.0 feed of (title, link, RFC 822 date) items."""
    entries = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid><pubDate>{d}</pubDate></item>"
        for t, link, d in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://127.0.0.1/</link><description>News</description>{entries}</channel></rss>"
    ).encode()


def atom(title: str, items: list[tuple[str, str, str]]) -> bytes:
    """An Atom feed of (title, link, ISO date) entries."""
    entries = "".join(
        f"<entry><title>{t}</title><id>urn:test:{link}</id><link href='{link}'/>"
        f"<updated>{d}T09:00:00Z</updated></entry>"
        for t, link, d in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>'
        f"<id>urn:test:feed</id><updated>2024-03-06T09:00:00Z</updated>{entries}</feed>"
    ).encode()


PORTO = [
    "Porto opened its new tram line to Vila Nova de Gaia on Tuesday, ending four years of building work along the "
    "Douro river.",
    "The line carries 20,000 passengers a day, the operator Metro do Porto said in a statement on Wednesday.",
    "Mayor Rui Moreira called the line a turning point for the city's transport, and said a second line to the "
    "airport would follow in 2027.",
    "Tickets cost 1.40 euros, the same as on the city's buses, and trams run every six minutes at rush hour.",
]
FERRY = [
    "Ferry workers in Lisbon walked out on Monday in a dispute over night shifts, stranding 30,000 commuters on the "
    "south bank of the Tagus.",
    "The Transtejo union said the strike would last three days unless the company restored the night shift bonus.",
    "Commuters queued for hours at the Cacilhas terminal, and the city added extra buses across the 25 de Abril "
    "bridge.",
]
LIBRARY = [
    "Braga reopened its public library on Friday after a restoration that took three years and cost 12 million euros.",
    "The restored building holds 140,000 books, among them a 15th-century bible printed in Venice, the city council "
    "said.",
    "Visitors can borrow up to eight books at a time, and the reading room stays open until midnight on weekdays.",
]
BRIDGE = [
    "Coimbra closed the Santa Clara bridge to cars on Thursday so that engineers could repair cracks found in two of "
    "its pillars.",
    "The repairs will take eleven weeks, the regional roads agency said, and buses will cross on a temporary lane.",
    "Shop owners on the south bank said they feared losing customers during the busy spring season.",
]
NOT_AN_ARTICLE = (
    b"<!DOCTYPE html><html><head><title>Home</title></head><body><nav><ul>"
    b"<li><a href='/world'>World</a></li><li><a href='/sport'>Sport</a></li><li><a href='/tech'>Tech</a></li>"
    b"</ul></nav></body></html>"
)


def bare_html(paragraphs: list[str]) -> bytes:
    """A page with no metadata at all: no title, no date, no site name, no canonical URL."""
    return ("<html><body>" + "".join(f"<p>{p}</p>" for p in paragraphs) + "</body></html>").encode()


def newsroom(site: Site) -> Site:
    """Fill ``site`` with the pages and feeds of a small newsroom, and the troubles of the web."""
    porto = article_html(
        "Porto opens its new tram line to Gaia",
        PORTO,
        canonical=site.url("/news/porto-tram-line"),
        site_name="Porto Daily",
        published="2024-03-05",
    )
    r = site.routes
    r["/robots.txt"] = Route(b"User-agent: *\nDisallow: /private/\n", "text/plain")
    r["/news/porto-tram-line"] = Route(porto)
    r["/amp/porto-tram-line"] = Route(porto)  # the same article under another address, same canonical URL
    r["/stories/lisbon-ferry-strike"] = Route(bare_html(FERRY))
    r["/copy/lisbon-ferry-strike"] = Route(bare_html(FERRY))  # the same text, no canonical URL
    r["/news/braga-library"] = Route(article_html("Braga reopens its public library", LIBRARY, published="2024-03-08"))
    r["/news/coimbra-bridge"] = Route(article_html("Coimbra closes the Santa Clara bridge", BRIDGE))
    r["/private/memo"] = Route(article_html("Internal memo", FERRY))
    r["/index"] = Route(NOT_AN_ARTICLE)
    r["/slow"] = Route(article_html("A slow page", BRIDGE), slow=True)
    r["/loop/a"] = Route(status=302, location="/loop/b")
    r["/loop/b"] = Route(status=302, location="/loop/a")
    r["/moved"] = Route(status=301, location="/news/coimbra-bridge")
    r["/huge"] = Route(stream=21_000_000)
    r["/report.pdf"] = Route(b"%PDF-1.7 not a page", "application/pdf")
    r["/feeds/broken.xml"] = Route(b"<rss><channel><title>Broken</ti", "application/rss+xml")
    r["/feeds/rss.xml"] = Route(
        rss("Porto Daily", [("Porto opens its new tram line", site.url("/news/porto-tram-line"), "Tue, 05 Mar 2024")]),
        "application/rss+xml",
    )
    r["/feeds/atom.xml"] = Route(
        atom("Coimbra News", [("Santa Clara bridge closes", site.url("/news/coimbra-bridge"), "2024-03-07")]),
        "application/atom+xml",
        etag='"atom-v1"',
    )
    return site
