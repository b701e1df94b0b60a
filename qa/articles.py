"""Load articles from files and folders: .txt, .md, .html, .json and .jsonl.

Text is normalised once, here (Unicode NFC, line endings, runs of spaces, blank lines);
the normalised ``Article.text`` is what every offset and citation points into. A file that
cannot be used is skipped and reported in ``LoadReport.problems``; the rest still load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.types import Article

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl")
_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})[-_ ]*")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_SENTENCE_END = re.compile(r"[.!?:;,\"”’)—–-]$")  # also datelines such as "CNN —"


@dataclass(frozen=True)
class FileProblem:
    """Something wrong with an input: ``skipped`` when nothing of it was indexed."""

    path: str
    reason: str
    skipped: bool = True

    def __str__(self) -> str:
        verb = "skipped" if self.skipped else "note"
        return f"{self.path}: {verb}: {self.reason}"


@dataclass(frozen=True)
class LoadReport:
    """Articles that loaded, and the problems met on the way."""

    articles: tuple[Article, ...]
    problems: tuple[FileProblem, ...] = field(default_factory=tuple)


def normalize_text(text: str) -> str:
    """Return ``text`` with normalised Unicode and whitespace (paragraphs kept)."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def content_hash(text: str) -> str:
    """Return the SHA-256 hex digest of an article's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_articles(paths: Iterable[str | Path], max_file_bytes: int = 20_000_000) -> LoadReport:
    """Load every supported file under ``paths`` (files or folders, searched recursively).

    Duplicated articles (same normalised text) and reused ``doc_id`` values are loaded
    once; the later copies are reported.
    """
    articles: list[Article] = []
    problems: list[FileProblem] = []
    seen_hashes: dict[str, str] = {}
    seen_ids: set[str] = set()
    for file, root in _iter_files(paths, problems):
        for item in _load_file(file, root, max_file_bytes):
            if isinstance(item, FileProblem):
                problems.append(item)
                continue
            digest = content_hash(item.text)
            if digest in seen_hashes:
                problems.append(FileProblem(_where(item), f"duplicate of article {seen_hashes[digest]!r}"))
            elif item.doc_id in seen_ids:
                problems.append(FileProblem(_where(item), f"doc_id {item.doc_id!r} is already used by another article"))
            else:
                seen_hashes[digest] = item.doc_id
                seen_ids.add(item.doc_id)
                articles.append(item)
    for problem in problems:
        log.warning("%s", problem)
    return LoadReport(tuple(articles), tuple(problems))


def _where(article: Article) -> str:
    return article.path or article.doc_id


def _iter_files(paths: Iterable[str | Path], problems: list[FileProblem]) -> Iterator[tuple[Path, Path]]:
    """Yield (file, root) pairs; ``root`` is what doc ids are made relative to."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = file.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if file.suffix.lower() not in SUPPORTED_SUFFIXES:
                    problems.append(FileProblem(str(file), f"unsupported file type {file.suffix or '(none)'!r}"))
                    continue
                yield file, path
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                problems.append(
                    FileProblem(
                        str(path),
                        f"unsupported file type {path.suffix or '(none)'!r}; "
                        f"supported: {', '.join(SUPPORTED_SUFFIXES)}",
                    )
                )
                continue
            yield path, path.parent
        else:
            problems.append(FileProblem(str(path), "no such file or folder"))


def _load_file(file: Path, root: Path, max_file_bytes: int) -> list[Article | FileProblem]:
    where = str(file)
    try:
        size = file.stat().st_size
        if size > max_file_bytes:
            return [FileProblem(where, f"file is {size:,} bytes, over the limit of {max_file_bytes:,}")]
        raw = file.read_bytes()
    except OSError as exc:
        return [FileProblem(where, f"cannot read file: {exc.strerror or exc}")]
    if not raw.strip():
        return [FileProblem(where, "file is empty")]
    decoded = decode_bytes(raw)
    if decoded is None:
        return [FileProblem(where, "binary file (not text)")]
    text, note = decoded
    out: list[Article | FileProblem] = []
    if note:
        out.append(FileProblem(where, note, skipped=False))
    base_id = slug(file.relative_to(root).with_suffix("").as_posix())
    suffix = file.suffix.lower()
    if suffix == ".jsonl":
        out.extend(_from_jsonl(text, where, base_id))
    elif suffix == ".json":
        out.extend(_from_json(text, where, base_id))
    elif suffix in (".html", ".htm"):
        out.append(_from_html(text, where, base_id, file.stem))
    else:
        out.append(_from_plain(text, where, base_id, file.stem, markdown=suffix in (".md", ".markdown")))
    return out


def decode_bytes(raw: bytes) -> tuple[str, str | None] | None:
    """Decode file bytes: UTF-8 (BOM optional), UTF-16 with BOM, else Windows-1252.

    Returns ``(text, note)`` where ``note`` says when a fallback encoding was used, or
    ``None`` for binary content.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), None
        except UnicodeDecodeError:
            return None
    if b"\x00" in raw[:8192]:
        return None
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "not UTF-8; decoded as Windows-1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "not UTF-8; decoded as Latin-1"


def slug(value: str) -> str:
    """Return ``value`` as a document id: letters, digits and ``._/-`` only."""
    return re.sub(r"[^A-Za-z0-9._/-]+", "-", value).strip("-") or "article"


def _title_from_name(stem: str) -> str:
    name = _DATE_PREFIX.sub("", stem)
    words = re.split(r"[-_ ]+", name)
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or stem


def _title_from_url(url: str | None) -> str | None:
    """Return a title from a URL's slug ("/2022/09/14/serena-williams-return/index.html")."""
    if not url:
        return None
    parts = [p for p in re.split(r"[/?#]", url.split("://", 1)[-1])[1:] if p]
    parts = [p.rsplit(".", 1)[0] for p in parts if p.rsplit(".", 1)[0] not in ("index", "")]
    best = max(parts, key=lambda p: p.count("-") + p.count("_"), default="")
    return _title_from_name(best) if best.count("-") + best.count("_") >= 2 else None


def source_from_url(url: str | None) -> str | None:
    """Return a URL's host without ``www.`` ("https://www.cnn.com/..." gives "cnn.com")."""
    if not url or "://" not in url:
        return None
    host = url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0].lower()
    return host.removeprefix("www.") or None


def _date_from_name(stem: str) -> str | None:
    match = _DATE_PREFIX.match(stem)
    return match.group(1) if match else None


def _split_headline(text: str, markdown: bool) -> tuple[str | None, str]:
    """Return (headline, body) when the first line reads as a headline, else (None, text)."""
    first, sep, rest = text.partition("\n")
    if not sep or not rest.strip():
        return None, text
    if markdown and first.startswith("#"):
        return first.lstrip("#").strip() or None, rest.strip()
    words = first.split()
    if 0 < len(words) <= 25 and len(first) <= 200 and not _SENTENCE_END.search(first):
        return first, rest.strip()
    return None, text


def _from_plain(text: str, where: str, doc_id: str, stem: str, markdown: bool) -> Article | FileProblem:
    text = normalize_text(text)
    if not text:
        return FileProblem(where, "file has no text")
    headline, body = _split_headline(text, markdown)
    return Article(
        doc_id=doc_id,
        title=headline or _title_from_name(stem),
        text=body,
        date=_date_from_name(stem),
        path=where,
    )


def _from_html(html: str, where: str, doc_id: str, stem: str) -> Article | FileProblem:
    import trafilatura

    doc = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False)
    body = normalize_text(getattr(doc, "text", None) or "") if doc is not None else ""
    if not body:
        return FileProblem(where, "no article text found in the HTML")
    return Article(
        doc_id=doc_id,
        title=(doc.title or "").strip() or _title_from_name(stem),
        text=body,
        date=doc.date or _date_from_name(stem),
        source=doc.sitename or doc.hostname or source_from_url(doc.url) or None,
        url=doc.url or None,
        path=where,
    )


def _from_record(record: Any, where: str, fallback_id: str) -> Article | FileProblem:
    if not isinstance(record, dict):
        return FileProblem(where, f"expected a JSON object, got {type(record).__name__}")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return FileProblem(where, "missing or empty 'text' field")
    text = normalize_text(text)
    explicit_id = record.get("doc_id", record.get("id"))
    doc_id = slug(str(explicit_id)) if explicit_id not in (None, "") else f"{fallback_id}-{content_hash(text)[:10]}"

    def field_str(*names: str) -> str | None:
        for name in names:
            value = record.get(name)
            if value not in (None, ""):
                return str(value).strip()
        return None

    title = field_str("title")
    url = field_str("url", "link")
    if title is None:
        headline, body = _split_headline(text, markdown=False)
        if headline:
            title, text = headline, body
    return Article(
        doc_id=doc_id,
        title=title or _title_from_url(url) or doc_id,
        text=text,
        date=field_str("date", "publish_date", "published"),
        source=field_str("source", "site", "publisher") or source_from_url(url),
        url=url,
        path=where,
    )


def _from_json(text: str, where: str, base_id: str) -> list[Article | FileProblem]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [FileProblem(where, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    if isinstance(data, dict):
        return [_from_record(data, where, base_id)]
    if isinstance(data, list):
        return [_from_record(rec, f"{where}[{i}]", base_id) for i, rec in enumerate(data)]
    return [FileProblem(where, "expected a JSON object or a list of objects with a 'text' field")]


def _from_jsonl(text: str, where: str, base_id: str) -> list[Article | FileProblem]:
    out: list[Article | FileProblem] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        line_where = f"{where}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            out.append(FileProblem(line_where, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        out.append(_from_record(record, line_where, base_id))
    return out
