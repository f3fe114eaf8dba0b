"""What `syncctl status` shows: queues, workers, dead letters, limits, reconciliation, reviews.

Everything is read from Redis (the broker's queues are Redis lists that kombu fills
with LPUSH and workers empty with BRPOP, so the oldest message is the last one),
plus one short `celery inspect ping` for the workers. Nothing here calls webCRM or
Uniconta, so `status` is fast and costs no API budget.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import redis

from sync.config import Connection, Settings
from sync.state import deadletters, keys
from sync.state.ratelimit import DailyBudget
from tasks.queues import ALL as QUEUES

# kombu keeps messages of priority > 0 in extra lists named <queue>\x06\x16<priority>.
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
SCAN_LIMIT = 5000  # messages per queue decoded to split depths by connection


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
        from tasks.reconcile import HEARTBEAT_PREFIX

        beating = sorted(str(k)[len(HEARTBEAT_PREFIX):] for k in r.scan_iter(HEARTBEAT_PREFIX + "*", count=100))
        if beating:
            return beating
    try:
        from tasks.celery_app import make_celery

        app = make_celery(settings)
        try:
            replies = app.control.inspect(timeout=timeout).ping() or {}
        finally:
            app.close()
    except Exception:
        return None
    return sorted(replies)


def dead_letter_summary(r: redis.Redis) -> dict[str, Any]:
    by_connection: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    oldest: float | None = None
    for letter in deadletters.iter_all(r):
        by_connection[str(letter.get("connection"))] += 1
        by_kind[str(letter.get("kind"))] += 1
        failed = letter.get("failed_at")
        if isinstance(failed, int | float):
            oldest = failed if oldest is None else min(oldest, failed)
    return {"total": sum(by_connection.values()), "by_connection": dict(by_connection), "by_kind": dict(by_kind),
            "oldest_age_seconds": round(time.time() - oldest, 1) if oldest else None}


def webcrm_rate(r: redis.Redis, conn: Connection) -> dict[str, Any]:
    """Calls in the shared webCRM sliding window right now."""
    seconds, micros = r.time()
    now = seconds + micros / 1_000_000
    used = int(r.zcount(keys.webcrm_rate(conn.id), now - 60, "+inf"))
    limit = conn.webcrm.rate_limit_per_minute
    return {"used_last_minute": used, "limit_per_minute": limit,
            "percent": round(100 * used / limit, 1) if limit else None}


def uniconta_budget(r: redis.Redis, conn: Connection) -> dict[str, Any]:
    usage = DailyBudget(r, keys.uniconta_budget(conn.id), conn.uniconta.daily_call_budget,
                        conn.uniconta.live_reserve).usage()
    if usage["budget"]:
        usage["percent"] = round(100 * usage["used"] / usage["budget"], 1)
    return usage


def pending_count(r: redis.Redis, connection: str) -> int:
    return sum(1 for _ in r.scan_iter(keys.pending(connection, "*", "*", "*"), count=1000))


def reviews(r: redis.Redis, connection: str) -> dict[str, Any] | None:
    """Ambiguities waiting for a person (None when the review module is not installed)."""
    try:
        from sync.state.review import list_reviews
    except ImportError:
        return None
    entries = list_reviews(r, connection)
    return {"count": len(entries), "latest": entries[:5]}


def backfills(r: redis.Redis, connection: str) -> dict[str, dict[str, Any]]:
    from sync.operations.backfill import checkpoints

    return checkpoints(r, connection)


def gather(settings: Settings, r: redis.Redis, connections: list[str], *, ping: bool = True) -> dict[str, Any]:
    """Everything `syncctl status` prints, as plain data."""
    from sync.operations.reconcile import last_runs

    letters = dead_letter_summary(r)
    queue_info = queues(r, connections)
    seen = workers(settings, r) if ping else None
    out: dict[str, Any] = {
        "generated_at": round(time.time(), 3),
        "workers": seen,
        "queues": {q: {k: v for k, v in info.items() if k != "by_connection"} for q, info in queue_info.items()},
        "dead_letters": {k: v for k, v in letters.items() if k != "by_connection"},
        "connections": {},
    }
    for conn_id in connections:
        conn = settings.connections[conn_id]
        out["connections"][conn_id] = {
            "flows": list(conn.flows),
            "queues": {q: info["by_connection"][conn_id] for q, info in queue_info.items()},
            "pending_records": pending_count(r, conn_id),
            "dead_letters": letters["by_connection"].get(conn_id, 0),
            "webcrm_rate": webcrm_rate(r, conn),
            "uniconta_budget": uniconta_budget(r, conn),
            "reconciliation": last_runs(r, conn),
            "backfills": backfills(r, conn_id),
            "reviews": reviews(r, conn_id),
        }
    return out


def problems(data: dict[str, Any], *, max_age: float = 900.0) -> list[str]:
    """What `status --check` fails on: no workers, dead letters, old waiting jobs, failing sweeps."""
    found: list[str] = []
    if data.get("workers") == []:
        found.append("no worker answered a ping")
    if data["dead_letters"]["total"]:
        found.append(f"{data['dead_letters']['total']} dead letter(s)")
    for name, queue in data["queues"].items():
        age = queue.get("oldest_age_seconds")
        if name != "backfill" and age is not None and age > max_age:
            found.append(f"queue {name}: oldest job waits for {age:.0f} s")
    for conn_id, conn in data["connections"].items():
        for source, run in conn["reconciliation"].items():
            if run.get("error"):
                found.append(f"{conn_id} reconciliation {source}: {run['error']}")
    return found
