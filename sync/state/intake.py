"""Accepting an event: dedupe by delivery id, coalesce by record, enqueue one job.

Used by the receiver, reconciliation, resync, backfill and dead-letter requeue,
so every path into the workers behaves the same. Nothing is acknowledged that
was not stored: if Redis or the broker fails, the marks are rolled back and
`Unavailable` is raised (the receiver answers 503).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from sync import metrics
from sync.events import Event
from sync.state import journal, keys

SEEN_TTL = 24 * 3600
PENDING_TTL = 3600


class Unavailable(Exception):
    """Redis or the broker cannot take the event right now."""


@dataclass(frozen=True)
class Outcome:
    status: str  # "queued" | "coalesced" | "duplicate"
    event_id: str


Enqueue = Callable[[Event], None]


@metrics.counts_intake
def accept(r: redis.Redis, event: Event, enqueue: Enqueue) -> Outcome:
    """Dedupe, coalesce and enqueue; raises Unavailable when the event could not be stored."""
    seen_key = keys.seen(event.connection, event.delivery_id) if event.delivery_id else None
    pending_key = keys.pending(event.connection, event.system, event.entity, event.record_id)
    try:
        if seen_key and not r.set(seen_key, event.event_id, nx=True, ex=SEEN_TTL):
            journal.append(r, event.connection, event.entity, event.record_id, "duplicate",
                           system=event.system, delivery=event.delivery_id, origin=event.origin)
            return Outcome("duplicate", str(r.get(seen_key) or event.event_id))
        if not r.set(pending_key, event.event_id, nx=True, ex=PENDING_TTL):
            journal.append(r, event.connection, event.entity, event.record_id, "coalesced",
                           system=event.system, operation=event.operation, origin=event.origin,
                           event=event.event_id)
            return Outcome("coalesced", event.event_id)
    except redis.RedisError as err:
        raise Unavailable(f"redis: {type(err).__name__}") from err
    try:
        enqueue(event)
    except BaseException as err:  # the broker is Redis too; any failure means "not stored"
        # Roll back on Ctrl-C too: a pending mark without a job would hold the record back.
        _rollback(r, seen_key, pending_key)
        if not isinstance(err, Exception):
            raise
        raise Unavailable(f"broker: {type(err).__name__}") from err
    try:
        journal.append(r, event.connection, event.entity, event.record_id, "queued", system=event.system,
                       operation=event.operation, origin=event.origin, event=event.event_id,
                       delivery=event.delivery_id)
    except redis.RedisError:
        pass  # the job is queued; a missing journal line must not turn it into a 503
    return Outcome("queued", event.event_id)


def clear_pending(r: redis.Redis, event: Event) -> None:
    """Called by the job before it re-reads the source, so later changes queue a new job."""
    r.delete(keys.pending(event.connection, event.system, event.entity, event.record_id))


def _rollback(r: redis.Redis, *names: str | None) -> None:
    try:
        present = [n for n in names if n]
        if present:
            r.delete(*present)
    except redis.RedisError:
        pass


EnqueueBatch = Callable[[list[Event], float], None]


@metrics.counts_intake
def accept_many(r: redis.Redis, events: list[Event], enqueue_batch: EnqueueBatch, *, countdown: float = 0.0
                ) -> list[Outcome]:
    """`accept` for many records of one connection at once: one batch job for those not already pending.

    Each record gets its pending mark as with `accept` (a record whose job is already pending is
    coalesced into that job); the records left over travel in one batch job, published after
    `countdown` seconds. If the publish fails, their marks are rolled back and `Unavailable` raised.
    """
    if not events:
        return []
    marks = [keys.pending(e.connection, e.system, e.entity, e.record_id) for e in events]
    try:
        pipe = r.pipeline(transaction=False)
        for event, mark in zip(events, marks, strict=True):
            pipe.set(mark, event.event_id, nx=True, ex=PENDING_TTL)
        taken = pipe.execute()
    except redis.RedisError as err:
        raise Unavailable(f"redis: {type(err).__name__}") from err
    fresh = [e for e, ok in zip(events, taken, strict=True) if ok]
    if fresh:
        try:
            enqueue_batch(fresh, countdown)
        except BaseException as err:
            _rollback(r, *(m for m, ok in zip(marks, taken, strict=True) if ok))
            if not isinstance(err, Exception):
                raise
            raise Unavailable(f"broker: {type(err).__name__}") from err
    outcomes = []
    for event, ok in zip(events, taken, strict=True):
        status = "queued" if ok else "coalesced"
        outcomes.append(Outcome(status, event.event_id))
        try:
            journal.append(r, event.connection, event.entity, event.record_id, status, system=event.system,
                           operation=event.operation, origin=event.origin, event=event.event_id,
                           **({"batch": len(fresh)} if ok else {}))
        except redis.RedisError:
            pass  # the job is queued; a missing journal line must not turn it into a failure
    return outcomes
