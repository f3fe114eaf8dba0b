"""The company's data: CRUD with Uniconta's rules, kept in the shared Store, with in-memory indexes.

Every table is stored as `RowId (str) -> record` (the record in its JSON form; user-defined field values
under `_user`). Natural keys and the references the rules need are indexed in memory; the indexes are
rebuilt whenever the store was reset or restored behind our back (a token in `store.meta` that changes
with every write tells us, see `ensure()`).

Callers hold `store.lock` around every call (the app does it per request).
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sandbox.common.store import Store
from sandbox.uniconta import orders
from sandbox.uniconta.entities import (
    CONTACT,
    DEBTOR,
    DEBTOR_INVOICE,
    DEBTOR_ORDER,
    DEBTOR_ORDER_LINE,
    INV_ITEM,
    TABLE_CHANGE_EVENT,
    TABLES,
    USER_FIELD_TABLES,
    Prop,
    Table,
    blank_record,
    coerce,
    now_iso,
    parse_datetime,
    user_field_prop,
)
from sandbox.uniconta.errors import UnicontaError, bad_request, not_found

USER = "_user"                         # record key holding the user-defined field values
TOKEN_KEY = "uniconta.index_token"  # noqa: S105 - a meta key, not a secret
USER_FIELDS_KEY = "uniconta.userfields"
# (table, property) pairs indexed value -> set of RowIds, for the reference rules
INDEXED: dict[str, tuple[str, ...]] = {
    "DebtorOrder": ("Account",),
    "Contact": ("DCAccount",),
    "DebtorInvoice": ("Account",),
    "DebtorOrderLine": ("Item", "OrderNumber"),
}


@dataclass
class Change:
    """One insert/update/delete, for the Change-URL notifier (after the lock is released)."""

    table: Table
    action: str          # add | update | delete
    record: dict         # the stored record after the change (before it, for delete); a copy


class Company:
    """One Uniconta company's tables."""

    def __init__(self, store: Store, company_id: int) -> None:
        self.store = store
        self.company_id = company_id
        self._nonce = uuid.uuid4().hex[:12]
        self._counter = itertools.count(1)
        self._token: str | None = None
        self._keys: dict[str, dict[str, int]] = {}
        self._refs: dict[tuple[str, str], dict[Any, set[int]]] = {}

    # -- indexes --------------------------------------------------------------------------------
    def ensure(self) -> None:
        """Rebuild the indexes when the store changed without us (reset, restore, a loaded file)."""
        if self._token is None or self.store.meta.get(TOKEN_KEY) != self._token:
            self._rebuild()

    def _touch(self) -> None:
        """Note a write; the indexes stay valid only if they were valid before it."""
        if self._token is not None and self.store.meta.get(TOKEN_KEY) == self._token:
            self._new_token()
        self.store.mark_dirty()

    def _new_token(self) -> None:
        self._token = f"{self._nonce}:{next(self._counter)}"
        self.store.meta[TOKEN_KEY] = self._token

    def _rebuild(self) -> None:
        self._keys = {t.name: {} for t in TABLES if t.key}
        self._refs = {(t, p): defaultdict(set) for t, props in INDEXED.items() for p in props}
        for table in TABLES:
            rows = self.store.table(table.name)
            for key, rec in list(rows.items()):
                _normalise(table, key, rec)
                if key != str(rec["RowId"]) or rec["RowId"] <= 0:  # a hand-written state: file it properly
                    del rows[key]
                    if rec["RowId"] <= 0 or str(rec["RowId"]) in rows:
                        rec["RowId"] = self._next_rowid(table)
                        if not table.key:
                            rec["KeyStr"] = str(rec["RowId"])
                    rows[str(rec["RowId"])] = rec
            for rec in rows.values():
                self._index(table, rec)
        self._new_token()
        self.store.mark_dirty()

    def _index(self, table: Table, rec: dict) -> None:
        if table.key:
            self._keys[table.name][str(rec[table.key])] = rec["RowId"]
        for prop in INDEXED.get(table.name, ()):
            self._refs[(table.name, prop)][rec.get(prop)].add(rec["RowId"])

    def _unindex(self, table: Table, rec: dict) -> None:
        if table.key:
            self._keys[table.name].pop(str(rec[table.key]), None)
        for prop in INDEXED.get(table.name, ()):
            ids = self._refs[(table.name, prop)].get(rec.get(prop))
            if ids is not None:
                ids.discard(rec["RowId"])
                if not ids:
                    del self._refs[(table.name, prop)][rec.get(prop)]

    def _referring(self, table: str, prop: str, value: Any) -> list[dict]:
        rows = self.store.table(table)
        return [rows[str(i)] for i in sorted(self._refs[(table, prop)].get(value, ()))]

    # -- lookups ----------------------------------------------------------------------------------
    def rows(self, table: Table) -> dict[str, dict]:
        return self.store.table(table.name)

    def all(self, table: Table) -> list[dict]:
        """Every record of `table`, ordered by RowId."""
        return sorted(self.rows(table).values(), key=lambda r: r["RowId"])

    def by_rowid(self, table: Table, rowid: int) -> dict | None:
        return self.rows(table).get(str(rowid))

    def by_key(self, table: Table, key: Any) -> dict | None:
        assert table.key is not None
        rowid = self._keys[table.name].get(str(key))
        return None if rowid is None else self.rows(table).get(str(rowid))

    def lines_of(self, order_number: int) -> list[dict]:
        lines = self._referring("DebtorOrderLine", "OrderNumber", order_number)
        return sorted(lines, key=lambda r: (r["LineNumber"], r["RowId"]))

    # -- user-defined fields ------------------------------------------------------------------------
    def user_field_defs(self, table: Table) -> list[dict]:
        defs = self.store.meta.get(USER_FIELDS_KEY, {})
        return list(defs.get(table.name, [])) if isinstance(defs, dict) else []

    def user_props(self, table: Table) -> list[Prop]:
        return [user_field_prop(d) for d in self.user_field_defs(table)]

    def set_user_fields(self, table: Table, definitions: list[dict]) -> None:
        if table.name not in USER_FIELD_TABLES:
            raise ValueError(f"table: {table.name} has no user-defined fields "
                             f"(known: {', '.join(USER_FIELD_TABLES)})")
        defs = self.store.meta.setdefault(USER_FIELDS_KEY, {})
        old = {d["Name"]: d["Type"] for d in defs.get(table.name, [])}
        defs[table.name] = definitions
        # a field whose type changed starts again from its default
        changed = {d["Name"] for d in definitions if d["Name"] in old and old[d["Name"]].lower() != d["Type"].lower()}
        if changed:
            for rec in self.rows(table).values():
                for name in changed:
                    rec.get(USER, {}).pop(name, None)
        self._touch()

    # -- output -------------------------------------------------------------------------------------
    def output(self, table: Table, rec: dict, *, user: bool, omit_nulls: bool) -> dict:
        """The JSON of a record as `<entity>` (user=False) or `<entity>User` (user=True)."""
        if omit_nulls:
            out = {p.name: rec.get(p.name) for p in table.all_props if rec.get(p.name) is not None}
        else:
            out = {p.name: rec.get(p.name) for p in table.all_props}
        if user:
            values = rec.get(USER, {})
            for prop in self.user_props(table):
                value = values.get(prop.name, prop.default)
                if value is not None or not omit_nulls:
                    out[prop.name] = value
        return out

    def getter(self, table: Table, name: str, *, user: bool) -> tuple[Prop, Any] | None:
        """(prop, record -> value) for an OData property name (case-sensitive), or None."""
        prop = table.by_name.get(name)
        if prop is not None:
            return prop, lambda rec, n=prop.name: rec.get(n)
        if user:
            for uprop in self.user_props(table):
                if uprop.name == name:
                    return uprop, lambda rec, n=uprop.name, d=uprop.default: rec.get(USER, {}).get(n, d)
        return None

    def find_prop(self, table: Table, name: str, *, user: bool) -> tuple[Prop, Any] | None:
        """Like getter() but case-insensitive (the Entities API's ?Name= filter)."""
        prop = table.prop(name)
        if prop is not None:
            return self.getter(table, prop.name, user=user)
        if user:
            for uprop in self.user_props(table):
                if uprop.name.lower() == name.lower():
                    return self.getter(table, uprop.name, user=True)
        return None

    # -- writes ---------------------------------------------------------------------------------------
    def insert(self, table: Table, body: Any, *, user: bool) -> tuple[dict, list[Change]]:
        self._writable(table)
        body = _object(body)
        rec = blank_record(table)
        self._apply(table, rec, body, user=user, merge=False)
        return self._insert(table, rec)

    def insert_many(self, table: Table, bodies: Any, *, user: bool) -> tuple[list[dict], list[Change]]:
        """All or nothing (an InsertList is one transaction)."""
        self._writable(table)
        if not isinstance(bodies, list):
            raise bad_request("NoSucces", "InsertList expects a JSON array of records")
        done: list[dict] = []
        changes: list[Change] = []
        try:
            for i, body in enumerate(bodies):
                try:
                    rec = blank_record(table)
                    self._apply(table, rec, _object(body), user=user, merge=False)
                    stored, ch = self._insert(table, rec)
                except UnicontaError as exc:
                    exc.message = f"[{i}] {exc.message}"
                    raise
                done.append(stored)
                changes.extend(ch)
        except UnicontaError:
            for stored in reversed(done):
                self._remove(table, stored)
            raise
        return done, changes

    def update(self, table: Table, body: Any, *, user: bool, merge: bool = False) -> tuple[dict, list[Change]]:
        """Full replacement of the writable fields (merge=True: only the given ones, for "UI" edits)."""
        self._writable(table)
        body = _object(body)
        old = self._locate(table, body)
        rec = {**old, USER: dict(old.get(USER, {}))} if merge else self._fresh_from(table, old, user=user)
        self._apply(table, rec, body, user=user, merge=merge, existing=old)
        return self._update(table, old, rec)

    def delete(self, table: Table, body: Any) -> tuple[dict, list[Change]]:
        self._writable(table)
        rec = self._locate(table, _object(body))
        return self._delete(table, rec)

    # -- internals ---------------------------------------------------------------------------------
    @staticmethod
    def _writable(table: Table) -> None:
        if not table.writable:
            raise bad_request("NoRights", f"{table.entity} is read-only through the API "
                                          "(invoices are created by posting an order)")

    def _fresh_from(self, table: Table, old: dict, *, user: bool) -> dict:
        """A full-replacement start: defaults, plus what the server owns and the hidden user fields."""
        rec = blank_record(table)
        for prop in table.all_props:
            if prop.readonly:
                rec[prop.name] = old.get(prop.name)
        rec[USER] = {} if user else dict(old.get(USER, {}))
        return rec

    def _apply(self, table: Table, rec: dict, body: dict, *, user: bool, merge: bool,
               existing: dict | None = None) -> None:
        """Copy the body's writable properties (case-insensitive names; unknown keys ignored)."""
        lowered = {k.lower(): v for k, v in body.items() if isinstance(k, str)}
        for prop in table.props:
            if prop.readonly:
                continue
            if prop.name in body:
                raw = body[prop.name]
            elif prop.name.lower() in lowered:
                raw = lowered[prop.name.lower()]
            else:
                continue
            rec[prop.name] = coerce(prop, raw)
        rec.setdefault(USER, {})
        if user:
            for uprop in self.user_props(table):
                key = uprop.name.lower()
                if key in lowered:
                    rec[USER][uprop.name] = coerce(uprop, lowered[key])
        if existing is not None:
            self._keep_keys(table, rec, existing)

    @staticmethod
    def _keep_keys(table: Table, rec: dict, existing: dict) -> None:
        """Key properties: omitted/empty in an update keeps them; a different value is an error."""
        names = [table.key] if table.key else []
        if table is DEBTOR_ORDER_LINE:
            names = ["OrderNumber", "LineNumber"]
        for name in names:
            value = rec.get(name)
            if value in (None, "", 0):
                rec[name] = existing[name]
            elif value != existing[name]:
                raise bad_request("CouldNotSave", f"{name} is the key of the record and cannot be changed "
                                                  f"through Update ({existing[name]!r} -> {value!r})", name)

    def _locate(self, table: Table, body: dict) -> dict:
        raw_rowid = _get_ci(body, "RowId")
        rowid = coerce(table.by_name["RowId"], raw_rowid) if raw_rowid is not None else 0
        if rowid:
            rec = self.by_rowid(table, rowid)
            if rec is None:
                raise not_found(f"{table.entity} with RowId {rowid} not found", "RowId")
            return rec
        if table.key:
            prop = table.by_name[table.key]
            value = coerce(prop, _get_ci(body, table.key))
            if value not in (None, 0):
                rec = self.by_key(table, value)
                if rec is None:
                    raise not_found(f"{table.entity} with {table.key} {value!r} not found", table.key)
                return rec
            raise bad_request("FieldCannotBeBlank", f"Identify the record by RowId or {table.key}", "RowId")
        if table is DEBTOR_ORDER_LINE:
            order = coerce(table.by_name["OrderNumber"], _get_ci(body, "OrderNumber"))
            line = coerce(table.by_name["LineNumber"], _get_ci(body, "LineNumber"))
            if order and line:
                for rec in self._referring("DebtorOrderLine", "OrderNumber", order):
                    if rec["LineNumber"] == line:
                        return rec
                raise not_found(f"{table.entity} with OrderNumber {order} and LineNumber {line} not found",
                                "LineNumber")
            raise bad_request("FieldCannotBeBlank", "Identify the line by RowId or OrderNumber + LineNumber",
                              "RowId")
        raise bad_request("FieldCannotBeBlank", f"Identify the {table.entity} by RowId", "RowId")

    def _validate(self, table: Table, rec: dict) -> None:
        for prop in table.props:
            if prop.required and rec.get(prop.name) in (None, ""):
                raise bad_request("FieldCannotBeBlank", f"{prop.name} cannot be blank", prop.name)
        if table is DEBTOR_ORDER:
            account = rec.get("Account")
            if not account or self.by_key(DEBTOR, account) is None:
                raise bad_request("AccountIsMissing", f"Debtor account {account!r} does not exist"
                                  if account else "The order has no debtor Account", "Account")
        elif table is DEBTOR_ORDER_LINE:
            order_no = rec.get("OrderNumber")
            if not order_no:
                raise bad_request("FieldCannotBeBlank", "OrderNumber cannot be blank", "OrderNumber")
            if self.by_key(DEBTOR_ORDER, order_no) is None:
                raise bad_request("CouldNotFind", f"Order {order_no} not found", "OrderNumber")
            item_no = rec.get("Item")
            if item_no is not None:
                item = self.by_key(INV_ITEM, item_no)
                if item is None:
                    raise bad_request("CouldNotFind", f"Item {item_no!r} not found", "Item")
                if not rec.get("CostPrice"):  # assumption: a line without a cost takes the item's
                    rec["CostPrice"] = item.get("CostPrice") or 0.0
        elif table is CONTACT:
            if rec.get("DCType") not in (1, 2, 3):
                raise bad_request("CouldNotSave", "DCType must be 1 (debtor), 2 (creditor) or 3 (prospect)",
                                  "DCType")
            if rec["DCType"] == 1:
                account = rec.get("DCAccount")
                if not account:
                    raise bad_request("FieldCannotBeBlank", "DCAccount cannot be blank", "DCAccount")
                if self.by_key(DEBTOR, account) is None:
                    raise bad_request("AccountIsMissing", f"Debtor account {account!r} does not exist",
                                      "DCAccount")
        elif table is TABLE_CHANGE_EVENT:
            parts = urlsplit(rec["Url"])
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise bad_request("CouldNotSave", "Url must be an absolute http(s) URL", "Url")
            if rec.get("TableId", 0) < 0:
                raise bad_request("CouldNotSave", "TableId must be a table's ClassId (>= 0)", "TableId")

    def _next_rowid(self, table: Table) -> int:
        """The table's next RowId; skips ids taken by records restored without their sequence."""
        rows = self.rows(table)
        rowid = self.store.next_id(f"{table.name}.RowId")
        while str(rowid) in rows:
            rowid = self.store.next_id(f"{table.name}.RowId")
        return rowid

    def _key_string(self, table: Table, rec: dict) -> str:
        return str(rec[table.key]) if table.key else str(rec["RowId"])

    def _insert(self, table: Table, rec: dict) -> tuple[dict, list[Change]]:
        self._validate(table, rec)
        if table.key_assigned and not rec.get(table.key):
            number = self.store.next_id(f"{table.name}.{table.key}")
            while self.by_key(table, number) is not None:
                number = self.store.next_id(f"{table.name}.{table.key}")
            rec[table.key] = number
        if table.key and self.by_key(table, rec[table.key]) is not None:
            raise bad_request("RecordExists", f"{table.entity} with {table.key} {rec[table.key]!r} already exists",
                              table.key)
        if table is DEBTOR_ORDER_LINE:
            existing = self.lines_of(rec["OrderNumber"])
            if rec.get("LineNumber"):
                if any(line["LineNumber"] == rec["LineNumber"] for line in existing):
                    raise bad_request("RecordExists", f"Line {rec['LineNumber']} of order {rec['OrderNumber']} "
                                                      "already exists", "LineNumber")
            else:
                rec["LineNumber"] = max((line["LineNumber"] for line in existing), default=0) + 1
        now = now_iso()
        rec["RowId"] = self._next_rowid(table)
        rec["KeyStr"] = self._key_string(table, rec)
        rec["Created"] = now
        rec["UpdatedAt"] = now
        if table is DEBTOR_ORDER:
            rec["CreatedTime"] = now
        self._compute(table, rec)
        self.rows(table)[str(rec["RowId"])] = rec
        self._index(table, rec)
        if table is DEBTOR_ORDER_LINE:
            self._recompute_order(rec["OrderNumber"])
        self._touch()
        return rec, [Change(table, "add", _copy(rec))]

    def _update(self, table: Table, old: dict, rec: dict) -> tuple[dict, list[Change]]:
        self._validate(table, rec)
        self._compute(table, rec)
        if _same(rec, old):
            return old, []  # nothing changed: no new UpdatedAt, no Change-URL call
        rec["UpdatedAt"] = now_iso()
        self._unindex(table, old)
        self.rows(table)[str(rec["RowId"])] = rec
        self._index(table, rec)
        if table is DEBTOR_ORDER_LINE:
            self._recompute_order(rec["OrderNumber"])
        self._touch()
        return rec, [Change(table, "update", _copy(rec))]

    def _delete(self, table: Table, rec: dict) -> tuple[dict, list[Change]]:
        if table is DEBTOR:
            account = rec["Account"]
            referring = [t for t, p in (("DebtorOrder", "Account"), ("DebtorInvoice", "Account"))
                         if self._refs[(t, p)].get(account)]
            if any(c["DCType"] == 1 for c in self._referring("Contact", "DCAccount", account)):
                referring.append("Contact")
            if referring:
                raise bad_request("CouldNotDeleteRecordThatIsReferred",
                                  f"Debtor {account} is referred by {', '.join(referring)} records; "
                                  "block it instead (Blocked = true)", "Account")
        elif table is INV_ITEM:
            if self._refs[("DebtorOrderLine", "Item")].get(rec["Item"]):
                raise bad_request("CouldNotDeleteRecordThatIsReferred",
                                  f"Item {rec['Item']} is used on order lines", "Item")
        elif table is DEBTOR_ORDER:
            for line in self.lines_of(rec["OrderNumber"]):
                self._remove(DEBTOR_ORDER_LINE, line)
        self._remove(table, rec)
        return rec, [Change(table, "delete", _copy(rec))]

    def _remove(self, table: Table, rec: dict) -> None:
        self._unindex(table, rec)
        self.rows(table).pop(str(rec["RowId"]), None)
        if table is DEBTOR_ORDER_LINE:
            self._recompute_order(rec["OrderNumber"])
        self._touch()

    @staticmethod
    def _compute(table: Table, rec: dict) -> None:
        if table is DEBTOR:
            rec["CountryName"] = rec.get("Country")
        elif table is DEBTOR_ORDER_LINE:
            total, margin = orders.line_amounts(rec["Qty"], rec["Price"], rec["DiscountPct"], rec["CostPrice"])
            rec["Total"], rec["Margin"] = float(total), float(margin)
        elif table is DEBTOR_ORDER and rec.get("Total") is None:
            rec["Total"] = rec["Margin"] = rec["MarginRatio"] = 0.0

    def _recompute_order(self, order_number: int) -> None:
        order = self.by_key(DEBTOR_ORDER, order_number)
        if order is None:
            return
        total, margin, ratio = orders.order_amounts(self.lines_of(order_number))
        order["Total"], order["Margin"], order["MarginRatio"] = float(total), float(margin), float(ratio)

    # -- invoicing (admin) --------------------------------------------------------------------------
    def invoice(self, order_number: int) -> dict:
        """Post an order: a DebtorInvoice with its number and lines; the order and its lines go away."""
        order = self.by_key(DEBTOR_ORDER, order_number)
        if order is None:
            raise not_found(f"Order {order_number} not found", "OrderNumber")
        lines = self.lines_of(order_number)
        if not lines:
            raise bad_request("NoLinesFound", f"Order {order_number} has no lines to invoice")
        total, margin, _ = orders.order_amounts(lines)
        now = now_iso()
        rec = blank_record(DEBTOR_INVOICE)
        number = self.store.next_id("DebtorInvoice.InvoiceNumber")
        while self.by_key(DEBTOR_INVOICE, number) is not None:
            number = self.store.next_id("DebtorInvoice.InvoiceNumber")
        rec.update({
            "InvoiceNumber": number, "OrderNumber": order_number, "Account": order["Account"],
            "Name": order.get("Name") or (self.by_key(DEBTOR, order["Account"]) or {}).get("Name"),
            "Date": now[:10] + "T00:00:00", "Currency": order.get("Currency"), "YourRef": order.get("YourRef"),
            "OurRef": order.get("OurRef"), "Requisition": order.get("Requisition"),
            "Employee": order.get("Employee"), "NetAmount": float(total), "Margin": float(margin),
        })
        rec["RowId"] = self._next_rowid(DEBTOR_INVOICE)
        rec["KeyStr"] = str(number)
        rec["Created"] = rec["UpdatedAt"] = now
        rec["_lines"] = [{k: line.get(k) for k in ("LineNumber", "Item", "Text", "Qty", "Price", "DiscountPct",
                                                   "CostPrice", "Total", "Margin")} for line in lines]
        rec[USER] = {}
        self.rows(DEBTOR_INVOICE)[str(rec["RowId"])] = rec
        self._index(DEBTOR_INVOICE, rec)
        for line in lines:
            self._remove(DEBTOR_ORDER_LINE, line)
        self._remove(DEBTOR_ORDER, order)
        self._touch()
        return rec

    # -- seeding helpers ------------------------------------------------------------------------------
    def next_free_key(self, table: Table, start: int) -> str:
        """The lowest numeric key >= start that is not taken (debtor accounts, employee numbers)."""
        number = start
        while self.by_key(table, str(number)) is not None:
            number += 1
        return str(number)


def _normalise(table: Table, key: str, rec: dict) -> None:
    """Make a restored record safe to serve: every property present with a value of its type.

    State files and `PUT /_sandbox/state` may be hand-written; what cannot be read becomes the default.
    """
    for prop in table.all_props:
        value = rec.get(prop.name)
        if prop.type == "datetime" and prop.readonly:
            if not (isinstance(value, str) and parse_datetime(value)):
                rec[prop.name] = None
            continue
        try:
            rec[prop.name] = coerce(prop, value)
        except UnicontaError:
            rec[prop.name] = prop.default
    if not rec["RowId"]:
        rec["RowId"] = int(key) if key.isdigit() and len(key) < 19 else 0
    if table.key and rec.get(table.key) in (None, "", 0):
        rec[table.key] = rec["RowId"] if table.key_assigned else str(rec["RowId"])
    rec["KeyStr"] = str(rec[table.key]) if table.key else str(rec["RowId"])
    if not isinstance(rec.get(USER), dict):
        rec[USER] = {}


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise bad_request("NoSucces", "The body must be a JSON object (one record)")
    return body


def _get_ci(body: dict, name: str) -> Any:
    if name in body:
        return body[name]
    lower = name.lower()
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == lower:
            return value
    return None


def _copy(rec: dict) -> dict:
    return {**rec, USER: dict(rec.get(USER, {}))}


_VOLATILE = {"UpdatedAt"}


def _same(a: dict, b: dict) -> bool:
    keys = (set(a) | set(b)) - _VOLATILE
    return all(a.get(k) == b.get(k) for k in keys)


