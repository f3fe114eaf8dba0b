"""Retry delays: exponential backoff with full jitter, honouring Retry-After, capped.

The cap stays well below the broker's visibility timeout: a countdown longer
than it makes the Redis transport redeliver the job while a worker holds it.
"""

from __future__ import annotations

import random


def backoff(attempt: int, *, base: float, cap: float, retry_after: float | None = None,
            rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 0)."""
    rng = rng or random.Random()
    ceiling = min(cap, base * (2 ** max(attempt, 0)))
    delay = rng.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return round(delay, 3)


def contention_delay(rng: random.Random | None = None) -> float:
    """A short pause before retrying a record whose lock another worker holds."""
    return round((rng or random.Random()).uniform(0.2, 1.5), 3)
