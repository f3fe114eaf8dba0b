"""`sync.reconcile`: the periodic sweep (Celery beat) for one connection.

Also, for every worker that loads the tasks:
* backfill jobs spend only the batch share of the Uniconta budget: a `sync.record` or `sync.batch` job
  whose event came from a backfill runs inside `priority("batch")` (set around the task
  by Celery's prerun/postrun signals), so a long initial sync never eats the reserve kept
  for live changes;
* a heartbeat key (`sync-workers:<hostname>`, refreshed every 10 s, expiring after 30 s)
  tells `syncctl status` which workers run without a broadcast round trip.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

import redis
from celery import shared_task, signals

from sync.clients.patience import waiting_out_rate_limits
from sync.operations.reconcile import sweep
from sync.runtime import get_runtime, redis_url
from sync.state.ratelimit import priority
from tasks.dispatch import enqueue, enqueue_batch
from tasks.queues import RECONCILE_SWEEP, SYNC_BATCH, SYNC_RECORD

log = logging.getLogger(__name__)

BATCH_ORIGINS = ("backfill",)
# A sweep stops queueing at this share of the task's soft time limit and moves its
# watermark only as far as it got (the rest follows in the next sweep).
DEADLINE_SHARE = 0.8


@shared_task(name=RECONCILE_SWEEP, ignore_result=True)
def reconcile(connection: str) -> dict[str, Any]:
    """The sweep, then pending marks whose job is gone (tasks/orphans.py)."""
    from tasks import orphans  # tasks.broker imports this module

    runtime = get_runtime()
    ctx = runtime.context(connection)
    if ctx is None:
        return {}
    deadline = time.monotonic() + DEADLINE_SHARE * runtime.settings.task_time_limit
    # A 429 is waited out (bounded, and never past the deadline) instead of failing the source.
    with waiting_out_rate_limits(ctx.connection.reconcile_max_wait_seconds, log.info, deadline=deadline):
        result = sweep(ctx, enqueue_batch, deadline=deadline)
    result["pending-marks"] = orphans.release(ctx.redis, connection, enqueue)
    return result


_batch: dict[str, AbstractContextManager[None]] = {}


@signals.task_prerun.connect
def _batch_priority_for_backfill(task_id: str | None = None, task: Any = None, kwargs: Any = None,
                                 **_: Any) -> None:
    """Celery runs prerun, the task and postrun in one context, so the priority spans the task."""
    name = getattr(task, "name", None)
    if name not in (SYNC_RECORD, SYNC_BATCH) or not task_id:
        return
    event = (kwargs or {}).get("event") or ((kwargs or {}).get("events") or [{}])[0]
    if event.get("origin") in BATCH_ORIGINS:
        block = priority("batch")
        block.__enter__()
        _batch[task_id] = block


@signals.task_postrun.connect
def _restore_priority(task_id: str | None = None, **_: Any) -> None:
    block = _batch.pop(task_id or "", None)
    if block is not None:
        block.__exit__(None, None, None)


HEARTBEAT_PREFIX = "sync-workers:"  # outside sync:*, which tests and resets clear
HEARTBEAT_SECONDS = 10.0
HEARTBEAT_TTL = 30
_heartbeat_stop = threading.Event()


def heartbeat_key(hostname: str) -> str:
    return HEARTBEAT_PREFIX + hostname


@signals.worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    hostname = str(getattr(sender, "hostname", "") or os.uname().nodename)
    queues = sorted(q.name for q in getattr(getattr(sender, "task_consumer", None), "queues", []) or [])
    client = redis.Redis.from_url(redis_url(get_runtime().settings), socket_timeout=5, socket_connect_timeout=2)
    _heartbeat_stop.clear()

    def beat() -> None:
        while True:
            try:
                client.set(heartbeat_key(hostname), json.dumps({"hostname": hostname, "pid": os.getpid(),
                                                                 "queues": queues, "at": time.time()}),
                           ex=HEARTBEAT_TTL)
            except redis.RedisError:
                pass  # the broker connection reports Redis problems; status shows the worker as gone
            if _heartbeat_stop.wait(HEARTBEAT_SECONDS):
                break
        try:
            client.delete(heartbeat_key(hostname))
        except redis.RedisError:
            pass

    threading.Thread(target=beat, name="sync-heartbeat", daemon=True).start()


@signals.worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    _heartbeat_stop.set()
