"""Prometheus metrics: every definition, and the one call per place that records it.

The receiver and the workers record here; what lives in Redis (budget, rate window, queues, dead
letters waiting) is read at scrape time by the worker's metrics server instead (tasks/metrics.py).
Both run several processes (gunicorn workers, Celery's prefork pool), so with
`PROMETHEUS_MULTIPROC_DIR` set prometheus-client keeps each process's values in files there and
`registry()` merges them; the variable must be set before the process starts (prometheus-client
chooses its storage at import).

Labels are bounded: connection ids (configured), systems, flows, origins, actions and kinds named
in code, HTTP methods and status codes; never a record id or a path. Recording never raises: a
metric must not break a sync or an answer (failures are logged at debug level).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ParamSpec, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, Metric, multiprocess

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"

# Sync lag: the alert is at a p95 of 60 s, so the buckets are dense around a minute.
LAG_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30)

# --------------------------------------------------------------------------- the receiver

WEBHOOKS = Counter("sync_webhooks", "Webhook calls answered by the receiver, by answer and HTTP code.",
                   ["connection", "system", "answer", "code"])
INTAKE = Counter("sync_intake", "Events handed to the intake (receiver, reconciliation, follow-ups), by outcome.",
                 ["connection", "origin", "outcome"])

# --------------------------------------------------------------------------- the workers

RECORDS = Counter("sync_records", "Record syncs that ended with a result, by flow and action.",
                  ["connection", "flow", "action"])
LAG = Histogram("sync_lag_seconds", "Seconds from the event's acceptance to the end of its sync.",
                ["connection", "flow", "origin"], buckets=LAG_BUCKETS)
RETRIES = Counter("sync_retries", "Record syncs put off for later: transient failure or lock contention.",
                  ["connection", "flow", "kind"])
DEAD_LETTERS = Counter("sync_dead_letters", "Dead letters written, by flow and kind.",
                       ["connection", "flow", "kind"])
API_CALLS = Counter("sync_api_calls", "HTTP calls to webCRM and Uniconta, by method and status.",
                    ["connection", "system", "method", "status"])
API_SECONDS = Histogram("sync_api_call_duration_seconds", "Duration of HTTP calls to webCRM and Uniconta.",
                        ["connection", "system", "method"], buckets=CALL_BUCKETS)
THROTTLED = Counter("sync_api_throttled", "Calls refused for rate: a 429 from the API, or our own limiter/budget.",
                    ["connection", "system", "source"])

_SYSTEMS = frozenset({"webcrm", "uniconta"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")  # connection ids, flows, actions, origins, kinds

P = ParamSpec("P")
R = TypeVar("R")


def _safe(fn: Callable[P, None]) -> Callable[P, None]:
    """A recorder that never raises: metrics are not worth a failed sync."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            log.debug("metric %s not recorded", fn.__name__, exc_info=True)

    return wrapper


def label(value: object) -> str:
    """A label value from code-defined names; anything else (ids, paths, junk) becomes "other"."""
    text = str(value) if value is not None else ""
    return text if _NAME.match(text) else OTHER


def _system(value: str) -> str:
    return value if value in _SYSTEMS else OTHER


def _status(status: int | None) -> str:
    if status is None:
        return "error"  # no answer: connection refused, timeout
    return str(status) if 100 <= status <= 599 else OTHER


# --------------------------------------------------------------------------- recorders


@_safe
def webhook_answered(connection: str, system: str, answer: str, code: int) -> None:
    """The receiver answered a webhook: accepted, coalesced, duplicate or refused (with its HTTP code)."""
    WEBHOOKS.labels(label(connection), _system(system), label(answer), _status(code)).inc()


@_safe
def intake_outcome(connection: str, origin: str, outcome: str) -> None:
    INTAKE.labels(label(connection), label(origin), label(outcome)).inc()


def counts_intake(fn: Callable[P, R]) -> Callable[P, R]:
    """Count what `intake.accept(r, event, ...)` / `accept_many(r, events, ...)` made of each event
    (their `Outcome.status`), or "unavailable" when it raised."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        given = args[1] if len(args) > 1 else None
        events = given if isinstance(given, list) else [given]
        try:
            result = fn(*args, **kwargs)
        except Exception:
            for event in events:
                intake_outcome(getattr(event, "connection", ""), getattr(event, "origin", ""), "unavailable")
            raise
        outcomes = result if isinstance(result, list) else [result]
        for event, outcome in zip(events, outcomes, strict=False):
            intake_outcome(getattr(event, "connection", ""), getattr(event, "origin", ""),
                           getattr(outcome, "status", ""))
        return result

    return wrapper


@_safe
def synced(connection: str, flow: str, action: str, origin: str, received_at: float) -> None:
    """A record's sync ended with a result; its lag runs from the event's `received_at` to now."""
    RECORDS.labels(label(connection), label(flow), label(action)).inc()
    LAG.labels(label(connection), label(flow), label(origin)).observe(max(0.0, time.time() - received_at))


@_safe
def put_off(connection: str, flow: str, kind: str) -> None:
    """A record's sync will run again: "transient" (a retry after backoff) or "contended" (lock busy)."""
    RETRIES.labels(label(connection), label(flow), label(kind)).inc()


@_safe
def dead_lettered(connection: str, flow: str, kind: str) -> None:
    DEAD_LETTERS.labels(label(connection), label(flow), label(kind)).inc()


@_safe
def api_call(connection: str, system: str, method: str, status: int | None, elapsed_ms: float) -> None:
    conn, sys_ = label(connection), _system(system)
    verb = method.upper() if method.upper() in _METHODS else OTHER
    API_CALLS.labels(conn, sys_, verb, _status(status)).inc()
    API_SECONDS.labels(conn, sys_, verb).observe(max(0.0, elapsed_ms) / 1000.0)
    if status == 429:
        THROTTLED.labels(conn, sys_, "api").inc()


@_safe
def throttled_here(connection: str, system: str) -> None:
    """Our own limiter (webCRM's window, Uniconta's budget) refused a call before it was sent."""
    THROTTLED.labels(label(connection), _system(system), "limiter").inc()


def api_observer(connection: str, system: str) -> Callable[[str, str, int | None, float], None]:
    """An API client observer (`sync.clients.http.Observer`) that counts and times each call."""

    def observe(method: str, path: str, status: int | None, elapsed_ms: float) -> None:
        api_call(connection, system, method, status, elapsed_ms)  # the path has ids: never a label

    return observe


# --------------------------------------------------------------------------- serving


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


class _ThisProcess:
    """This process's metrics (prometheus-client's default registry), as one collector of another registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def registry() -> CollectorRegistry:
    """A registry to serve: every process's values merged (multiprocess mode), else this process's.
    A fresh one per caller, so the worker can add its collector of Redis-held state."""
    served = CollectorRegistry()
    path = multiprocess_dir()
    if path is None:
        served.register(_ThisProcess())
    else:
        multiprocess.MultiProcessCollector(served, path=str(path))
    return served


def prepare_multiprocess_dir() -> None:
    """Create the directory and remove a previous run's files (prometheus-client's advice: values of
    dead processes would otherwise be added to this run's). Call once, before the children start;
    raises OSError when the directory cannot be used."""
    path = multiprocess_dir()
    if path is None:
        return
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


@_safe
def process_exited(pid: int) -> None:
    """A child process ended (gunicorn's child_exit, Celery's worker_process_shutdown)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)
