"""Uniconta-specific admin routes under /_sandbox (never faulted, never logged, no budget):

  GET        /_sandbox/company               company id, users, entity names, row counts
  GET        /_sandbox/userfields            {Table: [{"Name","Type"}]}
  GET|PUT    /_sandbox/userfields/<Table>    one table's user-defined fields (PUT replaces the list)
  GET|PUT    /_sandbox/quirks                switches for the unconfirmed points (see quirks.py)
  GET|PUT    /_sandbox/budget                calls today per user; set budget, slowdown, calls
  POST       /_sandbox/invoice/<OrderNumber> post the order: DebtorInvoice created, order + lines deleted
  POST|PUT|DELETE /_sandbox/ui/<Entity>      "UI" edits by a person in Uniconta (insert, partial merge,
                                             delete); they fire Change URLs like API writes
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import jsonify

from sandbox.common import json_body
from sandbox.uniconta.entities import (
    BY_TABLE,
    DEBTOR_INVOICE,
    TABLES,
    USER_FIELD_TABLES,
    check_user_fields,
    entity_names,
    find_table,
)
from sandbox.uniconta.errors import not_found

if TYPE_CHECKING:
    from sandbox.uniconta.app import Uniconta


def install_admin(uc: Uniconta) -> None:
    bp = uc.sandbox.admin
    store, company = uc.store, uc.company

    def user_field_table(name: str) -> Any:
        table = find_table(name)
        if table is None or table.name not in USER_FIELD_TABLES:
            raise ValueError(f"table: {name!r} has no user-defined fields (known: {', '.join(USER_FIELD_TABLES)})")
        return table

    @bp.get("/company")
    def company_info() -> Any:
        with store.lock:
            company.ensure()
            counts = {t.name: len(company.rows(t)) for t in TABLES}
        return {"CompanyId": uc.options.company, "users": sorted(uc.accounts.users),
                "entities": entity_names(), "rows": counts}

    @bp.get("/userfields")
    def all_user_fields() -> Any:
        with store.lock:
            return {name: company.user_field_defs(BY_TABLE[name]) for name in USER_FIELD_TABLES}

    @bp.get("/userfields/<name>")
    def get_user_fields(name: str) -> Any:
        table = user_field_table(name)
        with store.lock:
            return jsonify(company.user_field_defs(table))

    @bp.put("/userfields/<name>")
    def put_user_fields(name: str) -> Any:
        table = user_field_table(name)
        definitions = check_user_fields(table, json_body())
        with store.lock:
            company.ensure()
            company.set_user_fields(table, definitions)
            return jsonify(company.user_field_defs(table))

    @bp.get("/quirks")
    def get_quirks() -> Any:
        return uc.quirks.get()

    @bp.put("/quirks")
    def put_quirks() -> Any:
        return uc.quirks.update(json_body())

    @bp.get("/budget")
    def get_budget() -> Any:
        return uc.budget.view()

    @bp.put("/budget")
    def put_budget() -> Any:
        uc.budget.update(json_body(), uc.options.user)
        return uc.budget.view()

    @bp.post("/invoice/<int:order_number>")
    def invoice(order_number: int) -> Any:
        with store.lock:
            company.ensure()
            rec = company.invoice(order_number)
            out = company.output(DEBTOR_INVOICE, rec, user=False, omit_nulls=uc.quirks["omit_nulls"])
            out["Lines"] = [dict(line) for line in rec["_lines"]]
        return out

    def ui_table(entity: str) -> Any:
        table = find_table(entity)
        if table is None:
            raise not_found(f"Table or entity {entity} not found")
        return table

    @bp.post("/ui/<entity>")
    def ui_insert(entity: str) -> Any:
        table, body = ui_table(entity), json_body()
        return uc.write(table, lambda: company.insert(table, body, user=True), user=table.user_fields)

    @bp.put("/ui/<entity>")
    def ui_update(entity: str) -> Any:
        table, body = ui_table(entity), json_body()
        return uc.write(table, lambda: company.update(table, body, user=True, merge=True), user=table.user_fields)

    @bp.delete("/ui/<entity>")
    def ui_delete(entity: str) -> Any:
        table, body = ui_table(entity), json_body()
        return uc.write(table, lambda: company.delete(table, body), user=table.user_fields)
