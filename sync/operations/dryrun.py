"""Dry runs: run the real flow handlers with clients that read but do not write.

`syncctl backfill ... --dry-run` calls each record's handler in this process with
a context whose API clients pass every read through to webCRM and Uniconta but
*record* every write instead of sending it (a create answers a placeholder id, and
later reads of a record we "created" or "updated" see the recorded version). The
context's Redis state — links, fingerprints, merge bases, waiting lists, journal —
lives under a throwaway connection id `<id>~dryrun` (ids cannot contain `~`), seeded
with a copy of the real links and merge bases and deleted afterwards; jobs a flow
would queue for other records are recorded, not published. So nothing real changes.

Each record is classified from its Result, its recorded writes and its errors:
would-create / would-update / would-link / would-delete / unchanged / skipped (not
eligible, e.g. not a customer) / waiting / ambiguous / invalid / error, with a few
examples each.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import redis

from sync.clients.errors import AmbiguousMatch, ApiError, NotFound, Permanent, Throttled
from sync.clients.uniconta import UnicontaClient
from sync.clients.webcrm import WebcrmClient
from sync.events import Event
from sync.flows import FlowError, handler_for
from sync.operations.reconcile import Source
from sync.runtime import ConnectionContext
from sync.state import intake, journal, keys
from sync.state.ratelimit import priority

log = logging.getLogger(__name__)

SUFFIX = "~dryrun"
PLACEHOLDER_START = 900_000_000
EXAMPLES = 3
RETRIES = 5  # webCRM rate-limit waits per record
CLASSES = ("would-create", "would-update", "would-link", "would-delete", "unchanged", "skipped", "waiting",
           "ambiguous", "invalid", "error")
AMBIGUOUS_ACTIONS = ("ambiguous", "review", "conflict")


@dataclass(frozen=True)
class Write:
    system: str
    operation: str  # create | update | delete | insert
    entity: str
    id: Any = None
    changes: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        ident = "" if self.id is None else f" {self.id}"
        text = f"{self.system} {self.operation} {self.entity}{ident}"
        if self.changes:
            shown = ", ".join(f"{k}={_short(v)}" for k, v in list(self.changes.items())[:6])
            more = f" (+{len(self.changes) - 6} more)" if len(self.changes) > 6 else ""
            text += f": {shown}{more}"
        return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Ids:
    def __init__(self) -> None:
        self._next = itertools.count(PLACEHOLDER_START)

    def __call__(self) -> int:
        return next(self._next)


_RAW = ("_send", "_call", "_entities")  # the clients' raw request methods


def _read_only(method: Any) -> Any:
    """A raw request method that refuses anything but GET (a flow bypassing the public API)."""

    def call(verb: str, *args: Any, **kwargs: Any) -> Any:
        if verb.upper() != "GET":
            raise RuntimeError(f"dry run: refusing a direct {verb} request")
        return method(verb, *args, **kwargs)

    return call


_MISSING = object()


class _Passthrough:
    _real: Any
    _undo: list[tuple[dict[Any, Any], Any, Any]]

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        return _read_only(attr) if name in _RAW else attr

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        """Set an overlay entry, remembering how to take it back (a record retried after throttling)."""
        self._undo.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def mark(self) -> int:
        return len(self._undo)

    def rollback(self, mark: int) -> None:
        while len(self._undo) > mark:
            table, key, old = self._undo.pop()
            if old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old


class RecordingWebcrm(_Passthrough):
    """A WebcrmClient whose writes are recorded; reads pass through (and see recorded writes)."""

    def __init__(self, real: WebcrmClient, writes: list[Write], ids: _Ids) -> None:
        self._real, self._writes, self._ids, self._undo = real, writes, ids, []
        self._overlay: dict[tuple[str, int], dict[str, Any]] = {}
        self._read: dict[tuple[str, int], dict[str, Any]] = {}

    def get(self, entity: str, id: int) -> dict[str, Any]:
        key = (entity, int(id))
        if key in self._overlay:
            return dict(self._overlay[key])
        record = self._real.get(entity, id)
        self._read[key] = dict(record)
        return record

    def create(self, entity: str, dto: dict[str, Any]) -> int | None:
        new_id = self._ids()
        self._put(self._overlay, (entity, new_id), dict(dto))
        self._writes.append(Write("webcrm", "create", entity, new_id, _interesting(dto)))
        return new_id

    def update(self, entity: str, id: int, dto: dict[str, Any]) -> None:
        key = (entity, int(id))
        before = self._overlay.get(key) or self._read.get(key) or {}
        changes = {k: v for k, v in dto.items() if before.get(k) != v} if before else _interesting(dto)
        self._put(self._overlay, key, dict(dto))
        self._writes.append(Write("webcrm", "update", entity, id, changes))

    def delete(self, entity: str, id: int) -> None:
        self._writes.append(Write("webcrm", "delete", entity, id))

    def create_hook(self, entity: str, target_url: str, event_type: str, filter: Any = ("All",)) -> int | None:
        self._writes.append(Write("webcrm", "create", f"{entity}/Hooks", None, {"EventType": event_type}))
        return self._ids()

    def delete_hook(self, entity: str, hook_id: int) -> None:
        self._writes.append(Write("webcrm", "delete", f"{entity}/Hooks", hook_id))


def _base(entity: str) -> str:
    return entity[:-4] if entity.endswith("ClientUser") else entity


class RecordingUniconta(_Passthrough):
    """A UnicontaClient whose writes are recorded; reads pass through (and see recorded writes)."""

    def __init__(self, real: UnicontaClient, writes: list[Write], ids: _Ids) -> None:
        self._real, self._writes, self._ids, self._undo = real, writes, ids, []
        self._overlay: dict[str, dict[int, dict[str, Any]]] = {}
        self._read: dict[tuple[str, Any], dict[str, Any]] = {}

    def _remember(self, entity: str, records: list[dict[str, Any]]) -> None:
        for record in records:
            if record.get("RowId") is not None:
                self._read[(_base(entity), record["RowId"])] = dict(record)

    def find(self, entity: str, prop: str, value: str | int) -> list[dict[str, Any]]:
        mine = self._overlay.get(_base(entity), {})
        real = [r for r in self._real.find(entity, prop, value) if r.get("RowId") not in mine]
        self._remember(entity, real)
        local = [dict(r) for r in mine.values() if str(r.get(prop)) == str(value) and not r.get("__deleted")]
        return real + local

    def get_one(self, entity: str, prop: str, value: str | int) -> dict[str, Any] | None:
        records = self.find(entity, prop, value)
        if len(records) > 1:
            raise AmbiguousMatch(f"{len(records)} records match {prop}", system="uniconta", method="GET",
                                 path=f"/api/Entities/{entity}", field=prop)
        return records[0] if records else None

    def odata(self, entity: str, **kw: Any) -> Iterator[dict[str, Any]]:
        mine = self._overlay.get(_base(entity), {})
        for record in self._real.odata(entity, **kw):
            if record.get("RowId") in mine:
                if not mine[record["RowId"]].get("__deleted"):
                    yield dict(mine[record["RowId"]])
                continue
            self._remember(entity, [record])
            yield record

    def insert(self, entity: str, record: dict[str, Any]) -> dict[str, Any] | None:
        row_id = self._ids()
        stored = {**record, "RowId": row_id}
        self._put(self._overlay.setdefault(_base(entity), {}), row_id, stored)
        self._writes.append(Write("uniconta", "insert", entity, None, _interesting(record)))
        return dict(stored)

    def insert_list(self, entity: str, records: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        return [r for r in (self.insert(entity, rec) for rec in records) if r is not None]

    def update(self, entity: str, record: dict[str, Any]) -> dict[str, Any] | None:
        row_id = record.get("RowId")
        mine = self._overlay.get(_base(entity), {})
        before = self._read.get((_base(entity), row_id)) or (mine.get(row_id) if row_id is not None else None) or {}
        changes = {k: v for k, v in record.items() if before.get(k) != v} if before else _interesting(record)
        if row_id is not None:
            self._put(self._overlay.setdefault(_base(entity), {}), row_id, dict(record))
        self._writes.append(Write("uniconta", "update", entity, _key_of(record), changes))
        return dict(record)

    def delete(self, entity: str, record: dict[str, Any]) -> None:
        row_id = record.get("RowId")
        if row_id is not None:
            self._put(self._overlay.setdefault(_base(entity), {}), row_id, {**record, "__deleted": True})
        self._writes.append(Write("uniconta", "delete", entity, _key_of(record)))


def _key_of(record: dict[str, Any]) -> Any:
    for name in ("Account", "Item", "Number", "OrderNumber", "KeyStr", "RowId"):
        if record.get(name) not in (None, "", 0):
            return record[name]
    return None


def _interesting(dto: dict[str, Any]) -> dict[str, Any]:
    """The filled fields of a body (defaults and placeholders left out)."""
    return {k: v for k, v in dto.items() if v not in (None, "", 0, False, "-", [], {})
            and not str(k).endswith(("CreatedAt", "UpdatedAt", "CreatedBy", "UpdatedBy"))}


# --------------------------------------------------------------------------- the scratch context


@contextlib.contextmanager
def scratch(ctx: ConnectionContext) -> Iterator[tuple[ConnectionContext, list[Write], list[Event]]]:
    """A dry-run copy of `ctx`: recording clients, Redis state under `<id>~dryrun`."""
    real_id = ctx.connection.id
    fake_id = real_id + SUFFIX
    writes: list[Write] = []
    queued: list[Event] = []
    ids = _Ids()
    _wipe(ctx.redis, fake_id)
    _copy_state(ctx.redis, real_id, fake_id)

    def record(event: Event) -> None:
        """Remember the job instead of publishing it; without a job, its pending mark must not stay."""
        queued.append(event)
        intake.clear_pending(ctx.redis, event)

    dry = ConnectionContext(replace(ctx.connection, id=fake_id), ctx.redis,
                            RecordingWebcrm(ctx.webcrm, writes, ids),  # type: ignore[arg-type]
                            RecordingUniconta(ctx.uniconta, writes, ids),  # type: ignore[arg-type]
                            enqueue=record)
    try:
        yield dry, writes, queued
    finally:
        _wipe(ctx.redis, fake_id)


def _copy_state(r: redis.Redis, real_id: str, fake_id: str) -> None:
    """Links and merge bases, so the dry run decides as the real sync would."""
    prefix = f"{keys.PREFIX}:{real_id}:"
    for pattern in (keys.links(real_id, "*", "*"), keys.counter(real_id, "base:*")):
        for key in r.scan_iter(pattern, count=1000):
            name = str(key)
            r.copy(name, f"{keys.PREFIX}:{fake_id}:" + name[len(prefix):], replace=True)


def _wipe(r: redis.Redis, fake_id: str) -> None:
    if not fake_id.endswith(SUFFIX):  # never wipe a real connection
        raise ValueError(fake_id)
    batch: list[str] = []
    for key in r.scan_iter(f"{keys.PREFIX}:{fake_id}:*", count=1000):
        batch.append(str(key))
        if len(batch) >= 500:
            r.delete(*batch)
            batch.clear()
    if batch:
        r.delete(*batch)


# --------------------------------------------------------------------------- classification


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    records: int = 0
    stopped: str = ""

    def add(self, cls: str, example: dict[str, Any]) -> None:
        self.records += 1
        self.counts[cls] = self.counts.get(cls, 0) + 1
        shown = self.examples.setdefault(cls, [])
        if len(shown) < EXAMPLES:
            shown.append(example)

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "counts": {k: v for k, v in self.counts.items() if v or k in CLASSES[:6]},
                "examples": self.examples, **({"stopped": self.stopped} if self.stopped else {})}


def classify(action: str | None, writes: list[Write], error: BaseException | None,
             detail: dict[str, Any] | None = None) -> str:
    reason = str((detail or {}).get("reason") or "").lower()
    if error is not None:
        if isinstance(error, AmbiguousMatch):
            return "ambiguous"
        if isinstance(error, FlowError | Permanent) and not isinstance(error, NotFound | Throttled):
            return "invalid"
        if isinstance(error, NotFound):
            return "invalid"
        if any(w.operation in ("create", "insert") for w in writes):
            return "would-create"  # e.g. a read-back the dry run cannot answer
        return "error"
    if action in AMBIGUOUS_ACTIONS or "ambiguous" in reason or "for review" in reason:
        return "ambiguous"
    if action == "waiting":
        return "waiting"
    if any(w.operation in ("create", "insert") for w in writes):
        return "would-create"
    if action == "linked":
        return "would-link"
    if any(w.operation == "update" for w in writes):
        return "would-update"
    if any(w.operation == "delete" for w in writes):
        return "would-delete"
    if action in ("skipped", "ignored", "absent"):
        return "skipped"  # not eligible (e.g. not a customer), or gone
    return "unchanged"


def _one(dry: ConnectionContext, handler: Any, source: Source, record_id: str, writes: list[Write],
         queued: list[Event], sleep: Callable[[float], None],
         ) -> tuple[str | None, dict[str, Any], BaseException | None] | None:
    """Run one record's handler: (action, detail, error); None when the Uniconta budget refuses.

    A webCRM rate-limit wait is slept off and the record run again, its recorded writes undone.
    """
    clients: tuple[Any, ...] = (dry.webcrm, dry.uniconta)
    marks = [c.mark() for c in clients]
    wait = 0.0
    for attempt in range(RETRIES + 1):
        writes.clear()
        queued.clear()
        event = Event(dry.connection.id, source.system, source.entity, record_id, origin="backfill")
        with journal.recording(dry.redis, dry.connection.id, source.entity, record_id), priority("batch"):
            try:
                result = handler(dry, event)
                return result.action, dict(result.detail), None
            except Throttled as err:
                if err.system != "webcrm":
                    return None
                if attempt == RETRIES:
                    return None, {}, err
                wait = min(err.retry_after or 1.0, 30.0)
            except (ApiError, FlowError) as err:
                return None, {}, err
            except Exception as err:  # a flow bug must not end the whole dry run
                log.exception("dry run of %s %s failed", source.entity, record_id)
                return None, {}, err
        for client, mark in zip(clients, marks, strict=True):
            client.rollback(mark)
        sleep(wait)
    raise AssertionError("unreachable")


def run(ctx: ConnectionContext, source: Source, record_ids: list[str],
        progress: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep) -> Report:
    """Run the source's handler for each record without writing anything; returns the report."""
    route = handler_for(source.system, source.entity)
    report = Report()
    if route is None:
        report.stopped = f"no flow handles {source.system} {source.entity} (not built yet?)"
        return report
    _flow, handler = route
    with scratch(ctx) as (dry, writes, queued):
        for record_id in record_ids:
            outcome = _one(dry, handler, source, record_id, writes, queued, sleep)
            if outcome is None:  # the Uniconta budget refused a batch call
                report.stopped = "stopped: the batch share of today's Uniconta budget is used up"
                break
            action, detail, error = outcome
            cls = classify(action, writes, error, detail)
            example: dict[str, Any] = {"id": record_id}
            if action:
                example["action"] = action
            if detail:
                example["detail"] = {k: v for k, v in detail.items() if not isinstance(v, dict | list)}
            if writes:
                example["writes"] = [w.describe() for w in writes]
            if queued:
                example["would_queue"] = [f"{e.system} {e.entity} {e.record_id}" for e in queued]
            if error is not None:
                example["error"] = f"{type(error).__name__}: {error}"[:300]
            report.add(cls, example)
            if progress is not None:
                progress(cls)
    return report
