"""Tiny in-memory stand-ins for the API clients, for reconciliation and backfill unit tests.

They understand just the reads those modules make: webCRM `/Queries` with `WHERE a op 'x' [AND ...]`
and `ORDER BY`, Uniconta OData `$filter` with `and`-joined `ge`/`gt` and `$orderby`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import redis

from sync.clients.errors import Permanent, Throttled, Transient
from sync.clients.webcrm import parse_time
from sync.config import Connection, demo_connections
from sync.runtime import ConnectionContext

_COND = re.compile(r"(\w+)\s*(>=|>|<>|=)\s*'([^']*)'")
_ODATA = re.compile(r"(\w+) (ge|gt) (?:datetime'([^']*)'|(\d+))")


def _value(v: Any) -> Any:
    if isinstance(v, int | float):
        return v
    parsed = parse_time(v) if isinstance(v, str) and "T" in v else None
    return parsed if parsed is not None else v


def _cmp(left: Any, op: str, right: Any) -> bool:
    a, b = _value(left), _value(right)
    if isinstance(a, int) and isinstance(b, str) and b.isdigit():
        b = int(b)
    if op == "=":
        return a == b
    if op == "<>":
        return a != b
    if a is None:
        return False
    return a >= b if op in (">=", "ge") else a > b


class FakeWebcrm:
    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.scripts: list[str] = []
        self.fail_after: int | None = None  # raise Transient on the n-th call

    def _call(self) -> None:
        self.scripts.append("call")
        if self.fail_after is not None and len(self.scripts) > self.fail_after:
            raise Transient("webCRM down", system="webcrm", status=503)

    def query(self, script: str, *, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        self._call()
        table = re.search(r"FROM (\w+)", script).group(1)  # type: ignore[union-attr]
        rows = list(self.tables.get(table, []))
        where = script.split(" WHERE ", 1)[1].split(" ORDER BY")[0] if " WHERE " in script else ""
        for field, op, literal in _COND.findall(where):
            rows = [r for r in rows if _cmp(r.get(field), op, literal)]
        order = re.search(r"ORDER BY (\w+)", script)
        if order:
            rows.sort(key=lambda r: _value(r.get(order.group(1))))
        yield from (dict(r) for r in rows)

    def iter_all(self, entity: str, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        self._call()
        yield from []


class FakeUniconta:
    def __init__(self, before: Callable[[], Any] | None = None) -> None:
        self.entities: dict[str, list[dict[str, Any]]] = {}
        self.calls = 0
        self.before = before
        self.no_updated: set[str] = set()

    def _before(self) -> None:
        if self.before is not None:
            try:
                self.before()
            except Throttled as err:  # as HttpClient._send does
                err.system = "uniconta"
                raise

    def find(self, entity: str, prop: str, value: str | int) -> list[dict[str, Any]]:
        self.calls += 1
        self._before()
        return [dict(r) for r in self.entities.get(entity, []) if str(r.get(prop)) == str(value)]

    def odata(self, entity: str, *, filter: str | None = None, orderby: str | None = None,
              top: int | None = None) -> Iterator[dict[str, Any]]:
        self.calls += 1
        self._before()
        if filter and "UpdatedAt" in filter and entity in self.no_updated:
            raise Permanent("Could not find property UpdatedAt", system="uniconta", status=400)
        rows = list(self.entities.get(entity, []))
        for field, op, when, number in _ODATA.findall(filter or ""):
            rows = [r for r in rows if _cmp(r.get(field), op, int(number) if number else when + "Z")]
        if orderby:
            rows.sort(key=lambda r: _value(r.get(orderby)))
        yield from (dict(r) for r in rows)


def connection(budget: tuple[int, int] | None = None, **changes: Any) -> Connection:
    """The demo connection as `c1`; `budget` = (daily_call_budget, live_reserve)."""
    conn = demo_connections({})["demo"]
    if budget is not None:
        changes["uniconta"] = replace(conn.uniconta, daily_call_budget=budget[0], live_reserve=budget[1])
    return replace(conn, id="c1", **changes)


def context(r: redis.Redis, budget: tuple[int, int] | None = None,
            **changes: Any) -> tuple[ConnectionContext, FakeWebcrm, FakeUniconta]:
    """A context with fake clients; with `budget`, Uniconta calls count against the real DailyBudget."""
    webcrm, uniconta = FakeWebcrm(), FakeUniconta()
    ctx = ConnectionContext(connection(budget, **changes), r, webcrm, uniconta)  # type: ignore[arg-type]
    if budget is not None:
        from sync.reconcile import budget_of

        uniconta.before = budget_of(ctx).acquire
    return ctx, webcrm, uniconta


def stamp(moment: datetime) -> str:
    return moment.isoformat()
