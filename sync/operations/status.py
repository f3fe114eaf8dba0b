"""What `syncctl status` shows per connection: dead letters, limits, reconciliation, backfills,
reviews; the broker's side (queues, workers) comes from the task layer (`tasks/broker.py`).

Everything is read from Redis. Nothing here calls webCRM or Uniconta, so `status` is fast
and costs no API budget.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import redis

from sync.config import Connection, Settings
from sync.state import deadletters, keys
from sync.state.ratelimit import DailyBudget


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


def gather(settings: Settings, r: redis.Redis, connections: list[str], *, queue_info: dict[str, Any],
           seen: list[str] | None, retrying: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything `syncctl status` prints, as plain data; `queue_info`, `retrying` (jobs a worker
    holds for a retry countdown) and `seen` (the workers) are the broker's side, read by the task layer."""
    retrying = retrying or {}
    from sync.operations.reconcile import last_runs

    letters = dead_letter_summary(r)
    out: dict[str, Any] = {
        "generated_at": round(time.time(), 3),
        "workers": seen,
        "queues": {q: {**{k: v for k, v in info.items() if k != "by_connection"},
                       "retrying": (retrying.get(q) or {}).get("count", 0),
                       "retrying_next_in_seconds": (retrying.get(q) or {}).get("next_in_seconds")}
                   for q, info in queue_info.items()},
        "dead_letters": {k: v for k, v in letters.items() if k != "by_connection"},
        "connections": {},
    }
    for conn_id in connections:
        conn = settings.connections[conn_id]
        out["connections"][conn_id] = {
            "flows": list(conn.flows),
            "queues": {q: info["by_connection"][conn_id] for q, info in queue_info.items()},
            "retrying": {q: info["by_connection"][conn_id] for q, info in retrying.items()
                         if info["by_connection"].get(conn_id, {}).get("count")},
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
