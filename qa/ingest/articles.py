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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from qa.text import normalize_text, slug
from qa.types import SUPPORTED_SUFFIXES, Article, FileProblem, LoadReport

log = logging.getLogger(__name__)

_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})[-_ ]*")
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_BINARY_SHARE = 0.02  # more control characters than this (in decoded text) means not text
# Signatures of common binary formats someone may save with a text suffix.
_MAGIC = {
    b"%PDF-": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or .docx/.xlsx)",
    b"\x1f\x8b": "a gzip archive",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\xd0\xcf\x11\xe0": "an old Microsoft Office document",
}
_SCALAR = (str, int, float)
_SENTENCE_END = re.compile(r"[.!?:;,\"”’)—–-]$")  # also datelines such as "CNN —"


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
    """Yield (file, root) pairs; ``root`` is what doc ids are made relative to.

    Everything met in a folder that is not read is reported: hidden entries (once, not
    their contents), unsupported types, links to folders (not followed), special files.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in _walk(path, problems):
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


def _walk(folder: Path, problems: list[FileProblem]) -> Iterator[Path]:
    """Yield the files under ``folder`` in name order, reporting what is not walked."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        problems.append(FileProblem(str(folder), f"cannot read folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            problems.append(FileProblem(str(entry), "hidden (the name starts with '.')"))
        elif entry.is_symlink() and entry.is_dir():
            problems.append(FileProblem(str(entry), "link to a folder, not followed"))
        elif entry.is_dir():
            yield from _walk(entry, problems)
        elif entry.is_file():
            yield entry
        elif entry.is_symlink():
            problems.append(FileProblem(str(entry), "broken link"))
        else:
            problems.append(FileProblem(str(entry), "not a regular file"))


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
        kind = next((name for magic, name in _MAGIC.items() if raw.startswith(magic)), None)
        return [FileProblem(where, f"binary file ({kind or 'not text'})")]
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
    if not any(isinstance(item, Article) or item.skipped for item in out):
        out.append(FileProblem(where, "no articles in the file"))
    return out


def decode_bytes(raw: bytes) -> tuple[str, str | None] | None:
    """Decode file bytes: UTF-8 (BOM optional), UTF-16/32 (BOM, or UTF-16 without one), else Windows-1252.

    UTF-8 with a few bytes that are not UTF-8 keeps its UTF-8 and replaces those bytes.
    Returns ``(text, note)`` where ``note`` says what was not plain UTF-8, or ``None``
    for binary content.
    """
    decoded = _decode_unicode(raw)
    if decoded is None:
        return None
    text, note = decoded
    sample = text[:65536]
    if sample and len(_BINARY_CHARS.findall(sample)) > _BINARY_SHARE * len(sample):
        return None
    return text, note


def _decode_unicode(raw: bytes) -> tuple[str, str | None] | None:
    for boms, codec in (((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"), "utf-32"), ((b"\xff\xfe", b"\xfe\xff"), "utf-16")):
        if raw.startswith(boms):
            try:
                return raw.decode(codec), f"not UTF-8; decoded as {codec.upper()} (byte order mark)"
            except UnicodeDecodeError:
                return None
    if b"\x00" in raw[:8192]:
        codec = _utf16_without_bom(raw[:8192])
        if codec is None:
            return None
        try:
            return raw.decode(codec), f"not UTF-8; decoded as {codec.upper()} (no byte order mark)"
        except UnicodeDecodeError:
            return None
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    lenient = raw.decode("utf-8-sig", errors="replace")
    replaced = lenient.count("\ufffd")
    if sum(ord(c) > 0x7F for c in lenient) - replaced > replaced:  # mostly valid UTF-8: a few stray bytes
        return lenient, f"not valid UTF-8: {replaced} unreadable byte sequence(s) replaced by \ufffd"
    try:
        return raw.decode("cp1252"), "not UTF-8; decoded as Windows-1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "not UTF-8; decoded as Latin-1"


def _utf16_without_bom(head: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when NUL bytes sit at every other position (ASCII-range UTF-16), else None."""
    even, odd = head[0::2], head[1::2]
    if not odd:
        return None
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _one_line(value: str) -> str:
    """A metadata value as one clean line (title, source, date)."""
    return " ".join(normalize_text(value).split())


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
        title=_one_line(doc.title or "") or _title_from_name(stem),
        text=body,
        date=_one_line(doc.date or "") or _date_from_name(stem),
        source=_one_line(doc.sitename or doc.hostname or source_from_url(doc.url) or "") or None,
        url=_one_line(doc.url or "") or None,
        path=where,
    )


def _from_record(record: Any, where: str, fallback_id: str) -> list[Article | FileProblem]:
    """One JSON object as an article, with notes on fields that were ignored."""
    if not isinstance(record, dict):
        return [FileProblem(where, f"expected a JSON object, got {_json_type(record)}")]
    text = record.get("text")
    if text is None:
        return [FileProblem(where, "no 'text' field")]
    if not isinstance(text, str):
        return [FileProblem(where, f"the 'text' field must be a string, not {_json_type(text)}")]
    text = normalize_text(text)
    if not text:
        return [FileProblem(where, "the 'text' field is empty")]
    notes: list[FileProblem] = []

    def field_str(*names: str) -> str | None:
        for name in names:
            value = record.get(name)
            if isinstance(value, bool) or not isinstance(value, _SCALAR):
                if value is not None:
                    notes.append(FileProblem(where, f"field {name!r} is {_json_type(value)}, ignored", skipped=False))
                continue
            value = _one_line(str(value))
            if value:
                return value
        return None

    explicit_id = field_str("doc_id", "id")
    doc_id = slug(explicit_id) if explicit_id else f"{fallback_id}-{content_hash(text)[:10]}"
    title = field_str("title")
    url = field_str("url", "link")
    if title is None:
        headline, body = _split_headline(text, markdown=False)
        if headline:
            title, text = headline, body
    article = Article(
        doc_id=doc_id,
        title=title or _title_from_url(url) or doc_id,
        text=text,
        date=field_str("date", "publish_date", "published"),
        source=field_str("source", "site", "publisher") or source_from_url(url),
        url=url,
        path=where,
    )
    return [*notes, article]


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _from_json(text: str, where: str, base_id: str) -> list[Article | FileProblem]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [FileProblem(where, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
    except RecursionError:
        return [FileProblem(where, "invalid JSON: nested too deeply")]
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    if isinstance(data, dict):
        return _from_record(data, where, base_id)
    if isinstance(data, list):
        return [item for i, rec in enumerate(data) for item in _from_record(rec, f"{where}[{i}]", base_id)]
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
        except RecursionError:
            out.append(FileProblem(line_where, "invalid JSON: nested too deeply"))
            continue
        out.extend(_from_record(record, line_where, base_id))
    return out
