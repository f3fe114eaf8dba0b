"""Waiting out rate limits inside a block, for callers that cannot be retried later as a job.

A sync job that meets a 429 (`RateLimited`) or our own limiter (`Throttled`) is retried by
Celery after `retry_after`. A reconciliation sweep is one long read: failing it on a 429
throws its progress away (issue 14: `syncctl reconcile` failed with "rate limit 250/60s
reached"). Inside `waiting_out_rate_limits(...)`, every API call of this thread that is
refused that way sleeps `retry_after` and is sent again, until the block's total wait would
exceed its bound; then the error is raised as before, saying how long was waited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sync.clients.errors import ApiError, RateLimited, Throttled

DEFAULT_WAIT = 5.0  # a 429 without Retry-After


@dataclass
class Patience:
    """What a block may still wait: `max_seconds` in total, and never past `deadline` (monotonic)."""

    max_seconds: float
    note: Callable[[str], None]
    deadline: float | None = None
    waited: float = 0.0
    sleep: Callable[[float], None] = time.sleep

    def wait_out(self, err: ApiError) -> bool:
        """Sleep out `err` if the bound allows (True: send the call again); else mark the error (False)."""
        if not isinstance(err, RateLimited | Throttled):
            return False
        wait = err.retry_after if err.retry_after is not None else DEFAULT_WAIT
        left = self.max_seconds - self.waited
        if self.deadline is not None:
            left = min(left, self.deadline - time.monotonic())
        where = " ".join(p for p in (err.system, err.method, err.path) if p) or "an API call"
        if wait > left:
            if self.waited or wait <= self.max_seconds:
                err.message = (f"{err.message}; gave up waiting after {self.waited:.0f} s "
                               f"(at most {self.max_seconds:.0f} s per sweep)")
            return False
        self.note(f"rate limited ({err.message or err.status}): waiting {wait:.0f} s before {where} "
                  f"({self.waited + wait:.0f} s of at most {self.max_seconds:.0f} s)")
        self.sleep(wait)
        self.waited += wait
        return True


_current: ContextVar[Patience | None] = ContextVar("rate_limit_patience", default=None)


@contextmanager
def waiting_out_rate_limits(max_seconds: float, note: Callable[[str], None], *,
                            deadline: float | None = None) -> Iterator[Patience]:
    """API calls in this block wait out 429s and our limiters, `max_seconds` in total (0: never)."""
    token = _current.set(Patience(max_seconds, note, deadline) if max_seconds > 0 else None)
    try:
        yield _current.get() or Patience(0, note, deadline)
    finally:
        _current.reset(token)


def current() -> Patience | None:
    return _current.get()
