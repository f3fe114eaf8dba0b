"""Per-record locks: one sync of a record at a time, across all workers.

A random token per lock, `SET NX PX` to take it, a token-checked release and expiry (short Lua
scripts), and one keep-alive thread per process that extends every lock it holds a third of the
way through its TTL. Locks reduce contention; correctness still comes from look-up-before-create.
A batch takes and gives back the locks of all its records in one round trip each.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from sync.state import keys

DEFAULT_TTL = 60.0

# KEYS: lock names; ARGV: their tokens, in the same order. Deletes each lock still holding its token.
_RELEASE = """
for i, name in ipairs(KEYS) do
  if redis.call('GET', name) == ARGV[i] then redis.call('DEL', name) end
end
return 0
"""
# KEYS[1] lock; ARGV: token, ttl in ms. Extends the lock only while it is still ours; 1 if it was.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class LockBusy(Exception):
    """Another worker holds the record's lock."""


@dataclass
class _Held:
    r: redis.Redis
    name: str
    token: str
    ttl: float
    extended: float


@contextmanager
def record_lock(r: redis.Redis, connection: str, entity: str, record_id: str, ttl: float = DEFAULT_TTL
                ) -> Iterator[None]:
    """Hold the record's lock for the block, or raise LockBusy at once."""
    with record_locks(r, connection, [(entity, str(record_id))], ttl) as held:
        if not held:
            raise LockBusy(f"{entity} {record_id} is being synced by another worker")
        yield


@contextmanager
def record_locks(r: redis.Redis, connection: str, records: list[tuple[str, str]], ttl: float = DEFAULT_TTL
                 ) -> Iterator[set[tuple[str, str]]]:
    """Hold the locks of many records at once (a batch): one round trip to take them, one to give them
    back; yields the (entity, record id) pairs whose lock was free (the others are another worker's)."""
    names = [keys.lock(connection, entity, str(record_id)) for entity, record_id in records]
    tokens = [uuid.uuid4().hex for _ in names]
    pipe = r.pipeline(transaction=False)
    for name, token in zip(names, tokens, strict=True):
        pipe.set(name, token, nx=True, px=int(ttl * 1000))
    taken = pipe.execute()
    now = time.monotonic()
    held = [_Held(r, name, token, ttl, now) for name, token, ok in zip(names, tokens, taken, strict=True) if ok]
    keeper = _keeper()
    keeper.hold(held)
    try:
        yield {pair for pair, ok in zip(records, taken, strict=True) if ok}
    finally:
        keeper.drop(held)
        if held:
            try:
                r.eval(_RELEASE, len(held), *(h.name for h in held), *(h.token for h in held))
            except redis.RedisError:
                pass  # they expire by themselves (and a lock already taken by another worker is not ours)


class _Keeper:
    """One thread per process that extends every held lock a third of the way through its TTL.

    A batch holds a lock per record (hundreds at once); one keep-alive thread each would cost a
    thread start per record."""

    def __init__(self) -> None:
        self._held: dict[int, _Held] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="lock-keepalive", daemon=True).start()

    def hold(self, held: list[_Held]) -> None:
        with self._guard:
            for h in held:
                self._held[id(h)] = h
        self._wake.set()

    def drop(self, held: list[_Held]) -> None:
        with self._guard:
            for h in held:
                self._held.pop(id(h), None)

    def _run(self) -> None:
        while True:
            with self._guard:
                held = list(self._held.values())
            now = time.monotonic()
            for h in held:
                if now - h.extended < h.ttl / 3:
                    continue
                try:
                    ours = h.r.eval(_EXTEND, 1, h.name, h.token, int(h.ttl * 1000))
                except redis.RedisError:
                    ours = 1  # try again next time: Redis may be back before the TTL ends
                h.extended = time.monotonic()
                if not ours:
                    self.drop([h])  # lost (expired and taken): nothing left to keep
            soonest = min((h.ttl / 3 - (time.monotonic() - h.extended) for h in held), default=5.0)
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
