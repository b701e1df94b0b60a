"""Records kept on disk and read when asked for: each is one JSON line of an immutable segment file,
found by its byte offsets, checked against its CRC-32 and parsed on first use (the most recently used
stay parsed). Loading an index does not read these files whole, so each record carries its own checksum:
a damaged record is a ``CorruptIndexError`` naming its file when it is read.

Loading an index reads only where each record is; a question reads the few records its passages need.
The files are held open from loading on, so a record stays readable after a later write has deleted
the version folder it was read from (a segment that lives on is linked into the new version, and
``LazyRecords.locate`` moves records to the new version's files after each write).
"""

from __future__ import annotations

import itertools
import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from qa.errors import CorruptIndexError

T = TypeVar("T")


class RecordFile:
    """An immutable file of records, one a line, held open for reading at offsets (from any thread:
    ``os.pread``): line ``row`` is bytes ``offsets[row]:offsets[row + 1]``, with CRC-32 ``crcs[row]``."""

    def __init__(self, path: Path, offsets: Sequence[int], crcs: Sequence[int]) -> None:
        if len(offsets) != len(crcs) + 1:
            raise ValueError(f"{path.name}: {len(crcs)} records but {len(offsets)} offsets")
        self.path = path
        self.offsets, self.crcs = offsets, crcs
        self._fd = os.open(path, os.O_RDONLY)

    def read(self, row: int) -> bytes:
        """Record ``row``, checked against its CRC-32."""
        start, end = self.offsets[row], self.offsets[row + 1]
        data = os.pread(self._fd, end - start, start)
        if len(data) != end - start:
            raise damaged(self.path, f"it ends before byte {end}")
        if zlib.crc32(data) != self.crcs[row]:
            raise damaged(self.path, f"the record at bytes {start}-{end} does not match its checksum")
        return data

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


def damaged(path: Path, why: str) -> CorruptIndexError:
    """The error for a damaged file of a version, ``<index>/<version>/<folder>/<file>``: it names the file."""
    version, folder = path.parent.parent, path.parent.name
    return CorruptIndexError(str(version.parent), f"{version.name}/{folder}/{path.name} is damaged: {why}")


class LazyRecords(MutableMapping[str, T], Generic[T]):
    """Records by doc id: stored ones are read and parsed when first asked for (``keep_parsed`` of them
    stay parsed), records set here stay in memory until ``locate`` says where they were written."""

    def __init__(self, parse: Callable[[bytes], T], dump: Callable[[T], bytes], keep_parsed: int = 4096) -> None:
        self._parse = parse
        self._dump = dump
        self._where: dict[str, tuple[RecordFile, int]] = {}  # doc id -> (file, row)
        self._set: dict[str, T] = {}
        self._parsed: OrderedDict[str, T] = OrderedDict()
        self._keep = keep_parsed
        self._lock = threading.Lock()

    def locate(self, doc_ids: Iterable[str], file: RecordFile, rows: Iterable[int]) -> None:
        """Say that the records of ``doc_ids`` are these ``rows`` of ``file`` (they are read from there from
        now on)."""
        with self._lock:
            located = dict(zip(doc_ids, zip(itertools.repeat(file), rows, strict=False), strict=True))
            self._where.update(located)
            if self._set:
                for doc_id in located:
                    self._set.pop(doc_id, None)

    def __getitem__(self, doc_id: str) -> T:
        with self._lock:
            if doc_id in self._set:
                return self._set[doc_id]
            if doc_id in self._parsed:
                self._parsed.move_to_end(doc_id)
                return self._parsed[doc_id]
            file, row = self._where[doc_id]
        record = self._parse(file.read(row))
        with self._lock:
            if doc_id in self._where:
                self._parsed[doc_id] = record
                while len(self._parsed) > self._keep:
                    self._parsed.popitem(last=False)
        return record

    def line(self, doc_id: str) -> bytes:
        """The record as one JSON line, as stored (read, not parsed, when it was not asked for)."""
        with self._lock:
            where = self._where.get(doc_id) if doc_id not in self._set else None
        if where is not None:
            file, row = where
            return file.read(row).rstrip(b"\n") + b"\n"
        return self._dump(self[doc_id]).rstrip(b"\n") + b"\n"

    def __setitem__(self, doc_id: str, record: T) -> None:
        with self._lock:
            self._where.pop(doc_id, None)
            self._parsed.pop(doc_id, None)
            self._set[doc_id] = record

    def __delitem__(self, doc_id: str) -> None:
        with self._lock:
            found = self._set.pop(doc_id, None) is not None
            found = self._where.pop(doc_id, None) is not None or found
            self._parsed.pop(doc_id, None)
        if not found:
            raise KeyError(doc_id)

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter([*self._where, *self._set])

    def __len__(self) -> int:
        return len(self._where) + len(self._set)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._set or doc_id in self._where
