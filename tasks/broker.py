"""What the broker holds: queue depths, the events waiting in them, jobs held for a retry,
and the running workers.

The broker's queues are Redis lists that kombu fills with LPUSH and workers empty with
BRPOP, so the oldest message is the last one. A message a worker has taken but not yet
acknowledged (running, prefetched, or held in the worker's memory until its retry countdown
ends) sits in kombu's `unacked` hash until it is acked, or restored to its queue after the
visibility timeout. Workers are known from their heartbeat keys (tasks/reconcile.py), else
from one short `celery inspect ping`.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
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
UNACKED = "unacked"  # kombu's Redis transport: delivery tag → [message, exchange, routing key]
LIVE_SCAN_LIMIT = 20_000  # messages per list read to prove a pending mark's job exists
LIVE_CHUNK = 1000
HELD_RECORDS = 10  # records listed per connection and queue in `retrying`


def queue_names(queue: str) -> list[str]:
    return [queue, *(f"{queue}{PRIORITY_SEP}{p}" for p in PRIORITY_STEPS)]


def queue_depth(r: redis.Redis, queue: str) -> int:
    """Messages waiting in a broker queue (all priorities)."""
    pipe = r.pipeline(transaction=False)
    for name in queue_names(queue):
        pipe.llen(name)
    return int(sum(pipe.execute()))


def _events_of(raw: str | bytes | dict[str, Any]) -> list[dict[str, Any]]:
    """The sync events inside a kombu message (raw JSON or decoded): one for a `sync.record` job, all
    of a `sync.batch` job's, a stand-in for a sweep, none for anything else."""
    try:
        message = json.loads(raw) if isinstance(raw, str | bytes) else raw
        body = message.get("body", "")
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        payload = json.loads(body)
    except (ValueError, TypeError, AttributeError):
        return []
    if isinstance(payload, list) and len(payload) >= 2 and isinstance(payload[1], dict):
        kwargs = payload[1]  # task protocol 2: [args, kwargs, embed]
    elif isinstance(payload, dict):
        kwargs = payload.get("kwargs") or {}
    else:
        return []
    event = kwargs.get("event")
    if isinstance(event, dict):
        return [event]
    events = kwargs.get("events")
    if isinstance(events, list):
        return [e for e in events if isinstance(e, dict)]
    if "connection" in kwargs:  # a reconcile sweep
        return [{"connection": kwargs["connection"], "received_at": None, "task": "reconcile"}]
    return []


def queued_events(r: redis.Redis, queue: str, limit: int = SCAN_LIMIT) -> Iterator[dict[str, Any]]:
    """The events waiting in a queue, oldest first (at most `limit` per priority list)."""
    for name in queue_names(queue):
        for raw in reversed(r.lrange(name, -limit, -1)):
            yield from _events_of(raw)


def unacked(r: redis.Redis) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(queue, headers, event) of every message a worker holds unacknowledged."""
    for _tag, raw in r.hscan_iter(UNACKED, count=500):
        try:
            message, _exchange, routing_key = json.loads(raw)
            headers = message.get("headers") or {}
        except (ValueError, TypeError, AttributeError):
            continue
        events: list[dict[str, Any] | None] = [*_events_of(message)] or [None]
        for event in events:
            yield str(routing_key), headers, event


def live_event_ids(r: redis.Redis, limit: int = LIVE_SCAN_LIMIT) -> set[str] | None:
    """Event ids of every sync job the broker holds: queued (all priorities) or unacknowledged.

    Read the pending marks *before* calling this (sync.state.intake.release_orphans). None when
    a queue is longer than `limit`: then a missing id would prove nothing."""
    live: set[str] = set()
    for queue in QUEUES:
        for name in queue_names(queue):
            # In chunks to the end: jobs published meanwhile push the older ones further back.
            start = 0
            while chunk := r.lrange(name, start, start + LIVE_CHUNK - 1):
                if start >= limit:
                    return None
                for raw in chunk:
                    live.update(str(e["event_id"]) for e in _events_of(raw) if e.get("event_id"))
                start += LIVE_CHUNK
    for _queue, _headers, event in unacked(r):
        if event and event.get("event_id"):
            live.add(str(event["event_id"]))
    return live


def retrying(r: redis.Redis, connections: list[str], now: float | None = None) -> dict[str, Any]:
    """Jobs a worker holds until a retry countdown ends (e.g. after a 429), per queue and connection.

    Celery keeps such a job in the worker's memory and kombu keeps its message in `unacked`,
    with the countdown's end as the `eta` header; so neither the queue depth nor the pending
    marks show it, and the record looks idle while its sync waits."""
    now = time.time() if now is None else now
    out: dict[str, Any] = {q: {"count": 0, "next_in_seconds": None,
                               "by_connection": {c: {"count": 0, "next_in_seconds": None, "records": []}
                                                 for c in connections}} for q in QUEUES}
    for queue, headers, event in unacked(r):
        due = _eta(headers.get("eta"))
        if due is None or due <= now or queue not in out or event is None or "record_id" not in event:
            continue
        wait = round(due - now, 1)
        overall = out[queue]
        overall["count"] += 1
        overall["next_in_seconds"] = _sooner(overall["next_in_seconds"], wait)
        conn = overall["by_connection"].get(str(event.get("connection")))
        if conn is None:
            continue
        conn["count"] += 1
        conn["next_in_seconds"] = _sooner(conn["next_in_seconds"], wait)
        conn["records"].append({"system": event.get("system"), "entity": event.get("entity"),
                                "record_id": event.get("record_id"), "in_seconds": wait,
                                "retries": headers.get("retries")})
    for info in out.values():
        for conn in info["by_connection"].values():
            conn["records"] = sorted(conn["records"], key=lambda rec: rec["in_seconds"])[:HELD_RECORDS]
    return out


def _sooner(current: float | None, wait: float) -> float:
    return wait if current is None else min(current, wait)


def _eta(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


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

