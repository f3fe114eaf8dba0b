"""Pending marks whose job the broker no longer holds, released with every reconciliation sweep.

A confirmed pending mark promises a job; if the job is gone (a purged queue, an older file
restored, a message a worker discarded), every event for the record would be coalesced into
nothing until the mark expires. This compares the marks with what the broker holds and queues
those records again (sync.state.intake.release_orphans).
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from sync.state import intake
from tasks import broker

log = logging.getLogger(__name__)


def release(r: redis.Redis, connection: str, enqueue: intake.Enqueue) -> dict[str, Any]:
    """Queue again the records of `connection` whose pending mark names a job the broker lacks."""
    try:
        marks = intake.pending_marks(r, connection)  # before the broker: see release_orphans
        if not any(mark.confirmed for mark in marks.values()):
            return {"checked": 0, "released": 0}
        live = broker.live_event_ids(r)
        if live is None:
            log.info("pending marks of %s not checked: a queue is too long to scan", connection)
            return {"checked": 0, "released": 0, "note": "a queue is too long to check pending marks against"}
        released = intake.release_orphans(r, connection, marks, live, enqueue)
    except (intake.Unavailable, redis.RedisError) as err:
        log.warning("pending marks of %s not checked: %s", connection, err)
        return {"error": f"{type(err).__name__}: {err}"}
    return {"checked": len(marks), "released": len(released),
            **({"records": [key.split(":pending:", 1)[1] for key in released]} if released else {})}
