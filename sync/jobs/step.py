"""One record's sync, as every job does it, and what a failure means for it.

`sync_one` is the path of one change (docs/architecture.md): route the event to its flow,
clear the pending mark *before* anything is read (a change during the sync queues a new job),
take the record's lock, let the flow re-read and write, journal the result. `after_failure`
turns what the flow raised into a verdict — retry later, retry when the lock is free, or a
dead letter — the same for a single job and for a record inside a batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
import sentry_sdk

from sync import metrics
from sync.clients.errors import ApiError, NotFound
from sync.config import Settings
from sync.events import Event
from sync.flows import ROUTES, FlowError, Result, handler_for
from sync.runtime import ConnectionContext
from sync.state import deadletters, intake, journal
from sync.state.locks import LockBusy, record_lock

log = logging.getLogger(__name__)


def sync_one(ctx: ConnectionContext, event: Event, *, attempt: int = 0, prepared: bool = False) -> Result:
    """Sync one record; the caller has opened its journal (`journal.recording`).

    `prepared`: the caller (a batch) already cleared the record's pending mark and holds its lock.
    Raises what the flow raises: `LockBusy`, the clients' errors, `redis.RedisError`, `FlowError`.
    """
    route = handler_for(event.system, event.entity)
    if route is None or not ctx.connection.enabled(route[0]):
        if not prepared:
            intake.clear_pending(ctx.redis, event)
        reason = "no flow" if route is None else f"flow {route[0]} is disabled"
        journal.note("ignored", reason=reason)
        metrics.synced(event.connection, flow_of(event.system, event.entity), "ignored", event.origin,
                       event.received_at)
        return Result("ignored", {"reason": reason})
    flow, handler = route
    journal.note("started", attempt=attempt + 1, event=event.event_id, origin=event.origin,
                 operation=event.operation)
    if prepared:
        result = handler(ctx, event)
    else:
        intake.clear_pending(ctx.redis, event)
        with record_lock(ctx.redis, event.connection, event.entity, event.record_id):
            result = handler(ctx, event)
    journal.note("done", action=result.action, **result.detail)
    metrics.synced(event.connection, flow, result.action, event.origin, event.received_at)
    log.info("%s %s %s: %s", event.system, event.entity, event.record_id, result.action)
    return result


@dataclass(frozen=True)
class Verdict:
    """What to do with a record whose sync raised: "contended" (again soon, no attempt used),
    "retry" (after `delay` seconds) or "dead" (a dead letter of kind `reason`)."""

    action: str
    delay: float = 0.0
    reason: str = ""


def after_failure(settings: Settings, err: BaseException, *, attempt: int, first_attempt_at: float,
                  transient: tuple[type[BaseException], ...] = (), contention_delay: float = 0.0,
                  backoff_delay: float | None = None, event: Event | None = None) -> Verdict:
    """The verdict for a failed attempt (counting from 0). `transient` adds exception types that are
    worth a retry (the task layer's time limit); `backoff_delay` is the retry delay it computed.
    With `event`, a retry or contention is counted for the metrics (dead letters count themselves)."""
    verdict = _verdict(settings, err, attempt=attempt, first_attempt_at=first_attempt_at, transient=transient,
                       contention_delay=contention_delay, backoff_delay=backoff_delay)
    if event is not None and verdict.action != "dead":
        metrics.put_off(event.connection, flow_of(event.system, event.entity),
                        "contended" if verdict.action == "contended" else "transient")
    return verdict


def _verdict(settings: Settings, err: BaseException, *, attempt: int, first_attempt_at: float,
             transient: tuple[type[BaseException], ...], contention_delay: float,
             backoff_delay: float | None) -> Verdict:
    if isinstance(err, LockBusy):
        return Verdict("contended", contention_delay)
    if isinstance(err, NotFound) and err.method in ("PUT", "PATCH") and attempt == 0:
        # The record was read moments ago and is gone now (deleted meanwhile): one more attempt reads it
        # again and takes the flow's path for a deleted record, instead of a dead letter.
        return Verdict("retry", backoff_delay or 0.0)
    if isinstance(err, (ApiError, redis.RedisError, *transient)):
        if not getattr(err, "retryable", True):
            return Verdict("dead", reason="permanent")
        elapsed = time.time() - first_attempt_at
        if attempt + 1 >= settings.max_attempts or elapsed >= settings.retry_window_seconds:
            return Verdict("dead", reason="exhausted")
        return Verdict("retry", backoff_delay or 0.0)
    if isinstance(err, FlowError):
        return Verdict("dead", reason="invalid")
    return Verdict("dead", reason="bug")


def dead_letter(r: redis.Redis, event: dict[str, Any], err: BaseException, kind: str, *, attempts: int,
                first_attempt_at: float | None = None) -> str:
    """Park a record for good: a dead letter, a journal entry, a log line and one Sentry event."""
    letter = deadletters.add(r, event=event, error=err, kind=kind, attempts=attempts,
                             first_attempt_at=first_attempt_at)
    journal.note("dead-letter", id=letter, reason=kind, error=str(err))
    metrics.dead_lettered(str(event.get("connection")), flow_of(str(event.get("system")), str(event.get("entity"))),
                          kind)
    if kind == "bug":
        log.error("dead letter %s (%s): %s", letter, kind, err, exc_info=err)
    else:
        log.error("dead letter %s (%s): %s", letter, kind, err)
    sentry_sdk.capture_exception(err)
    return letter


def flow_of(system: str, entity: str) -> str:
    """The flow an event belongs to (a metrics label), "none" when nothing syncs it."""
    route = ROUTES.get((system, entity))
    return route[0] if route else "none"
