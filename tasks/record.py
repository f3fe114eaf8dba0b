"""`sync.record`: one job per changed record — the path every sync travels.

Clear the pending mark, take the record's lock, let the flow re-read the
source and write the target; retry transient failures with backoff, park
permanent ones as dead letters with one Sentry event.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
import sentry_sdk
from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded

from sync.clients.errors import ApiError
from sync.events import Event
from sync.flows import FlowError, handler_for
from sync.logs import log_context
from sync.runtime import get_runtime
from sync.state import deadletters, intake, journal
from sync.state.locks import LockBusy, record_lock
from tasks.queues import SYNC_RECORD
from tasks.retry import backoff, contention_delay

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
            return _dead(rt.redis, ev, event, FlowError(f"unknown connection {ev.connection!r}"), "config", attempt)
        route = handler_for(ev.system, ev.entity)
        if route is None or not ctx.connection.enabled(route[0]):
            intake.clear_pending(rt.redis, ev)
            journal.note("ignored", reason="no flow" if route is None else f"flow {route[0]} is disabled")
            return "ignored"
        _flow, handler = route
        journal.note("started", attempt=attempt + 1, event=ev.event_id, origin=ev.origin, operation=ev.operation)
        intake.clear_pending(rt.redis, ev)
        try:
            with record_lock(rt.redis, ev.connection, ev.entity, ev.record_id):
                result = handler(ctx, ev)
        except LockBusy:
            journal.note("contended")
            raise self.retry(kwargs={**again, "contentions": contentions + 1},
                             countdown=contention_delay(), max_retries=None) from None
        except (ApiError, redis.RedisError, SoftTimeLimitExceeded) as err:
            retryable = getattr(err, "retryable", True)
            if not retryable:
                return _dead(rt.redis, ev, event, err, "permanent", attempt)
            elapsed = time.time() - first_attempt_at
            if attempt + 1 >= rt.settings.max_attempts or elapsed >= rt.settings.retry_window_seconds:
                return _dead(rt.redis, ev, event, err, "exhausted", attempt, first_attempt_at)
            delay = backoff(attempt, base=rt.settings.retry_base_seconds, cap=rt.settings.retry_max_seconds,
                            retry_after=getattr(err, "retry_after", None))
            journal.note("retry", error=str(err), in_seconds=delay, attempt=attempt + 1)
            log.info("transient failure, retrying in %.1f s: %s", delay, err)
            raise self.retry(kwargs=again, countdown=delay, max_retries=None) from None
        except FlowError as err:
            return _dead(rt.redis, ev, event, err, "invalid", attempt)
        except Exception as err:  # a bug: park it with context rather than loop on it
            log.exception("unexpected error")
            return _dead(rt.redis, ev, event, err, "bug", attempt)
        journal.note("done", action=result.action, **result.detail)
        log.info("%s %s %s: %s", ev.system, ev.entity, ev.record_id, result.action)
        return result.action


def _dead(r: Any, ev: Event, event: dict[str, Any], err: BaseException, kind: str, attempt: int,
          first_attempt_at: float | None = None) -> str:
    letter = deadletters.add(r, event=event, error=err, kind=kind, attempts=attempt + 1,
                             first_attempt_at=first_attempt_at)
    journal.note("dead-letter", id=letter, reason=kind, error=str(err))
    log.error("dead letter %s (%s): %s", letter, kind, err)
    sentry_sdk.capture_exception(err)
    return "dead-letter"
