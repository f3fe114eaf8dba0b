"""Events parked until a dependency is ready (an order or person waiting for its organisation's debtor).

When the dependency becomes ready (the organisation gets linked), its flow calls
`release()`, which queues every parked event again through the normal intake,
so the waiting record goes through by itself once the cause is fixed.
"""

from __future__ import annotations

import json

import redis

from sync.events import Event
from sync.state import intake, keys

TTL_SECONDS = 30 * 24 * 3600


def _key(connection: str, dependency: str) -> str:
    return keys.counter(connection, f"waiting:{dependency}")


def park(r: redis.Redis, event: Event, dependency: str) -> None:
    """Remember `event` until `dependency` (e.g. "organisation:145") is ready."""
    key = _key(event.connection, dependency)
    member = json.dumps([event.system, event.entity, event.record_id])
    pipe = r.pipeline()
    pipe.sadd(key, member)
    pipe.expire(key, TTL_SECONDS)
    pipe.execute()


def release(r: redis.Redis, connection: str, dependency: str, enqueue: intake.Enqueue) -> int:
    """Queue every event parked on `dependency` again; returns how many were queued."""
    key = _key(connection, dependency)
    queued = 0
    for member in r.smembers(key):
        system, entity, record_id = json.loads(member)
        intake.accept(r, Event(connection, system, entity, record_id, origin="dependency"), enqueue)
        r.srem(key, member)
        queued += 1
    return queued


def parked(r: redis.Redis, connection: str, dependency: str) -> list[tuple[str, str, str]]:
    return [tuple(json.loads(m)) for m in r.smembers(_key(connection, dependency))]  # type: ignore[misc]
