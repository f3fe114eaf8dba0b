"""Backfill / initial sync: queue every record of a flow's source at backfill priority, a page per job.

`syncctl backfill CONNECTION ENTITY` walks the source (webCRM by id through
`/Queries`, Uniconta by RowId through OData) and hands each page of `batch_size` records
to `intake.accept_many` with origin "backfill": one `sync.batch` job per page, routed to
the `backfill` queue that workers read last. The flow handlers do the matching, record by
record as always: they look the target up by cross-reference, then by e-mail or item
number, and only then create — so existing pairs are linked, not duplicated — while the
batch shares their reads and writes (sync/jobs/batch.py).

* **Plan, then queue.** The ids are read first (ids and `UpdatedAt` only where the API
  allows), which gives the progress bar its total and ETA.
* **Flow control.** At most `backfill_window` records wait in the backfill queue; the walk
  waits for the workers beyond that. A live change to a record whose backfill job is
  waiting is coalesced into that job, so the queue must stay short.
* **Checkpoint** (`sync:<c>:count:backfill:<system>:<entity>`): the position (webCRM id or
  Uniconta RowId) of the last record queued, written with every page. After a crash or
  Ctrl-C the same command resumes after it; `--restart` starts over.
* **Budget.** All reads run as batch work, and backfill jobs run as batch work too
  (tasks/reconcile.py), so the live reserve of the Uniconta daily budget is never used.
  Before each page the walk compares what is left of the batch share with what the
  records still waiting will need; when it is not enough it stops ("stop now, resume
  later"), rewinds the checkpoint to the first record whose job has not started, and tells
  when the budget resets (local midnight).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import redis

from sync.clients.errors import Throttled
from sync.events import Event
from sync.operations.reconcile import Source, all_rows, budget_of, strings
from sync.runtime import ConnectionContext
from sync.state import intake, keys
from sync.state.locks import LockBusy, record_lock
from sync.state.ratelimit import DailyBudget, priority

DEFAULT_CALLS_PER_RECORD = 3  # Uniconta calls one backfilled record costs alone, until measured
DEFAULT_CALLS_PER_PAGE = 20  # ... and a page of records in one batch job (lookups, InsertLists, echo checks)
MEASURE_AFTER = 20  # finished jobs before the measured cost is trusted
WAIT_NOTICE_SECONDS = 30.0


class Reporter(Protocol):
    def start(self, total: int, done: int, description: str) -> None: ...
    def advance(self, counts: dict[str, int]) -> None: ...
    def note(self, text: str) -> None: ...
    def stop(self) -> None: ...


class SilentReporter:
    def start(self, total: int, done: int, description: str) -> None:
        pass

    def advance(self, counts: dict[str, int]) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass


class CheckpointMismatch(Exception):
    """An unfinished backfill with other options exists; finish it or restart."""


class Busy(Exception):
    """Another process is backfilling the same source."""


@dataclass
class Outcome:
    connection: str
    entity: str
    state: str  # done | limit | budget | interrupted
    total: int = 0  # records in this run's plan
    queued: int = 0
    coalesced: int = 0
    walked: int = 0  # records handled by this run
    position: int | None = None
    resumed_from: int | None = None
    resume_after_seconds: float | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def checkpoint_key(connection: str, source: Source) -> str:
    return keys.counter(connection, f"backfill:{source.system}:{source.entity}")


def checkpoints(r: redis.Redis, connection: str) -> dict[str, dict[str, Any]]:
    """Every backfill checkpoint of a connection, by source name."""
    out: dict[str, dict[str, Any]] = {}
    prefix = keys.counter(connection, "backfill:")
    for key in r.scan_iter(prefix + "*", count=1000):
        name = str(key)[len(prefix):]
        out[name] = strings(r.hgetall(key))
    return dict(sorted(out.items()))


def load_checkpoint(r: redis.Redis, connection: str, source: Source) -> dict[str, str]:
    return strings(r.hgetall(checkpoint_key(connection, source)))


def plan(ctx: ConnectionContext, source: Source, *, after: int | None, since: datetime | None,
         limit: int | None, sleep: Callable[[float], None] = time.sleep) -> list[tuple[str, int]]:
    """(record id, position) of the records to backfill, in position order.

    Raises Throttled when the Uniconta budget refuses the batch reads.
    """
    for attempt in range(5):
        try:
            out: list[tuple[str, int]] = []
            with priority("batch"):
                for row in all_rows(ctx, source, after=after, since=since):
                    record_id, position = source.record_id(row), source.position(row)
                    if record_id is None or position is None:
                        continue
                    out.append((record_id, position))
                    if limit is not None and len(out) >= limit:
                        break
            return out
        except Throttled as err:
            if err.system != "webcrm" or attempt == 4:  # the Uniconta budget: stop
                raise
            sleep(min(err.retry_after or 1.0, 30.0))  # the webCRM window is busy: wait for a slot
    raise AssertionError("unreachable")


def run(ctx: ConnectionContext, source: Source, enqueue: intake.EnqueueBatch, **options: Any) -> Outcome:
    """Backfill one source of a connection; see the module docstring and `_run` for the options.

    `enqueue` publishes one batch job for a page of events (`tasks.dispatch.enqueue_batch`).
    Raises Busy when another backfill of the same source runs, CheckpointMismatch for a `since`
    that differs from an unfinished run's.
    """
    try:
        with record_lock(ctx.redis, ctx.connection.id, "backfill", source.name):
            return _run(ctx, source, enqueue, **options)
    except LockBusy:
        raise Busy(f"another backfill of {source.entity} on {ctx.connection.id} is running") from None


def _run(ctx: ConnectionContext, source: Source, enqueue: intake.EnqueueBatch, *, since: datetime | None = None,
         limit: int | None = None, restart: bool = False, window: int | None = None,
         queue_depth: Callable[[], int] = lambda: 0, reporter: Reporter | None = None,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> Outcome:
    r, conn = ctx.redis, ctx.connection
    reporter = reporter or SilentReporter()
    window = conn.backfill_window if window is None else window
    size = conn.batch_size
    key = checkpoint_key(conn.id, source)
    since_text = since.isoformat() if since else ""
    previous = load_checkpoint(r, conn.id, source)
    after: int | None = None
    if previous and not restart and previous.get("state") != "done":
        if previous.get("since", "") != since_text:
            raise CheckpointMismatch(
                f"an unfinished backfill of {source.entity} with --since {previous.get('since') or '(none)'} exists; "
                "run it with the same --since to resume, or pass --restart")
        after = int(previous["position"]) if previous.get("position") else None
    outcome = Outcome(conn.id, source.entity, "done", resumed_from=after, position=after)
    budget = budget_of(ctx)
    started_used = budget.usage()["used"]
    try:
        todo = plan(ctx, source, after=after, since=since, limit=limit, sleep=sleep)
    except Throttled as err:
        return _budget_stop(r, key, outcome, budget, err, rewind_to=after)
    outcome.total = len(todo)
    base: dict[Any, Any] = {"since": since_text, "entity": source.entity, "system": source.system,
            "started_at": previous.get("started_at") if after is not None else f"{time.time():.3f}"}
    r.hset(key, mapping={**base, "state": "running", "position": "" if after is None else str(after),
                         "planned": str(len(todo)), "updated_at": f"{time.time():.3f}"})
    queued_before = int(previous.get("queued") or 0) if after is not None else 0
    reporter.start(len(todo), 0, f"backfill {conn.id} {source.entity}")
    recent: collections.deque[tuple[str, int]] = collections.deque(maxlen=max(window, size) + 50)
    current: list[Event] = []
    try:
        for start in range(0, len(todo), size):
            page = todo[start:start + size]
            _wait_for_room(lambda: queue_depth() * size, window, reporter, sleep, clock)
            waiting = _not_started(r, source, conn.id, recent)
            needed = _calls_needed(budget, started_used, outcome, waiting, len(page), size)
            usage = budget.usage()
            if budget.budget and usage["remaining_for_batch"] < needed:
                short = Throttled(f"daily call budget: batch share nearly used ({usage['used']} of "
                                  f"{budget.budget - budget.reserve}); the waiting jobs need ~{needed}",
                                  system="uniconta", retry_after=budget.seconds_to_midnight())
                return _budget_stop(r, key, outcome, budget, short, rewind_to=_first_unstarted(r, source, conn.id,
                                                                                            recent, after))
            current = [Event(conn.id, source.system, source.entity, record_id, origin="backfill")
                       for record_id, _ in page]
            statuses = [o.status for o in intake.accept_many(r, current, enqueue)]
            current = []
            outcome.queued += statuses.count("queued")
            outcome.coalesced += len(statuses) - statuses.count("queued")
            outcome.walked += len(page)
            outcome.position = page[-1][1]
            recent.extend(page)
            r.hset(key, mapping={"position": str(outcome.position), "updated_at": f"{time.time():.3f}",
                                 "queued": str(queued_before + outcome.queued + outcome.coalesced)})
            for _ in page:
                reporter.advance({"queued": outcome.queued, "coalesced": outcome.coalesced})
    except KeyboardInterrupt:
        for event in current:
            # Interrupted inside the intake: the page's job may not have been published, and a pending
            # mark without a job would hold its record back for an hour. Drop our own marks (a second
            # job, if it was published after all, is harmless).
            intake.clear_pending(r, event)
        outcome.state = "interrupted"
        outcome.message = (f"interrupted after {outcome.walked} of {outcome.total}; the checkpoint is at "
                           f"{outcome.position}: run the same command to resume")
        r.hset(key, mapping={"state": "interrupted", "updated_at": f"{time.time():.3f}"})
        return outcome
    finally:
        reporter.stop()
    more = limit is not None and len(todo) >= limit
    outcome.state = "limit" if more else "done"
    r.hset(key, mapping={"state": outcome.state, "updated_at": f"{time.time():.3f}",
                         **({"finished_at": f"{time.time():.3f}"} if not more else {})})
    outcome.message = (f"queued {outcome.queued} (+{outcome.coalesced} already waiting) of {outcome.total}"
                       + ("; more left: run the same command to continue" if more else ""))
    return outcome


def _wait_for_room(queued: Callable[[], int], window: int, reporter: Reporter,
                   sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
    """Wait while `window` records or more wait in the backfill queue."""
    if window <= 0:
        return
    since = clock()
    noticed = False
    while queued() >= window:
        if not noticed and clock() - since > WAIT_NOTICE_SECONDS:
            reporter.note(f"waiting for workers: {window} backfill records are queued (is a worker running "
                          "with -Q ...,backfill?)")
            noticed = True
        sleep(0.2)


def _calls_needed(budget: DailyBudget, started_used: int, outcome: Outcome, waiting: int, page: int,
                  size: int) -> int:
    """Uniconta calls this run's waiting records plus the next page will need.

    Measured per record once enough records ran; until then a page (of any length: most of its
    calls are shared) is taken to cost `DEFAULT_CALLS_PER_PAGE`, a record alone
    `DEFAULT_CALLS_PER_RECORD`.
    """
    if not budget.budget:
        return 0
    finished = outcome.queued - waiting
    if finished >= MEASURE_AFTER:
        per_record = max(0.01, (budget.usage()["used"] - started_used) / finished)
        return int(per_record * (waiting + page) + 0.999)
    pages = -(-(waiting + page) // max(1, size))
    return pages * (DEFAULT_CALLS_PER_RECORD if size <= 1 else DEFAULT_CALLS_PER_PAGE)


def _not_started(r: redis.Redis, source: Source, connection: str,
                 recent: collections.deque[tuple[str, int]]) -> int:
    """How many of this run's recent jobs have not started yet (their pending mark is still set)."""
    if not recent:
        return 0
    return int(r.exists(*(keys.pending(connection, source.system, source.entity, rid) for rid, _ in recent)))


def _first_unstarted(r: redis.Redis, source: Source, connection: str, recent: collections.deque[tuple[str, int]],
                     start: int | None) -> int | None:
    """The checkpoint to resume from: just before the first recent job that has not started."""
    previous = start
    for record_id, position in recent:
        if r.exists(keys.pending(connection, source.system, source.entity, record_id)):
            return previous
        previous = position
    return previous


def _budget_stop(r: redis.Redis, key: str, outcome: Outcome, budget: DailyBudget, err: Throttled,
                 rewind_to: int | None) -> Outcome:
    wait = err.retry_after if err.retry_after is not None else budget.seconds_to_midnight()
    resume_at = datetime.fromtimestamp(time.time() + wait, budget.tz)
    outcome.state = "budget"
    outcome.position = rewind_to
    outcome.resume_after_seconds = round(wait, 1)
    outcome.budget = budget.usage()
    outcome.message = (f"stopped: {err.message or err}. Queued {outcome.queued} of {outcome.total}. "
                       f"Resume after {resume_at:%Y-%m-%d %H:%M} ({budget.tz.key}), in {_duration(wait)}, "
                       "with the same command")
    r.hset(key, mapping={"state": "budget", "position": "" if rewind_to is None else str(rewind_to),
                         "resume_after": f"{time.time() + wait:.0f}", "updated_at": f"{time.time():.3f}"})
    return outcome


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def parse_since(text: str) -> datetime:
    """`YYYY-MM-DD` (UTC midnight) or an ISO datetime (naive = UTC)."""
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=UTC)
