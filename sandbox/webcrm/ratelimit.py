"""webCRM's rate limit: N requests per rolling 60 s window per application token [D S2].

Only requests that were let through count; a rejected request does not extend the wait.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW = 60.0


class RollingWindowLimiter:
    def __init__(self, limit: Callable[[], int], clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit  # read on every hit, so admin changes apply at once; 0 = off
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count one request for `key`; None when allowed, else the whole seconds to wait (>= 1)."""
        limit = self._limit()
        if limit <= 0:
            return None
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - WINDOW:
                hits.popleft()
            if len(hits) >= limit:
                # the oldest counted request leaves the window first
                oldest = hits[len(hits) - limit]
                return max(1, math.ceil(oldest + WINDOW - now))
            hits.append(now)
            return None

    def used(self, key: str) -> int:
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key, ())
            return sum(1 for t in hits if t > now - WINDOW)

    def clear(self) -> None:
        with self._lock:
            self._hits.clear()
