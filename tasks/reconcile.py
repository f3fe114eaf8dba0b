"""`sync.reconcile`: the periodic sweep (Celery beat) for one connection."""

from __future__ import annotations

from celery import shared_task

from sync.reconcile import sweep
from sync.runtime import get_runtime
from tasks.dispatch import enqueue
from tasks.queues import RECONCILE_SWEEP


@shared_task(name=RECONCILE_SWEEP, ignore_result=True)
def reconcile(connection: str) -> dict[str, int]:
    ctx = get_runtime().context(connection)
    if ctx is None:
        return {}
    return sweep(ctx, enqueue)
