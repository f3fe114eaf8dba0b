"""The call log: what clients asked of a sandbox, so tests can assert on traffic, not just results."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

MAX_ENTRIES = 50_000  # oldest entries are forgotten past this; counters keep counting


class CallLog:
    """Thread-safe log of API calls with per-route and per-status counters.

    `seq` keeps increasing across `clear()`, so a poller's `since` never skips new calls.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict] = deque(maxlen=max_entries)
        self._counters: Counter[str] = Counter()
        self._seq = 0

    def record(self, *, method: str, path: str, rule: str, status: int, ms: float, query: str = "",
               user: str = "") -> None:
        """Append one call; `rule` is the matched URL rule (or the path when none matched)."""
        with self._lock:
            self._seq += 1
            self._entries.append({
                "seq": self._seq, "method": method, "path": path, "rule": rule, "status": status,
                "ms": round(ms, 3), "query": query, "user": user, "at": time.time(),
            })
            self._counters[f"{method} {rule}"] += 1
            self._counters[f"status:{status}"] += 1

    def entries(self, since: int = 0) -> list[dict]:
        """Copies of the entries with seq > since, oldest first."""
        with self._lock:
            return [dict(e) for e in self._entries if e["seq"] > since]

    def counters(self) -> dict[str, int]:
        """{"GET /Organisations/<int:id>": 3, ..., "status:200": 3} since the last clear()."""
        with self._lock:
            return dict(self._counters)

    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._counters.clear()
