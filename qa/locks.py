"""A reader-writer lock: many questions at once, or one change to the index."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class ReadWriteLock:
    """Many readers together, or one writer alone; a waiting writer goes before new readers.

    Not reentrant: a thread holding it must not take it again.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the lock for reading (shared)."""
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the lock for writing (exclusive)."""
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class _Locked(Protocol):
    _lock: ReadWriteLock


L = TypeVar("L", bound=_Locked)


def reading(method: Callable[Concatenate[L, P], R]) -> Callable[Concatenate[L, P], R]:
    """Run ``method`` holding its object's ``_lock`` for reading: questions run together."""

    @functools.wraps(method)
    def locked(self: L, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock.reading():
            return method(self, *args, **kwargs)

    return locked


def writing(method: Callable[Concatenate[L, P], R]) -> Callable[Concatenate[L, P], R]:
    """Run ``method`` holding its object's ``_lock`` for writing: no reader sees a half-made change."""

    @functools.wraps(method)
    def locked(self: L, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock.writing():
            return method(self, *args, **kwargs)

    return locked
