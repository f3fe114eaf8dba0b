"""`tasks.broker.idle`, on a real Redis: what counts as work left for a connection."""

from __future__ import annotations

import redis

from sync.state import keys
from tasks.broker import UNACKED, idle, queue_names


def test_idle_until_a_job_waits_runs_or_a_record_is_locked(redis_client: redis.Redis) -> None:
    r = redis_client
    assert idle(r, "c1")
    r.set(keys.lock("c1", "reconcile", "sweep"), "1")  # held for the sweep interval: not work
    r.set(keys.pending("c2", "webcrm", "organisation", "7"), "1")  # another connection's
    assert idle(r, "c1")
    for work in (lambda: r.lpush(queue_names("backfill")[-1], "{}"),  # a queued job, any priority
                 lambda: r.hset(UNACKED, "tag", "{}"),  # running, or waiting for its retry
                 lambda: r.set(keys.pending("c1", "webcrm", "organisation", "7"), "1"),
                 lambda: r.set(keys.lock("c1", "organisation", "7"), "1")):
        work()
        assert not idle(r, "c1")
        r.flushdb()
        assert idle(r, "c1")
