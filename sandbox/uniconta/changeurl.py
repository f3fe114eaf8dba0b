"""Change URL ("Ændrings-URL", entity TableChangeEvent): outgoing calls on master-data changes.

Reference §3: rows give a TableId and a Url; on a change Uniconta calls the Url with CompanyId, Table,
Key, RowId and the operation, plus the row's Argument; with UsePost it POSTs the changed record as JSON.
Unconfirmed and our choice: the operation parameter is `Action=add|update|delete` (what both public
receivers read; switch to the documented `Operation=Insert|Update|Delete` via quirks), TableId 0 means
every watched table, deletes carry Key and the last state as body, a failed call (connection error or
HTTP >= 400) sets HasError/ErrorMessage on the row and a later success clears them, no retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

from sandbox.common.hooks import WebhookDispatcher
from sandbox.uniconta.entities import TABLE_CHANGE_EVENT, Table, now_iso
from sandbox.uniconta.quirks import Quirks
from sandbox.uniconta.records import Change, Company


@dataclass
class _Call:
    row_id: int
    method: str
    url: str
    body: Any


class ChangeUrl:
    def __init__(self, company: Company, hooks: WebhookDispatcher, quirks: Quirks) -> None:
        self.company = company
        self.hooks = hooks
        self.quirks = quirks

    def plan(self, changes: list[Change], *, omit_nulls: bool) -> list[_Call]:
        """Under the store lock: the calls the changes cause; stamps LastEvent on the rows."""
        calls: list[_Call] = []
        watched = [c for c in changes if c.table.table_id is not None]
        if not watched:
            return calls
        rows = self.company.all(TABLE_CHANGE_EVENT)
        if not rows:
            return calls
        quirks = self.quirks.get()
        param = quirks["webhook_action_param"]
        for change in watched:
            for row in rows:
                if row.get("TableId") not in (change.table.table_id, 0) or not row.get("Url"):
                    continue
                calls.append(self._call(row, change, param, omit_nulls))
                row["LastEvent"] = now_iso()
        if calls:
            self.company.store.mark_dirty()
        return calls

    def _call(self, row: dict, change: Change, param: str, omit_nulls: bool) -> _Call:
        table: Table = change.table
        rec = change.record
        query = urlencode([("CompanyId", self.company.company_id), ("Table", table.name),
                           ("Key", rec.get("KeyStr") or ""), ("RowId", rec["RowId"]),
                           (param, self.quirks.action_value(change.action))])
        argument = (row.get("Argument") or "").lstrip("?&")
        if argument:
            query += "&" + argument
        url = row["Url"]
        url += ("&" if "?" in url else "?") + query
        body = None
        method = "GET"
        if row.get("UsePost"):
            method = "POST"
            body = self.company.output(table, rec, user=table.user_fields, omit_nulls=omit_nulls)
        return _Call(row["RowId"], method, url, body)

    def send(self, calls: list[_Call]) -> None:
        """Outside the lock: hand the calls to the dispatcher."""
        for call in calls:
            self.hooks.submit(call.method, call.url, json=call.body, on_result=partial(self._result, call.row_id))

    def _result(self, row_id: int, delivery: dict) -> None:
        if delivery.get("dropped"):
            return  # never left the building: Uniconta would not know either
        error = delivery.get("error")
        status = delivery.get("status")
        if error is None and isinstance(status, int) and status >= 400:
            error = f"HTTP {status}"
        store = self.company.store
        with store.lock:
            row = self.company.by_rowid(TABLE_CHANGE_EVENT, row_id)
            if row is None:
                return
            row["HasError"] = error is not None
            row["ErrorMessage"] = error
        store.mark_dirty()
