"""Waiting out rate limits inside a block (sync/clients/patience.py): the webCRM client behind our own
shared limiter (a real Redis) against the webCRM sandbox, and the bound."""

from __future__ import annotations

import pytest
import redis

from sync.clients.errors import RateLimited, Throttled, Transient
from sync.clients.patience import Patience, waiting_out_rate_limits
from sync.clients.webcrm import WebcrmClient
from sync.state.ratelimit import SlidingWindowLimiter
from tests.support.context import Sandboxes


def test_calls_refused_by_our_limiter_wait_and_go_through(sandboxes: Sandboxes, redis_client: redis.Redis) -> None:
    limiter = SlidingWindowLimiter(redis_client, "test:rate", limit=1, window=1.0)
    notes: list[str] = []
    with WebcrmClient(sandboxes.webcrm.url, "sandbox-token", before_request=limiter.hook(0)) as client:
        with pytest.raises(Throttled, match="rate limit 1/1s reached"):  # outside the block: fails at once
            client.login()
            client.active_users()
        with waiting_out_rate_limits(30, notes.append) as patience:
            client.active_users()
            client.active_users()
    assert patience.waited > 0 and len(notes) >= 2
    assert all("rate limited (rate limit 1/1s reached): waiting" in n and "of at most 30 s" in n for n in notes)


def test_the_bound_and_errors_that_are_no_rate_limit() -> None:
    slept: list[float] = []
    bounded = Patience(10, lambda line: None, sleep=slept.append)
    assert bounded.wait_out(RateLimited("busy", retry_after=6)) and slept == [6]
    late = RateLimited("busy", retry_after=6)
    assert not bounded.wait_out(late) and "gave up waiting after 6 s (at most 10 s per sweep)" in str(late)
    budget = Throttled("daily call budget: batch share used", retry_after=36000)
    assert not Patience(10, lambda line: None).wait_out(budget) and "gave up" not in str(budget)
    assert not Patience(10, lambda line: None).wait_out(Transient("HTTP 503"))  # a 5xx is not waited out
