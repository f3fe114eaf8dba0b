"""The "try this" block `make run` prints: one edit per flow, as a person would make it, and the
command that shows it arrive.

Built from the sandboxes' current state (`GET /_sandbox/state`), not from what was seeded, so every
printed edit changes something even after an earlier run used the block: a value is always set to
something other than what the record holds, and a record that was already turned (a prospect made
a customer, a delivery sent) gives way to the next one or to a plain edit.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from sync.config import Connection

Tables = dict[str, dict[str, dict[str, Any]]]

PHONES = ("+45 20 30 40 51", "+45 20 30 40 52")
TITLES = ("Indkøbschef", "Direktør")


@dataclass(frozen=True)
class Try:
    what: str  # one line: the flow, and what the edit means
    edit: str  # a shell command: the sandbox's UI route, which fires the real webhook
    watch: str  # the `syncctl timeline` command for the edited record


def _rows(tables: Tables, name: str, order: str) -> list[dict[str, Any]]:
    return sorted((tables.get(name) or {}).values(), key=lambda row: row.get(order) or 0)


def _other(current: Any, choices: tuple[str, ...]) -> str:
    return next(c for c in choices if c != current)


def _field(row: dict[str, Any], name: str) -> Any:
    """A native property, or a Uniconta user-defined field (kept under `_user` in the state)."""
    return row.get(name) if name in row else (row.get("_user") or {}).get(name)


def _curl(url: str, body: dict[str, Any]) -> str:
    return f"curl -fsS -o /dev/null -X PUT {url} -d {shlex.quote(json.dumps(body, ensure_ascii=False))}"


class _Builder:
    def __init__(self, conn: Connection, webcrm: Tables, uniconta: Tables, syncctl: str) -> None:
        self.conn, self.webcrm, self.uniconta = conn, webcrm, uniconta
        self.wc_ui = conn.webcrm.base_url.rstrip("/") + "/_sandbox/ui"
        self.uc_ui = conn.uniconta.base_url.rstrip("/") + "/_sandbox/ui"
        self.timeline = f"{syncctl} timeline {conn.id}"

    def organisation(self) -> Try | None:
        cfg = self.conn.organisations
        keywords = {k.strip().lower() for k in cfg.trigger_keywords}
        orgs = _rows(self.webcrm, "Organisations", "OrganisationId")
        for org in orgs:
            value = str(org.get(cfg.trigger_field) or "")
            complete = all(org.get(f"Organisation{f}") for f in ("Name", "Address", "PostCode", "City", "Country"))
            if value.strip().lower() not in keywords and complete:
                return Try(f"organisation → debtor: {org['OrganisationName']} ({value or 'no type'}) becomes a customer",
                           _curl(f"{self.wc_ui}/Organisations/{org['OrganisationId']}",
                                 {cfg.trigger_field: cfg.trigger_keywords[0]}),
                           f"{self.timeline} organisation {org['OrganisationId']}")
        linked = [o for o in orgs if o.get(cfg.debtor_number_field)]
        if not linked:
            return None
        org = linked[0]
        return Try(f"organisation → debtor: customer {org['OrganisationName']} gets a new phone number",
                   _curl(f"{self.wc_ui}/Organisations/{org['OrganisationId']}",
                         {"OrganisationTelephone": _other(org.get("OrganisationTelephone"), PHONES)}),
                   f"{self.timeline} organisation {org['OrganisationId']}")

    def item(self) -> Try | None:
        field = self.conn.items.price_field
        items = [i for i in _rows(self.uniconta, "InvItem", "RowId") if not i.get("Blocked")]
        if not items:
            return None
        item = items[0]
        price = float(item.get(field) or 0)
        new = round(price * 1.1, 2) if price else 100.0
        return Try(f"item → catalogue: item {item['Item']} ({item.get('Name') or '-'}) costs {price:.2f} → {new:.2f}",
                   _curl(f"{self.uc_ui}/InvItem", {"Item": item["Item"], field: new}),
                   f"{self.timeline} item {item['Item']}")

    def delivery(self) -> Try | None:
        cfg = self.conn.orders
        deliveries = _rows(self.webcrm, "Deliveries", "DeliveryId")
        for d in deliveries:
            if not d.get("DeliveryErpId") and d.get(cfg.ready_field) not in (*cfg.ready_values, "Synchronized"):
                return Try(f"delivery → order: delivery {d['DeliveryId']} ({d.get('DeliveryDescription') or '-'}) "
                           "is marked ready for the ERP",
                           _curl(f"{self.wc_ui}/Deliveries/{d['DeliveryId']}", {cfg.ready_field: cfg.ready_values[0]}),
                           f"{self.timeline} delivery {d['DeliveryId']}")
        sent = {d["DeliveryId"] for d in deliveries if d.get("DeliveryErpId")}
        lines = [ln for ln in _rows(self.webcrm, "QuotationLines", "QuotationLineId")
                 if ln.get("QuotationLineOpportunityId") in sent]
        if not lines:
            return None
        line = lines[0]
        quantity = float(line.get("QuotationLineQuantity") or 0) + 1
        delivery = line["QuotationLineOpportunityId"]
        return Try(f"delivery → order: a line of delivery {delivery} now orders {quantity:g}",
                   _curl(f"{self.wc_ui}/QuotationLines/{line['QuotationLineId']}", {"QuotationLineQuantity": quantity}),
                   f"{self.timeline} delivery {delivery}")

    def user(self) -> Try | None:
        link = self.conn.users.webcrm_link_field
        users = [u for u in _rows(self.webcrm, "Users", "UserId") if u.get("UserEmail")]
        users = [u for u in users if u.get(link)] or users
        if not users:
            return None
        user = users[0]
        return Try(f"user → employee: {user.get('UserName') or user['UserId']} gets a new mobile number in webCRM",
                   _curl(f"{self.wc_ui}/Users/{user['UserId']}",
                         {"UserMobilePhone": _other(user.get("UserMobilePhone"), PHONES)}),
                   f"{self.timeline} user {user['UserId']}")

    def contact(self) -> Try | None:
        link = self.conn.persons.uniconta_link_field
        contacts = [c for c in _rows(self.uniconta, "Contact", "RowId") if _field(c, link)]
        if not contacts:
            return None
        contact = contacts[0]
        return Try(f"contact → person: {contact.get('Name') or contact['RowId']} gets a new title in Uniconta",
                   _curl(f"{self.uc_ui}/Contact", {"RowId": contact["RowId"], "Title": _other(contact.get("Title"), TITLES)}),
                   f"{self.timeline} contact {contact['RowId']}")


def tries(conn: Connection, webcrm: Tables, uniconta: Tables, syncctl: str) -> list[Try]:
    """One edit per flow the connection runs, for the records the sandboxes hold now."""
    b = _Builder(conn, webcrm, uniconta, syncctl)
    plan = (("organisations", b.organisation), ("items", b.item), ("orders", b.delivery), ("users", b.user),
            ("persons", b.contact))
    found = (make() for flow, make in plan if conn.enabled(flow))
    return [t for t in found if t is not None]


def render(found: list[Try], *, syncctl: str, flower: str) -> str:
    """The block as printed: a heading, three lines per flow, where to look next."""
    lines = ["", "Try this: each command edits a record as a person would (the sandbox fires the real webhook);",
             "the timeline under it shows the change arrive on the other side.", ""]
    for t in found:
        lines += [f"  {t.what}", f"    {t.edit}", f"    {t.watch}"]
    lines += ["", f"Watch: {syncctl} status · Flower {flower} · README.md \"Your first ten minutes\"", ""]
    return "\n".join(lines)
