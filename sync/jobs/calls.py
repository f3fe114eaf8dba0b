"""Serving a round of client calls with as few API calls as the APIs allow.

The records of a batch ask for what a single job would ask for; the executor answers a round
of such requests together:

* webCRM `get(entity, id)` for many ids: one `/Queries` page per run of nearby ids
  (`SELECT * FROM <Table> WHERE <Id> >= a AND <Id> <= b`); a page read that the API refuses
  falls back to single GETs for the rest of the batch.
* webCRM `update(entity, id, dto)` for many records: one bulk `PATCH /<entity>` per chunk
  (`webcrm.bulk_write_size`); an item the answer does not account for is written again with
  its own PUT (the same full DTO, so writing it twice is harmless).
* Uniconta `find`/`get_one`/`odata(filter="P eq v")` for many values of one property: one OData
  read per `uniconta.or_filter_size` values (`P eq a or P eq b ...`).
* Uniconta `insert` of many records into one entity: one `InsertList` per chunk
  (`uniconta.insert_list_size`); a chunk the API refuses is split, so one bad record fails alone.
* Any other read is made once per round however many records ask for it; any other write is
  made as it is.

A shared call that fails transiently is tried again a few times before its records are told;
every record gets its own copy of an answer. The calls made for several records are journaled
in each of their journals (`journal.shared_by`).
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sync.clients.errors import AmbiguousMatch, ApiError, NotFound, Permanent, Throttled, Transient
from sync.clients.uniconta import UnicontaClient, odata_literal
from sync.clients.webcrm import WebcrmClient, sql_literal
from sync.jobs.gate import Request
from sync.state import journal

log = logging.getLogger(__name__)

# webCRM collections whose records a `/Queries` page can serve: (table, id column). A row stands in for
# the GET DTO only with the DTO's properties: the catalogue's rows may carry other names too (or, per
# webCRM's own integration code, only `LinkedDataItemDto`'s), so only the DTO's prefix is kept, and a
# page without the id column falls back to single GETs.
QUERY_TABLES: dict[str, tuple[str, str]] = {
    "Organisations": ("Organisation", "OrganisationId"),
    "Persons": ("Person", "PersonId"),
    "Users": ("User", "UserId"),
    "Deliveries": ("Delivery", "DeliveryId"),
    "QuotationLines": ("QuotationLine", "QuotationLineId"),
    "QuotationLines/LinkedData": ("LinkedData", "QuotationLineLinkedDataItemId"),
}
DTO_PREFIX = {"QuotationLines/LinkedData": "QuotationLineLinkedDataItem"}
PATCHABLE = ("Organisations", "Persons", "Deliveries", "Users")
PAGE = 1000  # rows of one /Queries page (the Swagger maximum): ids further apart are read separately

WEBCRM_READS = frozenset({"get", "query", "iter_all", "active_users", "delivery_lines", "linked_setup",
                          "fields_metadata", "auth_info", "hooks", "find_organisations_by_update_dates"})
UNICONTA_READS = frozenset({"find", "get_one", "odata"})
ITERATORS = frozenset({"query", "iter_all", "find_organisations_by_update_dates", "odata"})

_EQ_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+eq\s+('(?:[^']|'')*'|-?\d+)\s*$")
_INDEX = re.compile(r"\[(\d+)\]")
# What the flows ask webCRM one record at a time: every row whose column equals a (quoted) value.
_EQ_QUERY = re.compile(r"^\s*SELECT \* FROM ([A-Za-z]+) WHERE ([A-Za-z][A-Za-z0-9]*) = '((?:[^']|'')*)'\s*$")

RETRIES = 3
RETRY_WAIT_CAP = 10.0


@dataclass(frozen=True)
class Settings:
    """How big the shared calls may be (from the connection's configuration)."""

    or_filter_size: int = 40
    page_size: int = 1000  # Uniconta OData rows per page
    insert_list_size: int = 200
    bulk_write_size: int = 200
    bulk_writes: bool = True


Expect = Callable[[str, str, list[dict[str, Any]]], None]


class Executor:
    """Answers the requests of a round; `expect(system, entity, records)` is told about every write
    just before it is sent (and again with the stored records after an insert), so the batch can
    get ready for the webhooks those writes will cause."""

    def __init__(self, webcrm: WebcrmClient, uniconta: UnicontaClient, settings: Settings,
                 expect: Expect | None = None, table_rows: TableRows | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.webcrm = webcrm
        self.uniconta = uniconta
        self.settings = settings
        self.expect = expect or (lambda system, entity, records: None)
        self.table_rows = table_rows or TableRows()
        self.sleep = sleep
        self.no_query: set[str] = set()
        self.snapshots: dict[str, Snapshot] = {}  # Uniconta tables read whole in this batch
        # Uniconta lookups answered in this batch, by table: (property, value) → rows. A record asking
        # again (or another record asking the same) gets the same rows until the batch writes the table.
        self.answers: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
        self.round = 0

    # ------------------------------------------------------------------------- the round

    def __call__(self, requests: list[Request]) -> None:
        self.round += 1
        groups: dict[tuple[Any, ...], list[Request]] = {}
        for request in requests:
            groups.setdefault(self._key(request), []).append(request)
        for key, members in groups.items():
            with journal.shared_by(r.record for r in members):
                try:
                    self._serve(key, members)
                except Exception as err:
                    for request in members:
                        if not request.answered:
                            request.fail(err)

    def _key(self, request: Request) -> tuple[Any, ...]:
        name, args, kwargs = request.method, request.args, request.kwargs
        if request.client == "webcrm" and name == "get" and len(args) == 2 and not kwargs:
            return ("webcrm-get", args[0])
        if request.client == "webcrm" and name == "update" and len(args) == 3 and not kwargs:
            return ("webcrm-update", args[0])
        if request.client == "webcrm" and name == "query" and len(args) == 1 and not kwargs:
            where = _EQ_QUERY.match(str(args[0]))
            if where:
                return ("webcrm-where", where.group(1), where.group(2))
        if request.client == "uniconta":
            lookup = _lookup(name, args, kwargs)
            if lookup is not None:
                return ("uniconta-find", *lookup[:3])
            if name == "insert" and len(args) == 2 and not kwargs:
                return ("uniconta-insert", args[0])
        reads = WEBCRM_READS if request.client == "webcrm" else UNICONTA_READS
        if name in reads:
            return ("read", request.client, name, repr(args), repr(sorted(kwargs.items())))
        return ("write", id(request))

    def _serve(self, key: tuple[Any, ...], members: list[Request]) -> None:
        kind = key[0]
        if kind == "webcrm-get":
            self._webcrm_get(key[1], members)
        elif kind == "webcrm-where":
            self._webcrm_where(key[1], key[2], members)
        elif kind == "webcrm-update":
            self._webcrm_update(key[1], members)
        elif kind == "uniconta-find":
            self._uniconta_find(key[1], key[2], members)
        elif kind == "uniconta-insert":
            self._uniconta_insert(key[1], members)
        elif kind == "read":
            first = members[0]
            value = self._single(first)
            for request in members:
                request.answer(_copy(value, iterate=first.method in ITERATORS))
        else:
            request = members[0]
            self._announce_write(request)
            request.answer(self._single(request))
            if request.client == "uniconta" and request.method in ("update", "insert", "delete"):
                self.answers.pop(str(request.args[0]), None)
            if request.client == "uniconta" and request.method in ("update", "insert", "delete") \
                    and str(request.args[0]) in self.snapshots:
                self.snapshots[str(request.args[0])].add(dict(request.args[1]), deleted=request.method == "delete")

    # ------------------------------------------------------------------------- plain calls

    def _single(self, request: Request) -> Any:
        client = self.webcrm if request.client == "webcrm" else self.uniconta
        method = getattr(client, request.method)
        if request.method in ITERATORS:
            return self._retrying(lambda: list(method(*request.args, **request.kwargs)))
        return self._retrying(lambda: method(*request.args, **request.kwargs))

    def _retrying(self, call: Callable[[], Any]) -> Any:
        """A shared call is worth a short wait: its failure would fail every record that asked."""
        for attempt in range(RETRIES):
            try:
                return call()
            except Transient as err:
                if attempt == RETRIES - 1 or (isinstance(err, Throttled) and err.system == "uniconta"):
                    raise  # the daily budget does not come back in seconds
                wait = min(err.retry_after if err.retry_after is not None else 0.5 * 2 ** attempt, RETRY_WAIT_CAP)
                log.info("shared call failed (%s); again in %.1f s", err, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")

    def _announce_write(self, request: Request) -> None:
        name, args = request.method, request.args
        if request.client == "webcrm" and name in ("update", "create") and args:
            dto = args[-1] if isinstance(args[-1], dict) else {}
            record = {**dto, "_id": args[1]} if name == "update" and len(args) == 3 else dict(dto)
            self.expect("webcrm", str(args[0]), [record])
        elif request.client == "uniconta" and name in ("update", "insert") and len(args) == 2:
            self.expect("uniconta", str(args[0]), [dict(args[1])])

    # ------------------------------------------------------------------------- webCRM

    def _webcrm_get(self, entity: str, members: list[Request]) -> None:
        wanted: dict[int, list[Request]] = {}
        for request in members:
            wanted.setdefault(int(request.args[1]), []).append(request)
        table = QUERY_TABLES.get(entity)
        for cluster in _clusters(sorted(wanted), PAGE):
            if table is None or entity in self.no_query or len(cluster) == 1:
                for record_id in cluster:
                    self._answer_each(wanted[record_id], partial(self.webcrm.get, entity, record_id))
                continue
            name, column = table
            script = (f"SELECT * FROM {name} WHERE {column} >= {sql_literal(cluster[0])} "  # noqa: S608 - literals
                      f"AND {column} <= {sql_literal(cluster[-1])} ORDER BY {column}")
            try:
                rows = self._retrying(partial(_rows, self.webcrm.query, script, page_size=PAGE))
            except Permanent as err:
                log.info("webcrm page read of %s refused (%s): single GETs for this batch", entity, err)
                self.no_query.add(entity)
                for record_id in cluster:
                    self._answer_each(wanted[record_id], partial(self.webcrm.get, entity, record_id))
                continue
            if any(column not in row for row in rows):
                log.info("webcrm page of %s has rows without %s: single GETs for this batch", entity, column)
                self.no_query.add(entity)
                for record_id in cluster:
                    self._answer_each(wanted[record_id], partial(self.webcrm.get, entity, record_id))
                continue
            prefix = DTO_PREFIX.get(entity, "")
            found = {_int(row.get(column)): {k: v for k, v in row.items() if k.startswith(prefix)} for row in rows}
            for record_id in cluster:
                row = found.get(record_id)
                for request in wanted[record_id]:
                    if row is None:
                        request.fail(NotFound("not found", system="webcrm", method="GET", path=f"/{entity}/{record_id}",
                                              status=404))
                    else:
                        request.answer(copy.deepcopy(row))

    def _webcrm_where(self, table: str, column: str, members: list[Request]) -> None:
        """`SELECT * FROM T WHERE C = 'v'` for many values: one range query per run of values (numbers no
        further apart than a page; text all in one), each record answered with the rows of its value."""
        wanted: dict[str, list[Request]] = {}
        for request in members:
            value = _EQ_QUERY.match(str(request.args[0])).group(3).replace("''", "'")  # type: ignore[union-attr]
            wanted.setdefault(value.casefold(), []).append(request)  # webCRM compares text case-blind
        values = list(wanted)

        def alone(requests: list[Request]) -> None:  # the records' own query, shared by those asking it
            self._answer_each(requests, partial(_rows, self.webcrm.query, requests[0].args[0]))

        # Numbers: a range per run of close values. Text: the whole table (a text range would depend on
        # webCRM's collation, and a row it left out would look like a record that does not exist).
        numeric = all(_int(v) >= 0 and str(_int(v)) == v for v in values)
        runs: list[list[Any]] = _clusters(sorted(_int(v) for v in values), PAGE) if numeric else [sorted(values)]
        for run in runs:
            members_of = [r for v in run for r in wanted[str(v)]]
            if len(run) == 1:
                alone(members_of)
                continue
            script = (f"SELECT * FROM {table} WHERE {column} >= {sql_literal(run[0])} "  # noqa: S608 - literals
                      f"AND {column} <= {sql_literal(run[-1])}") if numeric else f"SELECT * FROM {table}"  # noqa: S608
            try:
                rows = self._retrying(partial(_rows, self.webcrm.query, script, page_size=PAGE))
            except Permanent as err:
                log.info("webcrm range query on %s.%s refused (%s): one query per value", table, column, err)
                for value in run:
                    alone(wanted[str(value)])
                continue
            by_value: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                key = str(row.get(column) if row.get(column) is not None else "").strip().casefold()
                by_value.setdefault(str(_int(key)) if numeric and _int(key) >= 0 else key, []).append(row)
            for value in run:
                for request in wanted[str(value)]:
                    request.answer(iter(copy.deepcopy(by_value.get(str(value), []))))

    def _webcrm_update(self, entity: str, members: list[Request]) -> None:
        size = self.settings.bulk_write_size
        patch = getattr(self.webcrm, "patch", None)
        if len(members) == 1 or not self.settings.bulk_writes or entity not in PATCHABLE or patch is None:
            for request in members:
                self._announce_write(request)
                self._answer_each([request], partial(self.webcrm.update, *request.args))
            return
        for start in range(0, len(members), size):
            chunk = members[start:start + size]
            dtos = [dict(request.args[2]) for request in chunk]
            self.expect("webcrm", entity, [{**dto, "_id": request.args[1]} for dto, request in zip(dtos, chunk,
                                                                                                    strict=True)])
            outcomes = self._retrying(partial(patch, entity, dtos))
            for request, outcome in zip(chunk, outcomes, strict=True):
                status = getattr(outcome, "status", "unknown")
                if status == "ok":
                    request.answer(None)
                else:
                    # Refused, or the answer did not say: the same full DTO once more, on its own, so the
                    # record gets the single path's answer (a record deleted meanwhile is a 404, NotFound,
                    # which its flow handles; a refused value a 400) instead of one the batch made up.
                    self._answer_each([request], partial(self.webcrm.update, *request.args))

    # ------------------------------------------------------------------------- Uniconta

    def _uniconta_find(self, entity: str, prop: str, members: list[Request]) -> None:
        wanted: dict[str, list[Request]] = {}
        samples: dict[str, Any] = {}
        for request in members:
            value = _lookup(request.method, request.args, request.kwargs)[3]  # type: ignore[index]
            wanted.setdefault(_norm(value), []).append(request)
            samples.setdefault(_norm(value), value)
        known = self.answers.setdefault(entity, {})
        for value in list(wanted):
            if (prop, value) in known:  # asked before in this batch, and the batch has not written the table since
                self._answer_lookup(entity, prop, known[(prop, value)], wanted.pop(value))
        snapshot = self.snapshots.get(entity)
        if snapshot is not None:
            for value in list(wanted):
                rows = snapshot.lookup(prop, value)
                # "None has it" stays true while the batch holds the records' locks (every job that could
                # create such a row needs one of them); a row it has must be read again unless it was just read.
                if not rows or snapshot.round == self.round:
                    self._answer_lookup(entity, prop, rows, wanted.pop(value))
        if not wanted:
            return
        values = list(wanted)
        if self._whole_table_is_cheaper(entity, len(values)):
            snapshot = self._read_table(entity)
            for value in values:
                self._answer_lookup(entity, prop, snapshot.lookup(prop, value), wanted[value])
            return
        if len(values) == 1:
            self._find_one(entity, prop, samples[values[0]], wanted[values[0]])
            return
        for flt, chunk in self._filters(prop, values, samples):
            try:
                rows = self._retrying(partial(_rows, self.uniconta.odata, entity, filter=flt))
            except Permanent as err:
                log.info("uniconta OR read of %s.%s refused (%s): one read per value", entity, prop, err)
                for value in chunk:
                    self._find_one(entity, prop, samples[value], wanted[value])
                continue
            by_value: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                by_value.setdefault(_norm(row.get(prop)), []).append(row)
            for value in chunk:
                self._answer_lookup(entity, prop, by_value.get(value, []), wanted[value])

    def _filters(self, prop: str, values: list[str], samples: dict[str, Any]) -> Iterable[tuple[str, list[str]]]:
        """OData filters that cover `values`: `P eq a or P eq b ...` per `or_filter_size` values, or, for
        RowIds close together (an InsertList's rows), one `RowId ge a and RowId le b` per page."""
        if prop == "RowId" and all(isinstance(samples[v], int) for v in values):
            numbers = sorted(int(samples[v]) for v in values)
            loose: list[str] = []
            for run in _clusters(numbers, self.settings.page_size):
                if len(run) < 3:
                    loose += [str(n) for n in run]
                else:
                    yield f"RowId ge {run[0]} and RowId le {run[-1]}", [str(n) for n in run]
            values = loose
        size = max(1, self.settings.or_filter_size)
        for start in range(0, len(values), size):
            chunk = values[start:start + size]
            yield " or ".join(f"{prop} eq {odata_literal(samples[v])}" for v in chunk), chunk

    def _whole_table_is_cheaper(self, entity: str, values: int) -> bool:
        """One read of every row (a page per `page_size`) against one OR read per `or_filter_size` values;
        a table never read in this connection is read whole once that saves three calls or more."""
        by_or = -(-values // max(1, self.settings.or_filter_size))
        rows = self.table_rows(entity)
        if rows is None:
            return by_or >= 3
        return -(-max(rows, 1) // self.settings.page_size) < by_or

    def _read_table(self, entity: str) -> Snapshot:
        rows = self._retrying(partial(_rows, self.uniconta.odata, entity))
        snapshot = self.snapshots[entity] = Snapshot(rows, self.round)
        self.table_rows.record(entity, len(rows))
        return snapshot

    def _find_one(self, entity: str, prop: str, value: Any, members: list[Request]) -> None:
        """One value: the call a single job would make (the OData read it asked for, else the REST
        finder), shared by everyone asking for that value."""
        odata = next((r for r in members if r.method == "odata"), None)
        try:
            if odata is not None:
                rows = self._retrying(lambda: list(self.uniconta.odata(*odata.args, **odata.kwargs)))
            else:
                rows = self._retrying(lambda: self.uniconta.find(entity, prop, value))
        except Exception as err:
            for request in members:
                request.fail(err)
            return
        self._answer_lookup(entity, prop, rows, members)

    def _answer_lookup(self, entity: str, prop: str, rows: list[dict[str, Any]], members: list[Request]) -> None:
        if members:
            value = _norm(_lookup(members[0].method, members[0].args, members[0].kwargs)[3])  # type: ignore[index]
            self.answers.setdefault(entity, {})[(prop, value)] = rows
        for request in members:
            if request.method == "get_one":
                if len(rows) > 1:
                    request.fail(AmbiguousMatch(f"{len(rows)} records match {prop}", system="uniconta", method="GET",
                                                path=f"/api/Entities/{entity}", field=prop))
                else:
                    request.answer(copy.deepcopy(rows[0]) if rows else None)
            elif request.method == "odata":
                request.answer(iter(copy.deepcopy(rows)))
            else:
                request.answer(copy.deepcopy(rows))

    def _uniconta_insert(self, entity: str, members: list[Request]) -> None:
        size = max(1, self.settings.insert_list_size)
        for start in range(0, len(members), size):
            self._insert_chunk(entity, members[start:start + size])

    def _insert_chunk(self, entity: str, chunk: list[Request]) -> None:
        records = [dict(request.args[1]) for request in chunk]
        self.expect("uniconta", entity, records)
        if len(chunk) == 1:
            self._answer_each(chunk, lambda: self.uniconta.insert(entity, records[0]))
            self._expect_stored(entity, chunk)
            return
        try:
            stored = self._retrying(lambda: self.uniconta.insert_list(entity, records))
        except Permanent as err:
            # An InsertList is one transaction: the whole chunk was refused. Fail the record the answer
            # names and send the rest again; if it names none, every record goes on its own.
            match = _INDEX.search(str(err.message or err.body or ""))
            index = int(match.group(1)) if match else None
            if index is None or not 0 <= index < len(chunk):
                for request in chunk:
                    self._answer_each([request], partial(self.uniconta.insert, entity, dict(request.args[1])))
                self._expect_stored(entity, chunk)
                return
            chunk[index].fail(err)
            rest = chunk[:index] + chunk[index + 1:]
            if rest:
                self._insert_chunk(entity, rest)
            return
        if isinstance(stored, list) and len(stored) == len(chunk):
            for request, row in zip(chunk, stored, strict=True):
                request.answer(row)
        else:  # no body: each record's flow looks its insert up, as after a lost answer
            for request in chunk:
                request.answer(None)
        self._expect_stored(entity, chunk)

    def _expect_stored(self, entity: str, chunk: list[Request]) -> None:
        self.answers.pop(entity, None)
        stored = [request._value for request in chunk if isinstance(request._value, dict)]
        if stored:
            self.expect("uniconta", entity, stored)
        snapshot = self.snapshots.get(entity)
        if snapshot is not None:  # what the batch added is in the table now (and must be read again if asked)
            for request in chunk:
                snapshot.add(request._value if isinstance(request._value, dict) else dict(request.args[1]))

    # ------------------------------------------------------------------------- helpers

    def _answer_each(self, members: Iterable[Request], call: Callable[[], Any]) -> None:
        members = list(members)
        try:
            value = self._retrying(call)
        except Exception as err:
            for request in members:
                request.fail(err)
            return
        for request in members:
            request.answer(copy.deepcopy(value))


class Snapshot:
    """Every row of a Uniconta table as read in one round, with what the batch wrote since."""

    def __init__(self, rows: list[dict[str, Any]], round_: int) -> None:
        self.rows = list(rows)
        self.round = round_
        self._index: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def lookup(self, prop: str, value: str) -> list[dict[str, Any]]:
        index = self._index.get(prop)
        if index is None:
            index = self._index[prop] = {}
            for row in self.rows:
                index.setdefault(_norm(row.get(prop)), []).append(row)
        return index.get(value, [])

    def add(self, row: dict[str, Any], *, deleted: bool = False) -> None:
        """A row the batch inserted, changed or deleted: the lookups must see it (and read it again)."""
        rowid = row.get("RowId")
        if rowid is not None:
            self.rows = [r for r in self.rows if r.get("RowId") != rowid]
        if not deleted:
            self.rows.append(row)
        self._index.clear()


class TableRows:
    """How many rows a Uniconta table had when last read whole (decides table read vs OR reads)."""

    def __init__(self) -> None:
        self._rows: dict[str, int] = {}

    def __call__(self, entity: str) -> int | None:
        return self._rows.get(entity)

    def record(self, entity: str, rows: int) -> None:
        self._rows[entity] = rows


def _lookup(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str, str, Any] | None:
    """(entity, property, literal kind, value) of a Uniconta equality lookup, or None."""
    if name in ("find", "get_one") and len(args) == 3 and not kwargs:
        entity, prop, value = args
        if prop == "RowId" and isinstance(value, str) and value.strip().isdigit():
            value = int(value)  # RowId is a number: an OData filter needs a number literal
        return str(entity), str(prop), _kind(value), value
    if name == "odata" and len(args) == 1 and set(kwargs) <= {"filter"} and isinstance(kwargs.get("filter"), str):
        match = _EQ_FILTER.match(kwargs["filter"])
        if match:
            literal = match.group(2)
            parsed: Any = literal[1:-1].replace("''", "'") if literal.startswith("'") else int(literal)
            return str(args[0]), match.group(1), _kind(parsed), parsed
    return None


def _kind(value: Any) -> str:
    return "number" if isinstance(value, int) and not isinstance(value, bool) else "text"


def _norm(value: Any) -> str:
    """A key value as compared across answers: "145", 145 and 145.0 are the same record."""
    text = "" if value is None else str(value).strip()
    if text.endswith(".0") and text[:-2].lstrip("-").isdigit():
        text = text[:-2]
    return text


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _clusters(ids: list[int], span: int) -> list[list[int]]:
    """Sorted ids cut into runs no wider than `span` (each run is one page read)."""
    out: list[list[int]] = []
    for record_id in ids:
        if out and record_id - out[-1][0] < span:
            out[-1].append(record_id)
        else:
            out.append([record_id])
    return out


def _rows(read: Callable[..., Iterable[dict[str, Any]]], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """All rows of a paged read (a shared answer must not be an iterator half of its askers used up)."""
    return list(read(*args, **kwargs))


def _copy(value: Any, *, iterate: bool) -> Any:
    value = copy.deepcopy(value)
    return iter(value) if iterate else value


__all__ = ["ApiError", "Executor", "Settings"]
