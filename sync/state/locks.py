"""Per-record locks: one sync of a record at a time, across all workers.

A random token, token-checked release and expiry (redis-py's Lock, which
uses Lua for both), extended from a background thread while the job works.
Locks reduce contention; correctness still comes from look-up-before-create.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import LockError
from redis.lock import Lock

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
    _keeper().hold(lock, ttl)
    try:
        yield
    finally:
        _keeper().drop(lock)
        try:
            lock.release()
        except LockError:
            pass  # expired and possibly taken by another worker: not ours to release


@contextmanager
def record_locks(r: redis.Redis, connection: str, records: list[tuple[str, str]], ttl: float = DEFAULT_TTL
                 ) -> Iterator[set[tuple[str, str]]]:
    """Hold the locks of many records at once (a batch): one round trip to take them, one to give them
    back; yields the (entity, record id) pairs whose lock was free (the others are another worker's)."""
    locks = [r.lock(keys.lock(connection, entity, str(record_id)), timeout=ttl, blocking=False, thread_local=False)
             for entity, record_id in records]
    tokens = [uuid.uuid1().hex.encode() for _ in locks]
    pipe = r.pipeline(transaction=False)
    for lock, token in zip(locks, tokens, strict=True):
        pipe.set(lock.name, token, nx=True, px=int(ttl * 1000))
    taken = pipe.execute()
    held = []
    for lock, token, ok in zip(locks, tokens, taken, strict=True):
        if ok:
            lock.local.token = token
            _keeper().hold(lock, ttl)
            held.append(lock)
    try:
        yield {pair for pair, ok in zip(records, taken, strict=True) if ok}
    finally:
        pipe = r.pipeline(transaction=False)
        for lock in held:
            _keeper().drop(lock)
            lock.lua_release(keys=[lock.name], args=[lock.local.token], client=pipe)
        try:
            pipe.execute()
        except redis.RedisError:
            pass  # they expire by themselves


class _Keeper:
    """One thread per process that extends every held lock a third of the way through its TTL.

    A batch holds a lock per record (hundreds at once); one keep-alive thread each would cost a
    thread start per record."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[Lock, float, float]] = {}  # id → (lock, ttl, last extended)
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-keepalive", daemon=True)
        self._thread.start()

    def hold(self, lock: Lock, ttl: float) -> None:
        with self._guard:
            self._locks[id(lock)] = (lock, ttl, time.monotonic())
        self._wake.set()

    def drop(self, lock: Lock) -> None:
        with self._guard:
            self._locks.pop(id(lock), None)

    def _run(self) -> None:
        while True:
            with self._guard:
                held = list(self._locks.values())
            now = time.monotonic()
            due = [entry for entry in held if now - entry[2] >= entry[1] / 3]
            for lock, ttl, _ in due:
                try:
                    lock.reacquire()
                except (LockError, redis.RedisError):
                    with self._guard:
                        self._locks.pop(id(lock), None)  # lost: nothing left to keep
                    continue
                with self._guard:
                    if id(lock) in self._locks:
                        self._locks[id(lock)] = (lock, ttl, time.monotonic())
            soonest = min((e[1] / 3 - (time.monotonic() - e[2]) for e in held), default=5.0)
            self._wake.wait(max(0.05, min(soonest, 5.0)))
            self._wake.clear()


_keepers: dict[int, _Keeper] = {}
_keepers_guard = threading.Lock()


def _keeper() -> _Keeper:
    """This process's keeper (a forked worker process starts its own: threads do not survive a fork)."""
    pid = os.getpid()
    with _keepers_guard:
        keeper = _keepers.get(pid)
        if keeper is None:
            keeper = _keepers[pid] = _Keeper()
        return keeper
