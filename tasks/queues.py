"""Queues and routes, declared once.

Workers consume `webhooks,sync,reconcile,backfill` in that order; the Redis
transport polls queues in the order given, so live webhooks go first and
backfill only runs when nothing more urgent waits.
"""

from __future__ import annotations

from typing import Any

WEBHOOKS = "webhooks"
SYNC = "sync"
RECONCILE = "reconcile"
BACKFILL = "backfill"
ALL = (WEBHOOKS, SYNC, RECONCILE, BACKFILL)

# Task names are part of the wire format: never rename one that may be queued.
SYNC_RECORD = "sync.record"
SYNC_BATCH = "sync.batch"
RECONCILE_SWEEP = "sync.reconcile"

_BY_ORIGIN = {"webhook": WEBHOOKS, "reconcile": SYNC, "resync": SYNC, "dependency": SYNC, "dlq": SYNC,
              "echo": SYNC, "backfill": BACKFILL}


def route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict[str, str]:
    """Celery router: sync jobs (single or batch) by where their events came from, sweeps to `reconcile`."""
    if name == SYNC_RECORD:
        event = (kwargs or {}).get("event") or {}
        return {"queue": _BY_ORIGIN.get(event.get("origin", "webhook"), SYNC)}
    if name == SYNC_BATCH:
        events = (kwargs or {}).get("events") or [{}]
        return {"queue": _BY_ORIGIN.get(events[0].get("origin", "webhook"), SYNC)}
    if name == RECONCILE_SWEEP:
        return {"queue": RECONCILE}
    return {"queue": SYNC}
