"""What one process holds of a Milvus library (``qa.index.milvus_library``): every article's heading, kept
up to date with the library's change log, which every process's writes add to.

Reading the log costs one small query; it is read at most every ``REFRESH_S`` seconds, when the library is
asked something, so what another process added, replaced or removed shows within that time. The headings
of the articles a log row names are read again; a row naming too many (or a gap: a process that has not
read the log for longer than it is kept) reads every heading again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from qa.index.stores.milvus_library import HeadingRow, LibraryCollections

REFRESH_S = 1.0  # how stale the headings may be


class Headings:
    """Each article's heading, in the order the articles were added, as the change log says now."""

    def __init__(self, collections: LibraryCollections, forget: Callable[[str | None], None]) -> None:
        self._rows = collections
        self._forget = forget  # drops a cached copy of an article that changed (None: of every article)
        self._lock = threading.Lock()
        self.changes = 0  # changes seen (this process's own and others')
        self._checked = 0.0  # when the change log was last read
        self._seen: set[str] = set()  # the change log rows applied
        self._held: dict[str, HeadingRow] = {}
        with self._lock:
            self._reload()

    def current(self, force: bool = False) -> dict[str, HeadingRow]:
        """The headings, brought up to date with the change log when it was read over ``REFRESH_S`` ago
        (``force``: now)."""
        if not force and time.monotonic() - self._checked < REFRESH_S:
            return self._held
        with self._lock:
            if not force and time.monotonic() - self._checked < REFRESH_S:
                return self._held
            newest = max(self._seen, default="")
            logged = self._rows.changes(newest)
            new = sorted(k for k in logged if k not in self._seen)
            # the row last applied was deleted (the log is kept a day), or a row names too many: read everything
            if (newest and newest not in logged) or any(logged[k] is None for k in new):
                self._reload()
                self.changes += 1
                return self._held
            changed = {doc_id for key in new for doc_id in logged[key] or ()}
            if changed:
                held = dict(self._held)
                for doc_id in changed:
                    held.pop(doc_id, None)
                    self._forget(doc_id)
                held |= {h.doc_id: h for h in self._rows.headings_of(sorted(changed))}
                self._held = dict(sorted(held.items(), key=lambda item: (item[1].added, item[0])))
                self.changes += 1
            self._seen = {k for k in self._seen | set(new) if k >= min(logged, default="")}
            self._checked = time.monotonic()
            return self._held

    def _reload(self) -> None:
        self._seen = set(self._rows.changes())
        self._held = {h.doc_id: h for h in self._rows.headings()}
        self._forget(None)
        self._checked = time.monotonic()
