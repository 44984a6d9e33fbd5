"""A latest-value slot: the newest value overwrites the old one; stale values are dropped, never queued."""
from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds one value and a version number. Writers never block on readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: T | None = None
        self._version = 0

    def put(self, value: T) -> None:
        with self._cond:
            self._value = value
            self._version += 1
            self._cond.notify_all()

    def get(self) -> tuple[T | None, int]:
        """The current value and its version (0: nothing put yet)."""
        with self._cond:
            return self._value, self._version

    def wait_newer(self, version: int, timeout: float | None = None) -> tuple[T | None, int]:
        """Wait until a value newer than ``version`` is put (or the timeout passes)."""
        with self._cond:
            self._cond.wait_for(lambda: self._version > version, timeout)
            return self._value, self._version
