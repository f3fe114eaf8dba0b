"""`sync.batch`: many records in one job — backfill pages, reconciliation, bursts, echo checks.

Each record is synced as `sync.record` would sync it (sync/jobs/batch.py); their API calls are
shared. What the records' verdicts ask for is done here, once for the batch: the records to retry
go back in one batch job after the longest of their delays, the contended ones in another after
a short pause; dead letters were written by the records themselves.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from kombu.exceptions import OperationalError

from sync.config import Settings
from sync.events import Event
from sync.jobs.batch import Batch
from sync.jobs.retry import backoff, contention_delay
from sync.runtime import ConnectionContext, get_runtime
from tasks.dispatch import enqueue_batch
from tasks.queues import SYNC_BATCH

log = logging.getLogger(__name__)


@shared_task(bind=True, name=SYNC_BATCH, max_retries=None)
def sync_batch(self: Task, connection: str, events: list[dict[str, Any]], attempt: int = 0,
               first_attempt_at: float | None = None) -> dict[str, int]:
    """Sync the records of a batch; returns how many ended how (for logs and Flower).

    As with `sync.record`, a Redis failure returns the job to the queue: every record of it is
    idempotent, so running the batch again is safe, and losing it is not.
    """
    try:
        return _run(connection, [Event(**e) for e in events], attempt, first_attempt_at or time.time())
    except (redis.RedisError, OperationalError) as err:  # Redis, or the broker on it, while syncing or republishing
        log.warning("redis unavailable, returning the batch to the queue: %s", err)
        raise Reject(err, requeue=True) from None


def _run(connection: str, events: list[Event], attempt: int, first_attempt_at: float) -> dict[str, int]:
    rt = get_runtime()
    ctx = rt.context(connection)
    if ctx is None:
        raise Reject(f"unknown connection {connection!r}", requeue=False)
    return run_batch(ctx, rt.settings, events, attempt, first_attempt_at)


def run_batch(ctx: ConnectionContext, settings: Settings, events: list[Event], attempt: int,
              first_attempt_at: float) -> dict[str, int]:
    """Run the records as one batch here; what their verdicts ask for goes out as (at most) two batch jobs."""
    batch = Batch(ctx, settings, attempt=attempt, first_attempt_at=first_attempt_at,
                  transient=(SoftTimeLimitExceeded,), contention=contention_delay,
                  backoff=lambda n, retry_after: backoff(n, base=settings.retry_base_seconds,
                                                         cap=settings.retry_max_seconds, retry_after=retry_after))
    outcomes = batch.run(events)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
    retry = [o for o in outcomes if o.verdict and o.verdict.action == "retry"]
    if retry:
        delay = max(o.verdict.delay for o in retry if o.verdict)
        enqueue_batch([o.event for o in retry], delay, attempt=attempt + 1, first_attempt_at=first_attempt_at)
    contended = [o for o in outcomes if o.verdict and o.verdict.action == "contended"]
    if contended:
        delay = max(o.verdict.delay for o in contended if o.verdict)
        enqueue_batch([o.event for o in contended], delay, attempt=attempt, first_attempt_at=first_attempt_at)
    log.info("batch of %d on %s in %d rounds: %s", len(events), ctx.connection.id, batch.rounds, counts)
    return counts
