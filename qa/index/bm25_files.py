"""BM25's segments on disk (``qa.index.bm25``), read when a search first needs them.

A segment ``NAME`` is five files: ``NAME.json`` (its passage ids, its terms with their row of ``indptr``,
and the CRC-32 of each block of ``BLOCK`` postings) and four NumPy arrays ``NAME.<array>.npy`` (read
without pickle): ``indptr`` (term ``t``'s postings are rows ``indptr[t]:indptr[t+1]`` of the next two),
``docs`` and ``tfs`` (each posting's passage row and term frequency) and ``lengths`` (each passage's token
count). Loading opens the files and maps the postings, reading only their headers. The first search that
needs a segment reads its ``.json``, ``indptr`` and ``lengths`` whole, each checked against its SHA-256 in
the manifest then, and of the postings only the blocks that hold its words', each block checked against its
CRC-32 the first time it is read. So loading an index and adding to it read no postings, and a damaged file
is a ``CorruptIndexError`` naming it when it is read (a torn postings file when loading: its size disagrees
with its header). The files stay open, so a segment stays readable after a writer deleted its version.

A segment written before these files (``NAME.npz`` with the four arrays, and ``NAME.json``) is read whole the
first time a search needs it, checked against its SHA-256 then.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from qa.index.records import damaged

BLOCK = 1 << 18  # postings per checksummed block: 1 MiB of docs (int32), 1 MiB of tfs (float32)
ARRAYS = {
    "indptr": np.dtype(np.int64),
    "lengths": np.dtype(np.float32),
    "docs": np.dtype(np.int32),
    "tfs": np.dtype(np.float32),
}
POSTINGS = ("docs", "tfs")


@dataclass(frozen=True)
class Contents:
    """What a search reads of a segment before its postings: the passage ids (rows), each term's row of
    ``indptr``, ``indptr`` itself and each passage's token count."""

    ids: tuple[str, ...]
    terms: dict[str, int]
    indptr: np.ndarray
    lengths: np.ndarray


class Source(Protocol):
    """Where a segment's contents and postings are: in memory, or in its files (``files``, none in memory)."""

    files: tuple[str, ...]

    def size(self) -> int: ...

    def contents(self) -> Contents: ...

    def postings(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]: ...


class InMemory:
    """A segment made by this process."""

    files: tuple[str, ...] = ()

    def __init__(self, contents: Contents, docs: np.ndarray, tfs: np.ndarray) -> None:
        self._contents, self._docs, self._tfs = contents, docs, tfs

    def size(self) -> int:
        return len(self._contents.ids)

    def contents(self) -> Contents:
        return self._contents

    def postings(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        return self._docs[start:end], self._tfs[start:end]


def file_names(name: str) -> tuple[str, ...]:
    """The files of segment ``name``."""
    return (f"{name}.json", *(f"{name}.{key}.npy" for key in ARRAYS))


def write(folder: Path, name: str, contents: Contents, docs: np.ndarray, tfs: np.ndarray) -> None:
    """Write segment ``name``'s files into ``folder``."""
    given = {"indptr": contents.indptr, "lengths": contents.lengths, "docs": docs, "tfs": tfs}
    arrays = {key: np.ascontiguousarray(given[key], dtype=dtype) for key, dtype in ARRAYS.items()}
    for key, array in arrays.items():
        with open(folder / f"{name}.{key}.npy", "wb") as fh:
            np.save(fh, array, allow_pickle=False)
    crc = {key: [zlib.crc32(arrays[key][i : i + BLOCK]) for i in range(0, len(arrays[key]), BLOCK)] for key in POSTINGS}
    meta = {"ids": list(contents.ids), "terms": contents.terms, "block": BLOCK, "crc": crc}
    (folder / f"{name}.json").write_bytes(orjson.dumps(meta))


def open_segment(folder: Path, name: str, checksums: Mapping[str, str] | None) -> Source:
    """Segment ``name`` of ``folder``, opened (its postings mapped), read when first needed; ``checksums``:
    the SHA-256 of the folder's files, by name (None: not known, not checked)."""
    sums = checksums or {}
    if (folder / f"{name}.npz").is_file():
        return Packed(folder, name, sums)
    return Mapped(folder, name, sums)


class _Whole:
    """A file read whole when first needed, from the descriptor opened now, checked against its SHA-256."""

    def __init__(self, path: Path, sha256: str | None) -> None:
        self.path, self.sha256 = path, sha256
        self._fd = os.open(path, os.O_RDONLY)

    def read(self) -> bytes:
        size = os.fstat(self._fd).st_size
        parts, at = [], 0
        while at < size and (part := os.pread(self._fd, size - at, at)):
            parts.append(part)
            at += len(part)
        data = b"".join(parts)
        if self.sha256 is not None and hashlib.sha256(data).hexdigest() != self.sha256:
            raise damaged(self.path, "it does not match its checksum in the manifest (SHA-256)")
        return data

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


def _mapped(path: Path, dtype: np.dtype) -> np.ndarray:
    """The 1-d array of ``dtype`` in a ``.npy`` file, mapped: only its header is read."""
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            read_header = (
                np.lib.format.read_array_header_2_0 if version == (2, 0) else np.lib.format.read_array_header_1_0
            )
            shape, _, found = read_header(fh)
        except ValueError as exc:
            raise damaged(path, f"its header cannot be read ({exc})") from None
        offset, size = fh.tell(), os.fstat(fh.fileno()).st_size
        if found != dtype or len(shape) != 1:
            raise damaged(path, f"it holds {found} of shape {shape}, not a list of {dtype}")
        if size != offset + shape[0] * dtype.itemsize:
            raise damaged(path, f"it has {size} bytes where its header says {offset + shape[0] * dtype.itemsize}")
        if shape[0] == 0:
            return np.zeros(0, dtype)
        return np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape)


_UNREADABLE = (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile)  # what a damaged file raises when parsed


class Mapped:
    """A segment's five files: opened, its postings mapped; read when first needed, and checked then."""

    def __init__(self, folder: Path, name: str, sums: Mapping[str, str]) -> None:
        self.files = file_names(name)
        self._meta = _Whole(folder / self.files[0], sums.get(self.files[0]))
        self._whole = {
            key: _Whole(folder / f"{name}.{key}.npy", sums.get(f"{name}.{key}.npy")) for key in ("indptr", "lengths")
        }
        self._paths = {key: folder / f"{name}.{key}.npy" for key in POSTINGS}
        self._postings = {key: _mapped(path, ARRAYS[key]) for key, path in self._paths.items()}
        self._lock = threading.Lock()
        self._contents: Contents | None = None
        self._crc: dict[str, list[int]] = {}
        self._block = BLOCK
        self._checked = np.zeros(0, dtype=bool)  # the blocks checked against their CRC-32

    def size(self) -> int:
        return len(self.contents().ids)

    def contents(self) -> Contents:
        with self._lock:
            if self._contents is None:
                self._contents = self._read()
            return self._contents

    def _read(self) -> Contents:
        path = self._meta.path
        arrays = {}
        for key, file in self._whole.items():
            try:
                arrays[key] = np.load(io.BytesIO(file.read()), allow_pickle=False)
            except _UNREADABLE as exc:
                raise damaged(file.path, f"{type(exc).__name__}: {exc}") from None
        try:
            meta = orjson.loads(self._meta.read())
            contents = Contents(tuple(meta["ids"]), meta["terms"], arrays["indptr"], arrays["lengths"])
            self._block, self._crc = int(meta["block"]), {key: list(meta["crc"][key]) for key in POSTINGS}
        except _UNREADABLE as exc:
            raise damaged(path, f"{type(exc).__name__}: {exc}") from None
        blocks = -(-len(self._postings["docs"]) // max(self._block, 1))
        if not _consistent(contents, self._postings["docs"], self._postings["tfs"]) or not (
            self._block > 0 and all(len(self._crc[key]) == blocks for key in POSTINGS)
        ):
            raise damaged(path, "its ids, terms and arrays do not agree")
        self._checked = np.zeros(blocks, dtype=bool)
        return contents

    def postings(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        self.contents()  # the blocks' checksums
        if end > start:
            for block in range(start // self._block, (end - 1) // self._block + 1):
                if not self._checked[block]:
                    self._check(block)
        return self._postings["docs"][start:end], self._postings["tfs"][start:end]

    def _check(self, block: int) -> None:
        at = slice(block * self._block, (block + 1) * self._block)
        for key in POSTINGS:
            if zlib.crc32(self._postings[key][at]) != self._crc[key][block]:
                raise damaged(self._paths[key], f"postings block {block} does not match its checksum")
        self._checked[block] = True


class Packed:
    """A segment as written before (``NAME.npz`` and ``NAME.json``): read whole when first needed (its passage
    count, when its listing does not say it, from ``NAME.json`` alone)."""

    def __init__(self, folder: Path, name: str, sums: Mapping[str, str]) -> None:
        self.files = (f"{name}.npz", f"{name}.json")
        self._npz, self._meta = (_Whole(folder / n, sums.get(n)) for n in self.files)
        self._lock = threading.RLock()
        self._listed: tuple[tuple[str, ...], dict[str, int]] | None = None
        self._read: tuple[Contents, np.ndarray, np.ndarray] | None = None

    def size(self) -> int:
        return len(self._listing()[0])

    def _listing(self) -> tuple[tuple[str, ...], dict[str, int]]:
        with self._lock:
            if self._listed is None:
                try:
                    listed = orjson.loads(self._meta.read())
                    terms, ids = listed["terms"], tuple(listed["ids"])
                except _UNREADABLE as exc:
                    raise damaged(self._meta.path, f"{type(exc).__name__}: {exc}") from None
                if isinstance(terms, list):  # a list of terms, in row order, before format 4
                    terms = {t: i for i, t in enumerate(terms)}
                self._listed = ids, terms
            return self._listed

    def _parts(self) -> tuple[Contents, np.ndarray, np.ndarray]:
        with self._lock:
            if self._read is None:
                self._read = self._load()
            return self._read

    def _load(self) -> tuple[Contents, np.ndarray, np.ndarray]:
        try:
            with np.load(io.BytesIO(self._npz.read()), allow_pickle=False) as arrays:
                parts: dict[str, Any] = {k: arrays[k] for k in ARRAYS}
        except _UNREADABLE as exc:
            raise damaged(self._npz.path, f"{type(exc).__name__}: {exc}") from None
        contents = Contents(*self._listing(), parts["indptr"], parts["lengths"])
        if not _consistent(contents, parts["docs"], parts["tfs"]):
            raise damaged(self._npz.path, "its ids, terms and arrays do not agree")
        return contents, parts["docs"], parts["tfs"]

    def contents(self) -> Contents:
        return self._parts()[0]

    def postings(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        _, docs, tfs = self._parts()
        return docs[start:end], tfs[start:end]


def _consistent(contents: Contents, docs: np.ndarray, tfs: np.ndarray) -> bool:
    indptr, arrays = contents.indptr, {"indptr": contents.indptr, "lengths": contents.lengths, "docs": docs, "tfs": tfs}
    return (
        all(a.dtype == ARRAYS[key] and a.ndim == 1 for key, a in arrays.items())
        and len(indptr) == len(contents.terms) + 1
        and len(contents.lengths) == len(contents.ids)
        and int(indptr[-1]) == len(docs) == len(tfs)
    )
