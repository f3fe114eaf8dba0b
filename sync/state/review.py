"""Ambiguities kept for a person to review: records the sync refused to link by itself.

When a first link by e-mail finds two or more records with the same address on
one side, nothing is linked automatically; the case is stored here (one entry
per entity, scope and e-mail address, updated when it is seen again) and dropped once
a later sync of that address is no longer ambiguous. `syncctl` lists them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from sync.secrets import scrub_data
from sync.state import keys

TTL_SECONDS = 90 * 24 * 3600


def _key(connection: str) -> str:
    return keys.counter(connection, "reviews")


def _member(entity: str, email: str, scope: str) -> str:
    return ":".join(p for p in (entity, scope, email.strip().lower()) if p)


def add(r: redis.Redis, connection: str, *, entity: str, email: str, reason: str, scope: str = "",
        webcrm: list[Any] | tuple[Any, ...] = (), uniconta: list[Any] | tuple[Any, ...] = (),
        **detail: Any) -> str:
    """Store (or refresh) one ambiguity; returns its id (`<entity>[:<scope>]:<e-mail>`). `scope`
    narrows where the address must be unique (persons: per organisation)."""
    member = _member(entity, email, scope)
    raw = r.hget(_key(connection), member)
    old = json.loads(raw) if raw else {}
    now = round(time.time(), 3)
    entry = {
        "id": member,
        "entity": entity,
        "scope": scope,
        "email": email.strip().lower(),
        "reason": reason,
        "webcrm": sorted({str(x) for x in webcrm}),
        "uniconta": sorted({str(x) for x in uniconta}),
        "first_seen": old.get("first_seen", now),
        "last_seen": now,
        "seen": int(old.get("seen", 0)) + 1,
        "seq": int(r.incr(keys.counter(connection, "reviews:seq"))),
        **scrub_data(detail),
    }
    pipe = r.pipeline()
    pipe.hset(_key(connection), member, json.dumps(entry, ensure_ascii=False, default=str))
    pipe.expire(_key(connection), TTL_SECONDS)
    pipe.execute()
    return member


def resolve(r: redis.Redis, connection: str, entity: str, email: str, scope: str = "") -> bool:
    """Drop the ambiguity of an address (it was linked or is no longer ambiguous); True if one existed."""
    if not email.strip():
        return False
    return bool(r.hdel(_key(connection), _member(entity, email, scope)))


def list_reviews(r: redis.Redis, connection: str) -> list[dict[str, Any]]:
    """Every open ambiguity of a connection, most recently seen first."""
    entries = [json.loads(v) for v in r.hgetall(_key(connection)).values()]
    return sorted(entries, key=lambda e: (e.get("last_seen", 0), e.get("seq", 0)), reverse=True)
