"""`sync.record`: one job per changed record — the path every sync travels.

Clear the pending mark, take the record's lock, let the flow re-read the
source and write the target; retry transient failures with backoff, park
permanent ones as dead letters with one Sentry event.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import redis
from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded

from sync.clients.errors import Throttled
from sync.events import Event
from sync.flows import FlowError
from sync.jobs.retry import backoff, contention_delay
from sync.jobs.step import after_failure, dead_letter, sync_one
from sync.logs import log_context
from sync.runtime import get_runtime
from sync.state import intake, journal
from tasks.dispatch import enqueue, enqueue_batch
from tasks.queues import SYNC_RECORD

log = logging.getLogger(__name__)


@shared_task(bind=True, name=SYNC_RECORD, max_retries=None)
def sync_record(self: Task, event: dict[str, Any], contentions: int = 0,
                first_attempt_at: float | None = None) -> str:
    """Sync one record; returns the action taken (for logs and Flower).

    Transient failures are retried for `retry_window_seconds` from the first attempt (an
    attempt count alone says little under full jitter, where delays may be near zero),
    and at most `max_attempts` times.

    When Redis itself fails (it is the broker too), nothing can be decided or recorded:
    the job's message goes back to the queue instead of being acknowledged as failed.
    Celery turns a retry whose publish failed into `Reject(requeue=False)`, which would
    drop the event; it becomes `Reject(requeue=True)` here.
    """
    try:
        return _run(self, event, contentions, first_attempt_at)
    except Reject as rejected:
        raise Reject(rejected.reason, requeue=True) from None
    except redis.RedisError as err:
        log.warning("redis unavailable, returning the job to the queue: %s", err)
        raise Reject(err, requeue=True) from None


def _run(self: Task, event: dict[str, Any], contentions: int, first_attempt_at: float | None) -> str:
    ev = Event(**event)
    rt = get_runtime()
    attempt = self.request.retries - contentions
    first_attempt_at = first_attempt_at or time.time()
    again = {"event": event, "contentions": contentions, "first_attempt_at": first_attempt_at}
    with log_context(connection=ev.connection, entity=ev.entity, record=ev.record_id, event=ev.event_id), \
            journal.recording(rt.redis, ev.connection, ev.entity, ev.record_id):
        ctx = rt.context(ev.connection)
        if ctx is None:
            dead_letter(rt.redis, event, FlowError(f"unknown connection {ev.connection!r}"), "config",
                        attempts=attempt + 1)
            return "dead-letter"
        was_drained, waiting = intake.on_start(rt.redis, ev)
        if was_drained:
            journal.note("drained", reason="taken into a batch job with other waiting records of this entity")
            return "drained"
        threshold = ctx.connection.burst_threshold
        if threshold and attempt == 0 and not contentions and waiting >= threshold:
            # A burst: this job takes the entity's other waiting single jobs and syncs them all as one batch.
            # The batch is a job of its own, published before the single jobs are told: if this worker
            # dies now, the records are synced twice at worst, never lost.
            others = intake.adopt(rt.redis, ev, ctx.connection.batch_size - 1)
            if others:
                try:
                    enqueue_batch([ev, *others], 0.0)
                except Exception as err:  # the broker is gone: everyone keeps their own job, this one runs on
                    log.warning("could not publish the burst's batch job (%s); syncing this record alone", err)
                else:
                    intake.drain(rt.redis, others, into=ev)
                    journal.note("batch", records=len(others) + 1, reason="a burst of this entity")
                    return "batched"
        try:
            return sync_one(ctx, ev, attempt=attempt).action
        except Exception as err:
            verdict = after_failure(rt.settings, err, attempt=attempt, first_attempt_at=first_attempt_at,
                                    transient=(SoftTimeLimitExceeded,), contention_delay=contention_delay(),
                                    backoff_delay=backoff(attempt, base=rt.settings.retry_base_seconds,
                                                          cap=rt.settings.retry_max_seconds,
                                                          retry_after=getattr(err, "retry_after", None)),
                                    event=ev)
            if verdict.action == "contended":
                journal.note("contended")
                raise self.retry(kwargs={**again, "contentions": contentions + 1},
                                 countdown=verdict.delay, max_retries=None) from None
            if verdict.action == "retry" and isinstance(err, Throttled) and err.system == "webcrm":
                # Our own webCRM limiter is full: the record goes back in line, waiting where a burst can
                # take it into a batch (whose reads are shared), instead of holding a retry of its own.
                try:
                    intake.accept(rt.redis, replace(ev, delay=verdict.delay, delivery_id=None), enqueue)
                except intake.Unavailable:
                    pass  # retried below, as any transient failure
                else:
                    journal.note("throttled", in_seconds=verdict.delay, reason="webCRM's rate limit is used up")
                    return "requeued"
            if verdict.action == "retry":
                journal.note("retry", error=str(err), in_seconds=verdict.delay, attempt=attempt + 1)
                log.info("transient failure, retrying in %.1f s: %s", verdict.delay, err)
                raise self.retry(kwargs=again, countdown=verdict.delay, max_retries=None) from None
            dead_letter(rt.redis, event, err, verdict.reason, attempts=attempt + 1,
                        first_attempt_at=first_attempt_at if verdict.reason == "exhausted" else None)
            return "dead-letter"
