"""Dead letters: events that failed for good, kept in Redis with everything needed to retry them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import redis

from sync.secrets import scrub, scrub_data
from sync.state import keys


def add(r: redis.Redis, *, event: dict[str, Any], error: BaseException | str, kind: str, attempts: int,
        first_attempt_at: float | None = None) -> str:
    """Park a failed event; returns the dead letter's id."""
    letter_id = uuid.uuid4().hex[:16]
    now = time.time()
    letter = {
        "id": letter_id,
        "event": scrub_data(event),
        "connection": event.get("connection"),
        "entity": event.get("entity"),
        "system": event.get("system"),
        "record_id": event.get("record_id"),
        "error": scrub(str(error))[:2000],
        "error_type": type(error).__name__ if isinstance(error, BaseException) else "str",
        "kind": kind,
        "attempts": attempts,
        "first_attempt_at": first_attempt_at or event.get("received_at") or now,
        "failed_at": now,
    }
    pipe = r.pipeline()
    pipe.hset(keys.dead_letters(), letter_id, json.dumps(letter, ensure_ascii=False, default=str))
    pipe.zadd(keys.dead_letter_index(), {letter_id: now})
    pipe.execute()
    return letter_id


def get(r: redis.Redis, letter_id: str) -> dict[str, Any] | None:
    raw = r.hget(keys.dead_letters(), letter_id)
    return None if raw is None else json.loads(raw)


def iter_all(r: redis.Redis) -> Iterator[dict[str, Any]]:
    """Newest first."""
    for letter_id in r.zrevrange(keys.dead_letter_index(), 0, -1):
        letter = get(r, str(letter_id))
        if letter is not None:
            yield letter


def drop(r: redis.Redis, letter_id: str) -> bool:
    pipe = r.pipeline()
    pipe.hdel(keys.dead_letters(), letter_id)
    pipe.zrem(keys.dead_letter_index(), letter_id)
    removed, _ = pipe.execute()
    return bool(removed)


def count(r: redis.Redis) -> int:
    return int(r.zcard(keys.dead_letter_index()))
