"""Per-record locks: one sync of a record at a time, across all workers.

A random token, token-checked release and expiry (redis-py's Lock, which
uses Lua for both), extended from a background thread while the job works.
Locks reduce contention; correctness still comes from look-up-before-create.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import LockError

from sync.state import keys

DEFAULT_TTL = 60.0


class LockBusy(Exception):
    """Another worker holds the record's lock."""


@contextmanager
def record_lock(r: redis.Redis, connection: str, entity: str, record_id: str, ttl: float = DEFAULT_TTL
                ) -> Iterator[None]:
    """Hold the record's lock for the block, or raise LockBusy at once."""
    lock = r.lock(keys.lock(connection, entity, str(record_id)), timeout=ttl, blocking=False,
                  thread_local=False)
    if not lock.acquire(blocking=False):
        raise LockBusy(f"{entity} {record_id} is being synced by another worker")
    stop = threading.Event()

    def keep_alive() -> None:
        while not stop.wait(ttl / 3):
            try:
                lock.reacquire()
            except (LockError, redis.RedisError):
                return

    thread = threading.Thread(target=keep_alive, name="lock-keepalive", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1)
        try:
            lock.release()
        except LockError:
            pass  # expired and possibly taken by another worker: not ours to release
