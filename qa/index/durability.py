"""Durable files for the index folder: a write lock, SHA-256 checksums, atomic small writes.

- ``WriteLock``: one writer at a time per index folder. The lock is an ``flock`` on
  ``write.lock``, which the kernel releases when its process dies, so a lock left by a
  crashed writer is simply taken over; the file names the holder (pid, host, command).
- ``file_checksums`` / ``verify_checksums``: a SHA-256 per file of a version folder,
  recorded in the manifest and checked at load (a file read on demand: when it is read), so a
  torn or damaged file is an error instead of wrong answers.
- ``write_atomically`` and ``fsync_dir``: a small file replaced in one step, and renames
  made durable.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from types import TracebackType

from qa.errors import CorruptIndexError, IndexLockedError

log = logging.getLogger(__name__)

LOCK_FILE = "write.lock"
_CHUNK = 1 << 20


class WriteLock:
    """Exclusive write access to an index folder, for the length of a ``with`` block.

    Raises ``IndexLockedError`` (naming the lock file and the holder's pid) when another
    writer, in this process or another, holds it. Not re-entrant.
    """

    def __init__(self, index_dir: str | Path) -> None:
        self.root = Path(index_dir).resolve()
        self.path = self.root / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> WriteLock:
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise IndexLockedError(str(self.root), str(self.path), holder) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # a releasing writer unlinked the file we opened: lock the new one
        stale = _read_holder(fd)
        if stale:
            log.warning("Taking over the lock %s left by a writer that is no longer running (%s)", self.path, stale)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_holder_info()).encode("utf-8"))
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # before unlocking, so no one locks a file about to vanish
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        """True inside the ``with`` block."""
        return self._fd is not None


def _holder_info() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv)[:200],
    }


def _read_holder(fd: int) -> str:
    """Describe the writer recorded in a lock file ("pid 123 on host, since ..."), or ""."""
    try:
        raw = os.pread(fd, 4096, 0)
        info = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (OSError, ValueError):
        return "holder unknown"
    if not isinstance(info, dict) or "pid" not in info:
        return "holder unknown" if raw.strip() else ""
    return f"pid {info['pid']} on {info.get('host', '?')}, since {info.get('since', '?')}: {info.get('command', '')}"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def sha256_file(path: Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_checksums(
    folder: Path,
    exclude: tuple[str, ...] = (),
    linked_from: Path | None = None,
    known: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return {relative POSIX path: SHA-256} for every file under ``folder``, flushing each to disk. A file
    that is the same file (a hard link) as the one at its path under ``linked_from``, whose checksum is
    ``known``, keeps that checksum: the segments a version links from the one before are not read again."""
    sums: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in exclude:
            continue
        if known and rel in known and linked_from is not None and _same_inode(path, linked_from / rel):
            sums[rel] = known[rel]
            continue
        sums[rel] = sha256_file(path)
        _fsync_path(path)
    return sums


def _same_inode(a: Path, b: Path) -> bool:
    try:
        x, y = a.stat(), b.stat()
    except OSError:
        return False
    return (x.st_ino, x.st_dev) == (y.st_ino, y.st_dev)


def verify_checksums(
    folder: Path, checksums: object, index_dir: str, on_demand: Callable[[str], bool] = lambda rel: False
) -> None:
    """Raise ``CorruptIndexError`` unless every file listed in ``checksums`` exists with that SHA-256. Files
    for which ``on_demand(rel)`` holds are read when a search first needs them (a record, a segment, a block of
    postings at a time), each checked against its checksum then: here they need only exist (reading them whole
    would make loading read the whole library)."""
    if not isinstance(checksums, dict):
        raise CorruptIndexError(index_dir, "the manifest's file checksums are not a mapping")
    for rel, expected in checksums.items():
        parts = PurePosixPath(str(rel)).parts
        if not parts or PurePosixPath(str(rel)).is_absolute() or ".." in parts:
            raise CorruptIndexError(index_dir, f"the manifest lists an unsafe file name {rel!r}")
        path = folder.joinpath(*parts)
        try:
            if on_demand(str(rel)):
                if not path.is_file():
                    raise FileNotFoundError(path)
                continue
            actual = sha256_file(path)
        except FileNotFoundError:
            raise CorruptIndexError(index_dir, f"{rel} is missing") from None
        except OSError as exc:
            raise CorruptIndexError(index_dir, f"{rel} cannot be read: {exc.strerror or exc}") from exc
        if actual != expected:
            raise CorruptIndexError(index_dir, f"{rel} is damaged (its SHA-256 does not match the manifest)")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: readers see the old or the new content."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make renames and new entries in ``folder`` durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def link_or_copy(source: Path, target: Path) -> None:
    """Give ``target`` the content of the immutable file ``source``: a hard link, or a copy where links fail."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
