"""Accepting an event: dedupe by delivery id, coalesce by record, enqueue one job.

Used by the receiver, reconciliation, resync, backfill and dead-letter requeue,
so every path into the workers behaves the same. Nothing is acknowledged that
was not stored: if Redis or the broker fails, the marks are rolled back and
`Unavailable` is raised (the receiver answers 503).

An event that finds its record's *pending mark* is coalesced into the job the mark
promises, and a delivery id already *seen* is a duplicate. A mark that outlives its job
would swallow every later event (issue 14: the publish failed because Redis died, so the
rollback failed too, and the mark came back from the AOF without a job). So both marks
name the event whose job they promise and have two states:

* `publishing <event id>` (RESERVE_TTL) while the job is being published. Nothing is
  coalesced into it or taken for a duplicate of it: a later event waits briefly for it to
  be confirmed, then takes it over and publishes a job of its own.
* `<event id>` once the broker acknowledged the publish; only now is a later event
  coalesced into it (or answered as a duplicate).

A job deletes the pending mark only if the mark names the job's event, so it never clears
a mark that promises another job. Confirmed marks whose job the broker no longer holds (a
purged queue, an older file restored) are found by `release_orphans`, which the
reconciliation sweep runs, and their records are queued again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import redis

from sync import metrics
from sync.events import Event
from sync.state import journal, keys

log = logging.getLogger(__name__)

SEEN_TTL = 24 * 3600
PENDING_TTL = 3600
RESERVE_TTL = 60  # a reservation whose publish never finished expires by itself
STALE_AFTER_MS = 2000  # older than this, a reservation is taken over at once (its publisher is gone)
CONFIRM_WAIT = 0.5  # how long an event waits for a young reservation to be confirmed
POLL = 0.005
RESERVED = "publishing "

# KEYS[1] mark; ARGV: event id, reserve ttl (s), stale after (ms), "1" = take over regardless of age.
# → {"held", <confirmed event id>} | {"wait", <event id>} | {"claimed", ""} | {"took-over", <event id>},
# each with the value of the optional KEYS[2] (the record's echo mark) third, and fourth 1 while the entity
# sees a burst (optional KEYS[3] the records it had webhooks for this second, KEYS[4] the burst flag; ARGV[5]
# how many different records start one, ARGV[6] how long it lasts after the last event, in ms). Records, not
# webhooks, are counted: one record edited quickly, with the echoes of our writes, is not a burst (found by
# benchmark 2: a single edit's p95 went from 22 ms to 2 s).
_CLAIM = """
local echo, burst = false, 0
if KEYS[2] then echo = redis.call('GET', KEYS[2]) end
if KEYS[3] then
  local added = redis.call('SADD', KEYS[3], KEYS[1])
  local n = redis.call('SCARD', KEYS[3])
  if n == 1 and added == 1 then redis.call('PEXPIRE', KEYS[3], 1000) end
  if n >= tonumber(ARGV[5]) then redis.call('SET', KEYS[4], '1', 'PX', ARGV[6]) end
  if redis.call('PEXPIRE', KEYS[4], ARGV[6]) == 1 then burst = 1 end
end
local cur = redis.call('GET', KEYS[1])
if cur then
  if string.sub(cur, 1, 11) ~= 'publishing ' then return {'held', cur, echo, burst} end
  local age = tonumber(ARGV[2]) * 1000 - redis.call('PTTL', KEYS[1])
  if ARGV[4] ~= '1' and age < tonumber(ARGV[3]) then return {'wait', string.sub(cur, 12), echo, burst} end
end
redis.call('SET', KEYS[1], 'publishing ' .. ARGV[1], 'EX', ARGV[2])
if cur then return {'took-over', string.sub(cur, 12), echo, burst} end
return {'claimed', '', echo, burst}
"""
# KEYS[1] mark; ARGV: event id, ttl. Confirms our own reservation only (a job may already have started).
_CONFIRM = """
if redis.call('GET', KEYS[1]) == 'publishing ' .. ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""
# KEYS[1] mark, KEYS[2] the entity's singles; ARGV: event id, ttl, record id, entry. Confirms the reservation
# and lists the queued single job, so a burst can take it into a batch.
_CONFIRM_SINGLE = """
if redis.call('GET', KEYS[1]) == 'publishing ' .. ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
# KEYS[1] mark, KEYS[2] the entity's singles; ARGV: event id, record id. A job that starts takes its
# record off the list and releases its mark (only if they name it).
_RELEASE_SINGLE = """
local entry = redis.call('HGET', KEYS[2], ARGV[2])
if entry and string.sub(entry, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '\t' then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] or cur == 'publishing ' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# `_RELEASE_SINGLE` for many records: KEYS mark, singles, mark, singles, ...; ARGV event id, record id, ...
_RELEASE_SINGLES = """
for i = 1, #KEYS, 2 do
  local eid, rid = ARGV[i], ARGV[i + 1]
  local entry = redis.call('HGET', KEYS[i + 1], rid)
  if entry and string.sub(entry, 1, string.len(eid) + 1) == eid .. '\t' then redis.call('HDEL', KEYS[i + 1], rid) end
  local cur = redis.call('GET', KEYS[i])
  if cur == eid or cur == 'publishing ' .. eid then redis.call('DEL', KEYS[i]) end
end
return 0
"""
# KEYS[1] the entity's singles; ARGV: pending key prefix, limit, own record id. Takes up to `limit`
# queued single jobs whose confirmed mark still names them off the list (their marks stay: the batch job
# they go into carries the same events). Stale entries are dropped.
_ADOPT = """
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if #out >= tonumber(ARGV[2]) then break end
  local rid, entry = all[i], all[i + 1]
  if rid ~= ARGV[3] then
    local tab = string.find(entry, '\t', 1, true)
    local eid = string.sub(entry, 1, tab - 1)
    local cur = redis.call('GET', ARGV[1] .. rid)
    if cur == eid then
      redis.call('HDEL', KEYS[1], rid)
      table.insert(out, string.sub(entry, tab + 1))
    elseif not cur or string.sub(cur, 1, 11) ~= 'publishing ' then
      redis.call('HDEL', KEYS[1], rid)
    end
  end
end
return out
"""
# KEYS[1] mark; ARGV[1] event id. Deletes the mark only if it names this event (either state).
_RELEASE = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] or cur == 'publishing ' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Unavailable(Exception):
    """Redis or the broker cannot take the event right now."""


@dataclass(frozen=True)
class Outcome:
    status: str  # "queued" | "coalesced" | "duplicate"
    event_id: str


@dataclass(frozen=True)
class Mark:
    """A pending or seen mark: the event it names, and whether its job's publish was acknowledged."""

    event_id: str
    confirmed: bool


Enqueue = Callable[[Event], None]
BURST_HOLD = 5.0  # a burst lasts until its entity has had no webhook for this long


@dataclass(frozen=True)
class Burst:
    threshold: int  # different records of one entity with webhooks within a second that start a burst (0 = never)
    delay: float  # how long each job of a burst waits, so the jobs gather


def parse(value: str | bytes | None) -> Mark | None:
    """The mark stored in a pending or seen key (None for no key)."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    if text.startswith(RESERVED):
        return Mark(text[len(RESERVED):], False)
    return Mark(text, True)


def pending_mark(r: redis.Redis, connection: str, system: str, entity: str, record_id: str) -> Mark | None:
    """The record's pending mark: which event's job is waiting, and whether it was confirmed."""
    return parse(r.get(keys.pending(connection, system, entity, record_id)))


@metrics.counts_intake
def accept(r: redis.Redis, event: Event, enqueue: Enqueue, burst: Burst | None = None) -> Outcome:
    """Dedupe, coalesce and enqueue; raises Unavailable when the event could not be stored.

    `burst` (webhooks): when events for `burst.threshold` different records of the entity arrive within
    a second, its jobs wait `burst.delay` seconds until none has come for `BURST_HOLD` seconds."""
    seen_key = keys.seen(event.connection, event.delivery_id) if event.delivery_id else None
    pending_key = keys.pending(event.connection, event.system, event.entity, event.record_id)
    try:
        if seen_key:
            first = _claim(r, seen_key, event.event_id)
            if first is not None:
                journal.append(r, event.connection, event.entity, event.record_id, "duplicate",
                               system=event.system, delivery=event.delivery_id, origin=event.origin)
                return Outcome("duplicate", first)
        watch: list[Any] = [keys.echo(event.connection, event.system, event.entity, event.record_id)]
        if burst is not None and burst.threshold:
            flag = keys.burst(event.connection, event.system, event.entity)
            watch += [flag + ":rate", flag, burst.threshold, int(BURST_HOLD * 1000)]
        waiting = _claim(r, pending_key, event.event_id, watch)
        echo, bursting = watch
        if echo and not event.delay:
            # A batch wrote this record moments ago: most likely its own echo. The job waits a little,
            # so the echoes that trickle in are taken into one batch instead of running one by one.
            event = replace(event, delay=float(echo))
        elif bursting and burst is not None and not event.delay:
            # Many records of this entity at once: each job waits a moment, so the first to run finds
            # the others waiting and takes them into one batch (single edits are never delayed).
            event = replace(event, delay=burst.delay)
        if waiting is not None:
            if seen_key:
                _script(r, _CONFIRM)(keys=[seen_key], args=[event.event_id, SEEN_TTL])
            journal.append(r, event.connection, event.entity, event.record_id, "coalesced",
                           system=event.system, operation=event.operation, origin=event.origin,
                           event=event.event_id)
            return Outcome("coalesced", event.event_id)
    except redis.RedisError as err:
        _release(r, event.event_id, seen_key, pending_key)
        raise Unavailable(f"redis: {type(err).__name__}") from err
    try:
        enqueue(event)
    except BaseException as err:  # the broker is Redis too; any failure means "not stored"
        # Roll back on Ctrl-C too. If Redis is gone the rollback fails as well; the reservations
        # left behind promise nothing (see the module docstring) and expire by themselves.
        _release(r, event.event_id, seen_key, pending_key)
        if not isinstance(err, Exception):
            raise
        raise Unavailable(f"broker: {type(err).__name__}") from err
    try:
        _script(r, _CONFIRM_SINGLE)(keys=[pending_key, keys.singles(event.connection, event.system, event.entity)],
                                    args=[event.event_id, PENDING_TTL, event.record_id,
                                          f"{event.event_id}\t{json.dumps(event.task_kwargs())}"])
        if seen_key:
            _script(r, _CONFIRM)(keys=[seen_key], args=[event.event_id, SEEN_TTL])
        journal.append(r, event.connection, event.entity, event.record_id, "queued", system=event.system,
                       operation=event.operation, origin=event.origin, event=event.event_id,
                       delivery=event.delivery_id)
    except redis.RedisError:
        pass  # the job is queued; an unconfirmed mark only costs a second job later, never a lost one
    return Outcome("queued", event.event_id)


def clear_pending(r: redis.Redis, event: Event) -> None:
    """Called by the job before it re-reads the source, so later changes queue a new job.

    Only the job the mark names clears it: another job's mark still promises that job."""
    _script(r, _RELEASE_SINGLE)(keys=[keys.pending(event.connection, event.system, event.entity, event.record_id),
                                      keys.singles(event.connection, event.system, event.entity)],
                                args=[event.event_id, event.record_id])


def clear_pending_many(r: redis.Redis, events: list[Event]) -> None:
    """`clear_pending` for the records of a batch, in one round trip."""
    if not events:
        return
    names: list[str] = []
    args: list[str] = []
    for event in events:
        names += [keys.pending(event.connection, event.system, event.entity, event.record_id),
                  keys.singles(event.connection, event.system, event.entity)]
        args += [event.event_id, event.record_id]
    _script(r, _RELEASE_SINGLES)(keys=names, args=args)


def adopt(r: redis.Redis, event: Event, limit: int) -> list[Event]:
    """Take up to `limit` queued single jobs of the event's entity off the waiting list, for a batch job.

    Their pending marks stay: the caller publishes one batch job with these same events (which clears
    the marks when it runs), then tells the single jobs with `drain` that they need do nothing. A
    crash in between costs a record synced twice, never a record not synced."""
    entries = _script(r, _ADOPT)(
        keys=[keys.singles(event.connection, event.system, event.entity)],
        args=[keys.pending(event.connection, event.system, event.entity, ""), limit, event.record_id])
    return [Event(**json.loads(_text(entry))) for entry in entries]


def drain(r: redis.Redis, events: list[Event], into: Event) -> None:
    """Tell the single jobs of `events` (now in a published batch job) that they need do nothing."""
    pipe = r.pipeline(transaction=False)
    for other in events:
        pipe.set(keys.drained(other.connection, other.event_id), into.event_id, ex=PENDING_TTL)
    pipe.execute()
    for other in events:
        journal.append(r, other.connection, other.entity, other.record_id, "batched", system=other.system,
                       event=other.event_id, into=into.event_id,
                       reason="a burst of this entity: synced with others in one batch job")


def on_start(r: redis.Redis, event: Event) -> tuple[bool, int]:
    """What a single job asks first, in one round trip: was its record taken into a batch job by `adopt`
    (True once), and how many single jobs of its (connection, system, entity) wait in the queue (an upper
    bound: entries of jobs that started meanwhile are dropped when a burst looks at them)."""
    pipe = r.pipeline(transaction=False)
    pipe.delete(keys.drained(event.connection, event.event_id))
    pipe.hlen(keys.singles(event.connection, event.system, event.entity))
    was_drained, waiting = pipe.execute()
    return bool(was_drained), int(waiting)


EnqueueBatch = Callable[[list[Event], float], None]


@metrics.counts_intake
def accept_many(r: redis.Redis, events: list[Event], enqueue_batch: EnqueueBatch, *, countdown: float = 0.0
                ) -> list[Outcome]:
    """`accept` for many records of one connection at once: one batch job for those not already pending.

    Each record's pending mark is reserved as with `accept` (a record whose job is already pending,
    confirmed, is coalesced into that job); the records left over travel in one batch job, published
    after `countdown` seconds, and their marks are confirmed once the broker took it. If the publish
    fails, their reservations are released and `Unavailable` raised.
    """
    if not events:
        return []
    marks = [keys.pending(e.connection, e.system, e.entity, e.record_id) for e in events]
    try:
        held = _claim_many(r, marks, [e.event_id for e in events])
    except redis.RedisError as err:
        for event, mark in zip(events, marks, strict=True):
            _release(r, event.event_id, mark)
        raise Unavailable(f"redis: {type(err).__name__}") from err
    fresh = [(e, m) for e, m, h in zip(events, marks, held, strict=True) if h is None]
    if fresh:
        try:
            enqueue_batch([e for e, _ in fresh], countdown)
        except BaseException as err:
            for event, mark in fresh:
                _release(r, event.event_id, mark)
            if not isinstance(err, Exception):
                raise
            raise Unavailable(f"broker: {type(err).__name__}") from err
        try:
            confirm, pipe = _script(r, _CONFIRM), r.pipeline(transaction=False)
            for event, mark in fresh:
                confirm(keys=[mark], args=[event.event_id, PENDING_TTL], client=pipe)
            pipe.execute()
        except redis.RedisError:
            pass  # the job is queued; an unconfirmed mark only costs a second job later, never a lost one
    outcomes = []
    for event, other in zip(events, held, strict=True):
        status = "queued" if other is None else "coalesced"
        outcomes.append(Outcome(status, event.event_id))
        try:
            journal.append(r, event.connection, event.entity, event.record_id, status, system=event.system,
                           operation=event.operation, origin=event.origin, event=event.event_id,
                           **({"batch": len(fresh)} if other is None else {}))
        except redis.RedisError:
            pass  # the job is queued; a missing journal line must not turn it into a failure
    return outcomes


def pending_marks(r: redis.Redis, connection: str) -> dict[str, Mark]:
    """Every pending mark of a connection, by key."""
    names = list(r.scan_iter(keys.pending(connection, "*", "*", "*"), count=1000))
    values = r.mget(names) if names else []
    return {_text(k): m for k, v in zip(names, values, strict=True) if (m := parse(v)) is not None}


def release_orphans(r: redis.Redis, connection: str, marks: dict[str, Mark], live_events: set[str],
                    enqueue: Enqueue) -> list[str]:
    """Queue again every record whose confirmed pending mark names a job the broker does not hold.

    `marks` (from `pending_marks`) must be read *before* `live_events`, the event ids of every
    job the broker holds (queued, reserved, running or waiting for a retry; tasks/broker.py): a
    job that started in between has cleared its mark, which the compare-and-delete here notices.
    A job caught between its queue and the broker's unacked hash looks missing; that costs one
    extra job, never a lost one. Returns the keys of the marks released."""
    prefix = keys.pending(connection, "", "", "")[:-2]
    released: list[str] = []
    for key, mark in sorted(marks.items()):
        if not mark.confirmed or mark.event_id in live_events or not key.startswith(prefix):
            continue
        system, entity, record_id = key[len(prefix):].split(":", 2)
        if not _script(r, _RELEASE)(keys=[key], args=[mark.event_id]):
            continue  # its job started meanwhile, or a newer mark replaced it
        log.warning("pending mark %s named job %s, which the broker does not hold; queueing the record again",
                    key, mark.event_id)
        journal.append(r, connection, entity, record_id, "orphan", system=system, event=mark.event_id,
                       note="the waiting job was gone; queued again")
        accept(r, Event(connection, system, entity, record_id, origin="reconcile"), enqueue)
        released.append(key)
    return released


def _claim(r: redis.Redis, key: str, event_id: str, watch: list[Any] | None = None) -> str | None:
    """Reserve `key` for this event: None when reserved, else the event id of the confirmed mark holding it.

    A young reservation of another event (its publish is in flight) is waited for up to
    CONFIRM_WAIT; if it is not confirmed by then, or is older than STALE_AFTER_MS, it is taken over.
    `watch`, in the same round trip: [echo key] or [echo key, rate key, burst key, rate, hold ms] in,
    [the echo mark's value or "", whether the entity sees a burst] out."""
    claim = _script(r, _CLAIM)
    give_up = time.monotonic() + CONFIRM_WAIT
    extra_keys = [str(k) for k in (watch or [])[:3]]
    extra_args = list((watch or [])[3:])
    while True:
        reply = claim(keys=[key, *extra_keys], args=[event_id, RESERVE_TTL, STALE_AFTER_MS,
                                                      int(time.monotonic() >= give_up), *extra_args])
        state, other = _text(reply[0]), _text(reply[1])
        if watch is not None:
            watch[:] = [_text(reply[2]) if reply[2] else "", bool(reply[3])]
        if state == "held":
            return other
        if state == "took-over":
            log.info("took over %s from event %s, whose publish was never confirmed", key, other)
        if state != "wait":
            return None
        time.sleep(POLL)


def _claim_many(r: redis.Redis, names: list[str], event_ids: list[str]) -> list[str | None]:
    """`_claim` for many marks in one round trip; only the few that must wait for a young reservation
    are claimed one by one afterwards."""
    claim, pipe = _script(r, _CLAIM), r.pipeline(transaction=False)
    for name, event_id in zip(names, event_ids, strict=True):
        claim(keys=[name], args=[event_id, RESERVE_TTL, STALE_AFTER_MS, 0], client=pipe)
    out: list[str | None] = []
    for name, event_id, reply in zip(names, event_ids, pipe.execute(), strict=True):
        state, other = _text(reply[0]), _text(reply[1])
        if state == "held":
            out.append(other)
        elif state == "wait":
            out.append(_claim(r, name, event_id))
        else:
            out.append(None)
    return out


def _release(r: redis.Redis, event_id: str, *names: str | None) -> None:
    release = _script(r, _RELEASE)
    for name in names:
        if name:
            try:
                release(keys=[name], args=[event_id])
            except redis.RedisError:
                pass


def _script(r: redis.Redis, source: str):  # type: ignore[no-untyped-def]
    return r.register_script(source)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
