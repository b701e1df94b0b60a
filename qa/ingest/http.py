"""Polite, bounded HTTP for web pages and feeds (``Fetcher``).

- A User-Agent that names the product; ``robots.txt`` respected (RFC 9309: a missing one allows
  everything, an unreachable one nothing) unless ``Config.fetch_robots`` is off.
- ``Config.fetch_timeout`` seconds for a whole response (connecting, headers and body), a size cap of
  ``Config.max_file_bytes`` (refused from ``Content-Length`` at once, else while the body streams in,
  decompressed bytes included), at most ``Config.fetch_redirects`` redirects (a loop is named), at most
  ``Config.fetch_per_host`` requests to one host at once.
- Only http and https. With ``Config.fetch_private`` off, an address on this machine or a private,
  link-local or reserved network is refused when the connection is made, on every hop and for
  ``robots.txt`` too: a name that resolves to one (or a redirect to one) cannot reach it.

Whatever goes wrong is a ``FetchError`` naming the URL and the reason.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

from qa.config import Config
from qa.errors import FetchError

PRODUCT = "NewsdeskQA"  # the name robots.txt rules are matched against
try:
    USER_AGENT = f"{PRODUCT}/{metadata.version('newsdesk-qa')} (news question answering; respects robots.txt)"
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    USER_AGENT = f"{PRODUCT} (news question answering; respects robots.txt)"
ROBOTS_BYTES = 512_000  # RFC 9309: a crawler reads at least 500 KiB of robots.txt
ROBOTS_TTL = 3600.0  # seconds a site's robots.txt is kept
ROBOTS_RETRY = 60.0  # seconds before an unreachable robots.txt is tried again
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 65_536


@dataclass(frozen=True)
class Response:
    """A fetched resource: ``status`` is 200, or 304 when it has not changed since ``etag``/``last_modified``."""

    url: str  # as asked
    final_url: str  # after redirects
    status: int
    body: bytes
    media_type: str  # "text/html", lower case, without parameters ("" when the server gave none)
    charset: str | None
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        """True for a 304: the resource is as it was when fetched with those validators."""
        return self.status == 304


def http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def public_address(address: str) -> bool:
    """True for an address on the public internet: not loopback, private, link-local, shared, reserved or multicast."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _Refused(OSError):
    """A connection the private-address rule does not allow."""


def _public_connection(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
    """``socket.create_connection`` to public addresses only: each address the name resolves to is checked."""
    host, port = address
    refused, error = None, None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if not public_address(sockaddr[0]):
            refused = sockaddr[0]
            continue
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None and timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    if error is not None:
        raise error
    raise _Refused(f"{host} is at {refused}, an address on this machine or a private network")


def _guarded(connection: type[http.client.HTTPConnection]) -> Callable[..., http.client.HTTPConnection]:
    def make(host: str, **kwargs: Any) -> http.client.HTTPConnection:
        conn = connection(host, **kwargs)
        conn._create_connection = _public_connection  # type: ignore[attr-defined]  # http.client's own hook
        return conn

    return make


class _GuardedHTTP(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_guarded(http.client.HTTPConnection), req)


class _GuardedHTTPS(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_guarded(http.client.HTTPSConnection), req, context=self._context)  # type: ignore[attr-defined]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects come back as responses: ``Fetcher`` follows them itself, checking every hop."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Fetcher:
    """Fetches pages and feeds politely (see the module's docstring); safe to share between threads.

    Holds each host's concurrency slots and robots.txt, so one fetcher per process keeps its limits.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        handlers: list[Any] = [_NoRedirect()]
        if not config.fetch_private:  # no proxy either: the address checked must be the one connected to
            handlers += [urllib.request.ProxyHandler({}), _GuardedHTTP(), _GuardedHTTPS()]
        self._opener = urllib.request.build_opener(*handlers)
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._robots: dict[str, tuple[float, RobotFileParser | str]] = {}  # origin -> (until when, rules or why not)
        self._robots_reading: dict[str, threading.Lock] = {}

    def get(self, url: str, accept: str = "*/*", etag: str | None = None, last_modified: str | None = None) -> Response:
        """Fetch ``url`` following redirects; raises ``FetchError``. With validators, a 304 comes back as such."""
        if not http_url(url):
            raise FetchError(url, "not an http(s) URL: only http and https pages and feeds are fetched")
        conditional = {"If-None-Match": etag, "If-Modified-Since": last_modified}
        headers = {"Accept": accept, **{k: v for k, v in conditional.items() if v}}
        return self._get(url, headers, time.monotonic() + self.config.fetch_timeout, robots=self.config.fetch_robots)

    def _get(self, url: str, headers: dict[str, str], deadline: float, robots: bool) -> Response:
        chain, current = [url], url
        while True:
            if robots:
                self._check_robots(url, current, deadline)
            status, reply, body = self._request(url, current, headers, deadline)
            if status not in _REDIRECTS:
                break
            location = reply.get("Location")
            if not location:
                raise FetchError(url, f"HTTP {status} redirect without a Location", status)
            target = urljoin(current, location.strip())
            if not http_url(target):
                raise FetchError(url, f"redirected to {target!r}, which is not an http(s) URL", status)
            if target in chain:
                raise FetchError(url, f"redirect loop: {' -> '.join([*chain[chain.index(target) :], target])}", status)
            if len(chain) > self.config.fetch_redirects:
                raise FetchError(url, f"more than {self.config.fetch_redirects} redirects", status)
            chain.append(target)
            current = target
        media = reply.get_content_type() if reply.get("Content-Type") else ""
        charset = reply.get_content_charset()
        return Response(url, current, status, body, media, charset, reply.get("ETag"), reply.get("Last-Modified"))

    def _request(self, url: str, current: str, headers: dict[str, str], deadline: float) -> tuple[int, Any, bytes]:
        """One request: (status, headers, body); a redirect or a 304 comes back with an empty body."""
        request = urllib.request.Request(
            current, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", **headers}
        )
        try:
            with self._slot(current):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                try:
                    response = self._opener.open(request, timeout=remaining)
                except urllib.error.HTTPError as exc:
                    exc.close()
                    if exc.code in _REDIRECTS or exc.code == 304:
                        return exc.code, exc.headers, b""
                    raise FetchError(url, f"HTTP {exc.code} {exc.reason}".strip(), exc.code) from None
                with response:
                    return response.status, response.headers, self._body(url, response, deadline)
        except FetchError:
            raise
        except (urllib.error.URLError, http.client.HTTPException, ssl.SSLError, OSError, ValueError) as exc:
            error = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(error, (TimeoutError, socket.timeout)):
                raise FetchError(url, f"timed out after {self.config.fetch_timeout:g} s") from None
            raise FetchError(url, _reason(error)) from None

    def _body(self, url: str, response: http.client.HTTPResponse, deadline: float) -> bytes:
        """The body, decompressed, read until ``max_file_bytes`` (then refused) or the deadline (then timed out)."""
        cap = self.config.max_file_bytes
        length = (response.headers.get("Content-Length") or "").strip()
        if length.isdigit() and int(length) > cap:
            raise FetchError(url, f"the body is {int(length):,} bytes, over the limit of {cap:,}")
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")
        inflate = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding != "identity" else None
        chunks, size = [], 0
        while chunk := response.read(_CHUNK):
            if time.monotonic() > deadline:
                raise TimeoutError
            if inflate is not None:
                try:
                    chunk = inflate.decompress(chunk, cap + 1 - size)
                except zlib.error:
                    raise FetchError(url, f"the body is not valid {encoding} data") from None
                if inflate.unconsumed_tail:
                    size = cap + 1
            size += len(chunk)
            if size > cap:
                raise FetchError(url, f"the body is over the limit of {cap:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @contextmanager
    def _slot(self, url: str) -> Iterator[None]:
        """Hold one of the ``fetch_per_host`` request slots of ``url``'s host."""
        host = urlsplit(url).netloc.lower()
        with self._lock:
            slot = self._slots.setdefault(host, threading.BoundedSemaphore(self.config.fetch_per_host))
        with slot:
            yield

    def _check_robots(self, url: str, current: str, deadline: float) -> None:
        parts = urlsplit(current)
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        with self._lock:
            reading = self._robots_reading.setdefault(origin, threading.Lock())
        with reading:  # one read of a site's robots.txt at a time: the others wait for it
            with self._lock:
                cached = self._robots.get(origin)
            if cached is None or time.monotonic() > cached[0]:
                rules = self._read_robots(origin, deadline)
                cached = (time.monotonic() + (ROBOTS_RETRY if isinstance(rules, str) else ROBOTS_TTL), rules)
                with self._lock:
                    self._robots[origin] = cached
        rules = cached[1]
        if isinstance(rules, str):
            raise FetchError(url, f"{origin}/robots.txt could not be read ({rules}), so nothing there is fetched")
        if not rules.can_fetch(PRODUCT, current):
            raise FetchError(url, f"{origin}/robots.txt does not allow fetching {current}")

    def _read_robots(self, origin: str, deadline: float) -> RobotFileParser | str:
        """The site's rules; everything allowed when it has no robots.txt (4xx), else why it is unreachable."""
        rules = RobotFileParser(f"{origin}/robots.txt")
        try:
            response = self._get(f"{origin}/robots.txt", {"Accept": "text/plain"}, deadline, robots=False)
            lines = response.body[:ROBOTS_BYTES].decode("utf-8", errors="replace").splitlines()
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                lines = []
            else:
                return exc.reason
        rules.parse(lines)
        return rules


def _reason(error: object) -> str:
    """What went wrong, in words, from an exception (or URLError's reason)."""
    if isinstance(error, _Refused):
        return f"refused: {error} (the server allows such addresses only with --allow-private-fetch)"
    if isinstance(error, socket.gaierror):
        return f"host not found ({error.strerror or error})"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
