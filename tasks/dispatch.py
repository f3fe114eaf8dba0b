"""Sending sync jobs: one per event, or one batch job for many (routing is declared in tasks/queues.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from celery import Celery, current_app

from sync.events import Event
from tasks.queues import SYNC_BATCH, SYNC_RECORD


def enqueue(event: Event, app: Celery | None = None) -> None:
    """Publish the job for an event; raises if the broker does not take it."""
    # A short argument summary for Flower: Celery otherwise builds one with saferepr on every
    # publish, a quarter of the receiver's time per webhook.
    summary = f"{event.system} {event.entity} {event.record_id} ({event.origin})"
    (app or current_app).send_task(SYNC_RECORD, kwargs={"event": event.task_kwargs()}, argsrepr="()",
                                   kwargsrepr=summary, countdown=event.delay or None)


def enqueue_batch(events: list[Event], countdown: float = 0.0, app: Celery | None = None, *,
                  attempt: int = 0, first_attempt_at: float | None = None) -> None:
    """Publish one batch job for events of one connection; raises if the broker does not take it."""
    if not events:
        return
    kinds = Counter(f"{e.system} {e.entity}" for e in events)
    summary = f"{len(events)} records: " + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()) + \
        f" ({events[0].origin})"
    kwargs: dict[str, Any] = {"connection": events[0].connection, "events": [e.task_kwargs() for e in events]}
    if attempt:
        kwargs["attempt"] = attempt
    if first_attempt_at:
        kwargs["first_attempt_at"] = first_attempt_at
    (app or current_app).send_task(SYNC_BATCH, kwargs=kwargs, countdown=countdown or None, argsrepr="()",
                                   kwargsrepr=summary)


def enqueuer(app: Celery):  # type: ignore[no-untyped-def]
    """`enqueue` bound to a specific app (the receiver's producer)."""
    return lambda event: enqueue(event, app)


def batch_enqueuer(app: Celery):  # type: ignore[no-untyped-def]
    """`enqueue_batch` bound to a specific app (syncctl's producer)."""
    return lambda events, countdown=0.0: enqueue_batch(events, countdown, app)
