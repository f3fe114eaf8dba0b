"""Sending a sync job for an event (routing is declared in tasks/queues.py)."""

from __future__ import annotations

from celery import Celery, current_app

from sync.events import Event
from tasks.queues import SYNC_RECORD


def enqueue(event: Event, app: Celery | None = None) -> None:
    """Publish the job for an event; raises if the broker does not take it."""
    # A short argument summary for Flower: Celery otherwise builds one with saferepr on every
    # publish, a quarter of the receiver's time per webhook.
    summary = f"{event.system} {event.entity} {event.record_id} ({event.origin})"
    (app or current_app).send_task(SYNC_RECORD, kwargs={"event": event.task_kwargs()}, argsrepr="()",
                                   kwargsrepr=summary)


def enqueuer(app: Celery):  # type: ignore[no-untyped-def]
    """`enqueue` bound to a specific app (the receiver's producer)."""
    return lambda event: enqueue(event, app)
