"""Many records in one job: each record's sync as a single job does it, their API calls shared.

Every record runs `step.sync_one` in its own thread, with its own journal, pending mark, lock
and verdict, exactly as if it had a job of its own; only its clients differ: they hand each
call to the batch's `Gate`, and `calls.Executor` serves each round of calls together. A record
that fails is retried or dead-lettered on its own (`Outcome.verdict`); the others are not
repeated.

Echoes: every write the batch is about to make is announced (`Executor.expect`) and the records
it touches get a pending mark that belongs to one *verification* job, published with a short
countdown (`echo_window_seconds`). The webhooks our writes cause (Uniconta's Change URL, webCRM's
hooks) find that mark and are coalesced into it, so they cost no job and no read of their own;
the verification job, itself a batch, reads the records once per page after the webhooks have
arrived and finds them as written (or syncs a change someone made meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import redis

from sync.config import Settings
from sync.events import Event
from sync.flows import ROUTES, Result
from sync.jobs import calls
from sync.jobs.gate import Gate, Request
from sync.jobs.step import Verdict, after_failure, dead_letter, sync_one
from sync.logs import log_context
from sync.runtime import ConnectionContext
from sync.state import intake, journal, keys
from sync.state.locks import LockBusy, record_locks

log = logging.getLogger(__name__)

ECHO_ORIGIN = "echo"
ECHO_MARK_TTL = 600  # how long after a batch's write its record's webhooks are taken for echoes (and wait)

# Where a write lands, as the event its webhook will become: (system, API entity) → (entity, key field).
# Contacts have no key: their webhooks name them by RowId ("#<RowId>").
ECHOES: dict[tuple[str, str], tuple[str, str]] = {
    ("webcrm", "Organisations"): ("organisation", "_id"),
    ("webcrm", "Persons"): ("person", "_id"),
    ("webcrm", "Users"): ("user", "_id"),
    ("webcrm", "Deliveries"): ("delivery", "_id"),
    ("webcrm", "QuotationLines"): ("quotationline", "_id"),
    ("uniconta", "DebtorClient"): ("debtor", "Account"),
    ("uniconta", "DebtorClientUser"): ("debtor", "Account"),
    ("uniconta", "ContactClient"): ("contact", "RowId"),
    ("uniconta", "ContactClientUser"): ("contact", "RowId"),
    ("uniconta", "EmployeeClient"): ("employee", "Number"),
    ("uniconta", "EmployeeClientUser"): ("employee", "Number"),
}


@dataclass
class Outcome:
    """What became of one record of the batch."""

    event: Event
    result: Result | None = None
    verdict: Verdict | None = None  # set when the record's sync raised
    error: BaseException | None = None

    @property
    def action(self) -> str:
        if self.result is not None:
            return self.result.action
        return "dead-letter" if self.verdict and self.verdict.action == "dead" else (
            self.verdict.action if self.verdict else "")


class _Failed(Exception):
    def __init__(self, verdict: Verdict, error: BaseException) -> None:
        super().__init__(str(error))
        self.verdict, self.error = verdict, error


class _Client:
    """A client whose calls go through the gate: attributes are the real client's, calls are not."""

    def __init__(self, gate: Gate, name: str, real: Any) -> None:
        self._gate, self._name, self._real = gate, name, real

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._real, attr)
        if not callable(value):
            return value
        return lambda *args, **kwargs: self._gate.call(Request(self._name, attr, args, kwargs))


class _TableRows(calls.TableRows):
    """Table sizes kept in Redis for the connection, so the next batch knows them too."""

    def __init__(self, ctx: ConnectionContext) -> None:
        super().__init__()
        self._redis, self._key = ctx.redis, keys.counter(ctx.connection.id, "table-rows")

    def __call__(self, entity: str) -> int | None:
        value = self._redis.hget(self._key, entity)
        return int(value) if value is not None and str(value).isdigit() else None

    def record(self, entity: str, rows: int) -> None:
        self._redis.hset(self._key, entity, rows)


@dataclass
class Batch:
    """One run of a batch; `run()` returns an outcome per event, in order."""

    ctx: ConnectionContext
    settings: Settings
    attempt: int = 0
    first_attempt_at: float | None = None
    transient: tuple[type[BaseException], ...] = ()
    backoff: Callable[[int, float | None], float] = lambda attempt, retry_after: 0.0
    contention: Callable[[], float] = lambda: 0.0

    def run(self, events: list[Event]) -> list[Outcome]:
        gate = Gate()
        conn = self.ctx.connection
        self._expected: set[tuple[str, str, str]] = {(e.system, e.entity, e.record_id) for e in events
                                                      if e.origin == ECHO_ORIGIN}
        executor = calls.Executor(self.ctx.webcrm, self.ctx.uniconta, calls.Settings(
            or_filter_size=conn.uniconta.or_filter_size, page_size=conn.uniconta.page_size,
            insert_list_size=conn.uniconta.insert_list_size, bulk_write_size=conn.webcrm.bulk_write_size,
            bulk_writes=conn.webcrm.bulk_writes), expect=self._expect, table_rows=_TableRows(self.ctx))
        shared = replace(self.ctx, webcrm=_Client(gate, "webcrm", self.ctx.webcrm),  # type: ignore[arg-type]
                         uniconta=_Client(gate, "uniconta", self.ctx.uniconta))  # type: ignore[arg-type]
        self.first_attempt_at = self.first_attempt_at or time.time()
        # What each record's job would do first — clear its pending mark, take its lock — for all of them
        # in two round trips; a record whose lock another worker holds is contended at once.
        intake.clear_pending_many(self.ctx.redis, events)
        with record_locks(self.ctx.redis, conn.id, [(e.entity, e.record_id) for e in events]) as held:
            results = gate.run([partial(self._one, shared, ev, (ev.entity, ev.record_id) in held)
                                for ev in events], executor)
        self.rounds = gate.rounds
        out: list[Outcome] = []
        for event, (value, error) in zip(events, results, strict=True):
            if isinstance(error, _Failed):
                out.append(Outcome(event, verdict=error.verdict, error=error.error))
            elif error is not None:  # not even the step's own handling ran (should not happen)
                out.append(Outcome(event, verdict=Verdict("retry", self.backoff(self.attempt, None)), error=error))
            else:
                out.append(Outcome(event, result=value))
        return out

    def _one(self, ctx: ConnectionContext, event: Event, locked: bool) -> Result:
        with log_context(connection=event.connection, entity=event.entity, record=event.record_id,
                         event=event.event_id), \
                journal.recording(ctx.redis, event.connection, event.entity, event.record_id, buffered=True):
            try:
                if not locked:
                    raise LockBusy(f"{event.entity} {event.record_id} is being synced by another worker")
                return sync_one(ctx, event, attempt=self.attempt, prepared=True)
            except Exception as err:
                assert self.first_attempt_at is not None
                verdict = after_failure(self.settings, err, attempt=self.attempt,
                                        first_attempt_at=self.first_attempt_at, transient=self.transient,
                                        contention_delay=self.contention(),
                                        backoff_delay=self.backoff(self.attempt, getattr(err, "retry_after", None)),
                                        event=event)
                if verdict.action == "contended":
                    journal.note("contended")
                elif verdict.action == "retry":
                    journal.note("retry", error=str(err), in_seconds=verdict.delay, attempt=self.attempt + 1)
                else:
                    dead_letter(ctx.redis, event.task_kwargs(), err, verdict.reason, attempts=self.attempt + 1,
                                first_attempt_at=self.first_attempt_at if verdict.reason == "exhausted" else None)
                raise _Failed(verdict, err) from err

    # ------------------------------------------------------------------------- echoes

    def _expect(self, system: str, api_entity: str, records: list[dict[str, Any]]) -> None:
        """Give the records a write is about to touch a pending mark of one verification job."""
        target = ECHOES.get((system, api_entity))
        if target is None:
            return
        entity, key = target
        route = ROUTES.get((system, entity))
        if route is None or not self.ctx.connection.enabled(route[0]):
            return
        events = []
        for record in records:
            value = record.get(key)
            if value in (None, "", 0):
                continue  # not known yet (an insert's RowId): announced again with the stored record
            record_id = f"#{value}" if entity == "contact" else str(value)
            marker = (system, entity, record_id)
            if marker in self._expected:
                continue
            self._expected.add(marker)
            events.append(Event(self.ctx.connection.id, system, entity, record_id, origin=ECHO_ORIGIN))
        if not events:
            return
        window = self.ctx.connection.echo_window_seconds
        try:
            intake.accept_many(self.ctx.redis, events, self.ctx.enqueue_batch, countdown=window)
            pipe = self.ctx.redis.pipeline(transaction=False)
            for e in events:  # echoes that come after the check job started still wait and go together
                pipe.set(keys.echo(e.connection, e.system, e.entity, e.record_id), max(window, 1.0), ex=ECHO_MARK_TTL)
            pipe.execute()
        except (intake.Unavailable, redis.RedisError) as err:
            # Only a saving: without the check job each echo runs as its own job. The write goes on.
            log.warning("could not prepare the check of this batch's echoes: %s", err)
