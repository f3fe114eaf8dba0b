"""Per-record journal: what arrived, what was decided and why, which API calls, the result.

Answers "why isn't organisation X in Uniconta?" from one place. Capped per
record so a busy record cannot grow without bound; entries are scrubbed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis

from sync.secrets import scrub_data
from sync.state import keys

MAX_ENTRIES = 200
TTL_SECONDS = 90 * 24 * 3600

Target = tuple[redis.Redis, str, str, str]  # (redis, connection, entity, record id)
_current: ContextVar[Target | None] = ContextVar("journal_record", default=None)
_shared: ContextVar[tuple[Target, ...]] = ContextVar("journal_shared", default=())
_buffer: ContextVar[list[tuple[str, dict[str, Any]]] | None] = ContextVar("journal_buffer", default=None)


_APPEND = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
"""

# Kinds a burst repeats: folded into the newest entry as a count, so 1,000 duplicate
# webhooks cannot push the entries that explain the record out of its capped journal.
FOLDED = ("duplicate", "coalesced")


def append(r: redis.Redis, connection: str, entity: str, record_id: str, kind: str, /, **data: Any) -> None:
    """Add one entry (newest first) to a record's journal."""
    entry = {**scrub_data(data), "at": round(time.time(), 3), "kind": kind}
    key = keys.journal(connection, entity, str(record_id))
    if kind in FOLDED and _fold(r, key, entry):
        return
    # One round trip, and no pipeline object per call (the receiver journals every webhook).
    r.eval(_APPEND, 1, key, json.dumps(entry, ensure_ascii=False, default=str), MAX_ENTRIES - 1, TTL_SECONDS)


def _fold(r: redis.Redis, key: str, entry: dict[str, Any]) -> bool:
    """Count `entry` into the newest entry if it is the same kind of repeat; True if folded."""
    head = r.lindex(key, 0)
    if head is None:
        return False
    newest = json.loads(head)
    same = {k: v for k, v in newest.items() if k not in ("at", "count", "event")}
    if same != {k: v for k, v in entry.items() if k not in ("at", "event")}:
        return False
    newest["count"] = int(newest.get("count", 1)) + 1
    newest["at"] = entry["at"]
    r.lset(key, 0, json.dumps(newest, ensure_ascii=False, default=str))
    return True


def entries(r: redis.Redis, connection: str, entity: str, record_id: str, limit: int = MAX_ENTRIES) -> list[dict]:
    """A record's journal, newest first."""
    raw = r.lrange(keys.journal(connection, entity, str(record_id)), 0, limit - 1)
    return [json.loads(item) for item in raw]


@contextmanager
def recording(r: redis.Redis, connection: str, entity: str, record_id: str, *, buffered: bool = False
              ) -> Iterator[None]:
    """Route `note()` and API-call observations in this block to one record's journal.

    `buffered`: keep the notes and write them in one round trip at `flush()` and at the end of the
    block (a batch's record flushes before each call it waits for, so the order stays true)."""
    token = _current.set((r, connection, entity, str(record_id)))
    held = _buffer.set([] if buffered else None)
    try:
        yield
    finally:
        try:
            flush()
        finally:
            _buffer.reset(held)
            _current.reset(token)


def flush() -> None:
    """Write the notes a buffered `recording` kept so far (one round trip)."""
    buffer, target = _buffer.get(), _current.get()
    if not buffer or target is None:
        return
    r, connection, entity, record_id = target
    pipe = r.pipeline(transaction=False)
    for _kind, entry in buffer:
        pipe.eval(_APPEND, 1, keys.journal(connection, entity, record_id),
                  json.dumps(entry, ensure_ascii=False, default=str), MAX_ENTRIES - 1, TTL_SECONDS)
    buffer.clear()
    pipe.execute()


def current() -> Target | None:
    """The record whose journal `note()` writes to in this context, if any."""
    return _current.get()


@contextmanager
def shared_by(targets: Iterable[Target | None]) -> Iterator[None]:
    """Route `note()` in this block to each of these records' journals, marked `shared=N`: an API call
    a batch makes for several records belongs in the journal of each of them."""
    unique = tuple(dict.fromkeys(t for t in targets if t is not None))
    token = _shared.set(unique)
    try:
        yield
    finally:
        _shared.reset(token)


def note(kind: str, /, **data: Any) -> None:
    """Append to the journal of the record being synced, if any (or of every record sharing the call)."""
    shared = _shared.get()
    if len(shared) == 1:
        append(*shared[0], kind, **data)
        return
    if shared:
        # One round trip for all of them (a page of records shares each call of a batch).
        entry = json.dumps({**scrub_data(data), "shared": len(shared), "at": round(time.time(), 3), "kind": kind},
                           ensure_ascii=False, default=str)
        pipe = shared[0][0].pipeline(transaction=False)
        for _r, connection, entity, record_id in shared:
            pipe.eval(_APPEND, 1, keys.journal(connection, entity, str(record_id)), entry, MAX_ENTRIES - 1,
                      TTL_SECONDS)
        pipe.execute()
        return
    current = _current.get()
    if current is None:
        return
    buffer = _buffer.get()
    if buffer is not None and kind not in FOLDED:
        buffer.append((kind, {**scrub_data(data), "at": round(time.time(), 3), "kind": kind}))
        return
    append(*current, kind, **data)


def observe_call(system: str) -> Any:
    """An API-client observer that journals each call (method, path, status, ms)."""

    def observer(method: str, path: str, status: int | None, elapsed_ms: float) -> None:
        note("api", system=system, method=method, path=path, status=status, ms=round(elapsed_ms, 1))

    return observer
