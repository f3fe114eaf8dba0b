"""API call limits shared by every worker process through Redis.

* `SlidingWindowLimiter`: at most `limit` calls in any `window` seconds (webCRM allows 250 calls
  per sliding minute per auth code, webcrm-api.md §9).
* `DailyBudget`: calls per local day (Uniconta includes 5,000 calls per user per day and slows
  every call down past that, resetting at midnight, uniconta-api.md §4). Batch work stops at
  `budget - reserve` so live syncs keep the rest.

Both are meant as an API client's `before_request` hook, e.g.
`WebcrmClient(..., before_request=window.hook(max_wait=5))` or
`UnicontaClient(..., before_request=budget.acquire)`; `combine()` chains several.
Keys come from the caller (one per auth code / Uniconta user); nothing here derives them.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import redis

from sync.clients.errors import Throttled

Priority = Literal["live", "batch"]
PRIORITIES: tuple[str, ...] = ("live", "batch")

_priority: ContextVar[str] = ContextVar("sync_api_priority", default="live")


@contextmanager
def priority(name: Priority) -> Iterator[None]:
    """Mark the API calls made inside the block as `live` (default) or `batch` work."""
    if name not in PRIORITIES:
        raise ValueError(f"priority must be one of {PRIORITIES}")
    token = _priority.set(name)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> str:
    return _priority.get()


def combine(*hooks: Callable[[], Any] | None) -> Callable[[], None]:
    """One `before_request` hook that runs the given ones in order (None entries are skipped)."""
    steps = [hook for hook in hooks if hook is not None]

    def run() -> None:
        for step in steps:
            step()

    return run


# Sliding window over a sorted set: scores are call times, members are unique per call. Prune,
# count and add in one script, so no two processes can both take the last slot. Without a
# clock argument the script uses Redis' own TIME, so workers on different hosts share one clock.
_WINDOW_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 0.001 then wait = 0.001 end
return tostring(wait)
"""

# Daily counter: a batch call is refused (and not counted) once `used >= threshold`; a live call
# (threshold -1) is always counted. The key carries the local date and expires after 2 days.
_BUDGET_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local threshold = tonumber(ARGV[1])
if threshold >= 0 and used >= threshold then
  return {0, used}
end
used = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {1, used}
"""

_BUDGET_TTL = 2 * 24 * 3600


class SlidingWindowLimiter:
    """At most `limit` grants in any `window` seconds, across all processes using `key`.

    `limit=0` switches the limiter off. `clock` (epoch seconds) is for tests; by default the
    Redis server's clock is used.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        key: str,
        limit: int,
        window: float = 60.0,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 0 or window <= 0:
            raise ValueError("limit must be >= 0 and window > 0")
        if not key:
            raise ValueError("key is required")
        self.redis = redis_client
        self.key = key
        self.limit = limit
        self.window = float(window)
        self._clock = clock
        self._sleep = sleep
        self._script = redis_client.register_script(_WINDOW_SCRIPT)

    def acquire(self) -> float:
        """Take a slot: 0 when granted, else the seconds until the oldest call leaves the window."""
        if self.limit == 0:
            return 0.0
        now = "" if self._clock is None else repr(float(self._clock()))
        result = self._script(keys=[self.key], args=[self.limit, self.window, now, uuid.uuid4().hex])
        return float(result.decode() if isinstance(result, bytes) else result)

    def wait(self, max_wait: float = 0.0) -> None:
        """Take a slot, sleeping up to `max_wait` seconds in total; else raise `Throttled`.

        Raises:
            Throttled: no slot within `max_wait`; `retry_after` is the wait the limiter last saw.
        """
        deadline = time.monotonic() + max_wait
        while True:
            delay = self.acquire()
            if delay <= 0:
                return
            if delay > deadline - time.monotonic():
                raise Throttled(
                    f"rate limit {self.limit}/{self.window:g}s reached", retry_after=round(delay, 3)
                )
            # A little jitter, so processes woken by the same free slot do not all collide again.
            self._sleep(delay + random.uniform(0.0, 0.01))

    def hook(self, max_wait: float = 0.0) -> Callable[[], None]:
        """A `before_request` callable that waits up to `max_wait` seconds per call."""

        def before_request() -> None:
            self.wait(max_wait)

        return before_request

    def __repr__(self) -> str:
        return f"SlidingWindowLimiter({self.key!r}, {self.limit}/{self.window:g}s)"


class DailyBudget:
    """Calls per local calendar day, with a `reserve` that only live calls may use.

    Batch calls (inside `with priority("batch"):`) are refused once `used >= budget - reserve`;
    live calls always go through, even past the budget, because Uniconta only slows down then
    (uniconta-api.md §4), and `usage()` shows it. `budget=0` switches the budget off.
    `clock` returns epoch seconds (for tests).
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        key: str,
        budget: int,
        reserve: int,
        tz: str = "Europe/Copenhagen",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if budget < 0 or reserve < 0 or (budget and reserve > budget):
            raise ValueError("need 0 <= reserve <= budget")
        if not key:
            raise ValueError("key is required")
        self.redis = redis_client
        self.key = key
        self.budget = budget
        self.reserve = reserve
        self.tz = ZoneInfo(tz)
        self._clock = clock
        self._script = redis_client.register_script(_BUDGET_SCRIPT)

    def acquire(self) -> int:
        """Count one call for today and return today's count (0 when the budget is off).

        Raises:
            Throttled: a batch call once the batch share is used up; `retry_after` is the
                number of seconds until local midnight, when the count starts again.
        """
        if self.budget == 0:
            return 0
        now = self._clock()
        threshold = self.budget - self.reserve if current_priority() == "batch" else -1
        granted, used = self._script(keys=[self._day_key(now)], args=[threshold, _BUDGET_TTL])
        if not int(granted):
            raise Throttled(
                f"daily call budget: batch share used ({int(used)} of {self.budget - self.reserve})",
                retry_after=round(self.seconds_to_midnight(now), 3),
            )
        return int(used)

    def usage(self) -> dict[str, Any]:
        """Today's count: {"day", "used", "budget", "reserve", "remaining_for_batch"}."""
        now = self._clock()
        used = 0
        if self.budget:
            raw = self.redis.get(self._day_key(now))
            used = int(raw) if raw is not None else 0
        return {
            "day": self._local_day(now).isoformat(),
            "used": used,
            "budget": self.budget,
            "reserve": self.reserve,
            "remaining_for_batch": max(0, self.budget - self.reserve - used) if self.budget else 0,
        }

    def seconds_to_midnight(self, now: float | None = None) -> float:
        """Seconds from `now` (epoch) to the next local midnight (DST-aware)."""
        now = self._clock() if now is None else now
        tomorrow = self._local_day(now) + timedelta(days=1)
        midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=self.tz)
        return max(0.0, midnight.timestamp() - now)

    def _local_day(self, now: float) -> date:
        return datetime.fromtimestamp(now, self.tz).date()

    def _day_key(self, now: float) -> str:
        return f"{self.key}:{self._local_day(now).isoformat()}"

    def __repr__(self) -> str:
        return f"DailyBudget({self.key!r}, budget={self.budget}, reserve={self.reserve})"
