"""What the broker holds: queue depths, the events waiting in them, and the running workers.

The broker's queues are Redis lists that kombu fills with LPUSH and workers empty with
BRPOP, so the oldest message is the last one. Workers are known from their heartbeat keys
(tasks/reconcile.py), else from one short `celery inspect ping`.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import redis

from sync.config import Settings
from sync.state import keys
from tasks.celery_app import make_celery
from tasks.queues import ALL as QUEUES
from tasks.reconcile import HEARTBEAT_PREFIX

# kombu keeps messages of priority > 0 in extra lists named <queue>\x06\x16<priority>.
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
SCAN_LIMIT = 5000  # messages per queue decoded to split depths by connection
UNACKED = "unacked"  # kombu's hash of the messages workers hold: running, or retried with a countdown


def queue_names(queue: str) -> list[str]:
    return [queue, *(f"{queue}{PRIORITY_SEP}{p}" for p in PRIORITY_STEPS)]


def queue_depth(r: redis.Redis, queue: str) -> int:
    """Messages waiting in a broker queue (all priorities)."""
    pipe = r.pipeline(transaction=False)
    for name in queue_names(queue):
        pipe.llen(name)
    return int(sum(pipe.execute()))


def _event_of(raw: str | bytes) -> dict[str, Any] | None:
    """The sync event inside a queued kombu message, or None if it is something else."""
    try:
        message = json.loads(raw)
        body = message.get("body", "")
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        payload = json.loads(body)
    except (ValueError, TypeError, AttributeError):
        return None
    if isinstance(payload, list) and len(payload) >= 2 and isinstance(payload[1], dict):
        kwargs = payload[1]  # task protocol 2: [args, kwargs, embed]
    elif isinstance(payload, dict):
        kwargs = payload.get("kwargs") or {}
    else:
        return None
    event = kwargs.get("event")
    if isinstance(event, dict):
        return event
    if "connection" in kwargs:  # a reconcile sweep
        return {"connection": kwargs["connection"], "received_at": None, "task": "reconcile"}
    return None


def queued_events(r: redis.Redis, queue: str, limit: int = SCAN_LIMIT) -> Iterator[dict[str, Any]]:
    """The events waiting in a queue, oldest first (at most `limit` per priority list)."""
    for name in queue_names(queue):
        for raw in reversed(r.lrange(name, -limit, -1)):
            event = _event_of(raw)
            if event is not None:
                yield event


def queues(r: redis.Redis, connections: list[str]) -> dict[str, Any]:
    """Depth and oldest waiting age per queue, overall and per connection."""
    now = time.time()
    out: dict[str, Any] = {}
    for queue in QUEUES:
        depth = queue_depth(r, queue)
        per: Counter[str] = Counter()
        oldest: dict[str, float] = {}
        overall_oldest: float | None = None
        if depth:
            for event in queued_events(r, queue):
                conn = str(event.get("connection"))
                per[conn] += 1
                received = event.get("received_at")
                if isinstance(received, int | float):
                    oldest[conn] = min(oldest.get(conn, received), received)
                    overall_oldest = received if overall_oldest is None else min(overall_oldest, received)
        out[queue] = {
            "depth": depth,
            "approximate": depth > SCAN_LIMIT * len(queue_names(queue)),
            "oldest_age_seconds": round(now - overall_oldest, 1) if overall_oldest else None,
            "by_connection": {c: {"depth": per.get(c, 0),
                                  "oldest_age_seconds": round(now - oldest[c], 1) if c in oldest else None}
                              for c in connections},
        }
    return out


def workers(settings: Settings, r: redis.Redis | None = None, timeout: float = 1.0) -> list[str] | None:
    """Names of the running workers: from their heartbeat keys (tasks/reconcile.py), else those that
    answer a ping within `timeout` seconds (None: could not ask)."""
    if r is not None:
        beating = sorted(str(k)[len(HEARTBEAT_PREFIX):] for k in r.scan_iter(HEARTBEAT_PREFIX + "*", count=100))
        if beating:
            return beating
    try:
        app = make_celery(settings)
        try:
            replies = app.control.inspect(timeout=timeout).ping() or {}
        finally:
            app.close()
    except Exception:
        return None
    return sorted(replies)


def idle(r: redis.Redis, connection: str) -> bool:
    """True when no job of `connection` waits, runs or waits to be retried, and no record is locked:
    the sync has done all it was asked to (webhooks still on their way are the caller's to wait for).

    A reconciliation sweep's own lock does not count: it is held for the sweep interval, not while
    working. Messages in the broker are counted for every connection (they are shared lists).
    """
    if any(queue_depth(r, queue) for queue in QUEUES) or r.hlen(UNACKED):
        return False
    if next(r.scan_iter(keys.pending(connection, "*", "*", "*"), count=1000), None) is not None:
        return False
    sweep = keys.lock(connection, "reconcile", "")
    locks = (k.decode() if isinstance(k, bytes) else str(k) for k in r.scan_iter(keys.lock(connection, "*", "*"),
                                                                                 count=1000))
    return all(k.startswith(sweep) for k in locks)

