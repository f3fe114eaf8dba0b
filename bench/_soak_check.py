"""The convergence soak's checker: both systems read through their APIs, every linked pair compared.

It reads webCRM and Uniconta with the project's own API clients (`sync/clients/`, their own calls: not
the sandboxes' state), maps each side with the flows' own mapping functions and compares with the
flows' own normalizers. For every record it decides what the flow's rules say should exist
(docs/flows/*.md), and reports

* **disagreements**: a linked pair whose synced fields differ, a record that should have a
  counterpart and has none (*missing*), or a counterpart that should not be there (*stray*);
* **duplicates**: two counterparts for one record, by link or by natural key;
* **intentionally unsynced** records, each with the rule that keeps it so (not a failure).

Each finding carries the records it concerns, so the soak prints both values with the records'
timelines (the walk's operations and the sync's journal).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from sync.config import Connection
from sync.flows import merge
from sync.flows import organisations as orgflow
from sync.flows.items import map_item
from sync.flows.orders_map import (
    ERP_ID,
    ERP_STATUS,
    SYNCHRONIZED,
    changed_fields,
    currency_problem,
    is_ready,
    item_number,
    line_sort_key,
    map_header,
    map_line,
    order_currency,
    plan_lines,
    was_sent,
    webcrm_totals,
)
from sync.flows.organisations_mapping import (
    is_customer,
    map_uniconta,
    map_webcrm,
    shown_values,
    status_text,
)
from sync.flows.persons import is_debtor_contact, is_resigned, map_contact, map_person
from sync.flows.twoway import NORMALIZERS as TWOWAY
from sync.flows.twoway import as_id, decide, same_email, text
from sync.flows.users import is_inactive, map_employee, map_user
from sync.totals import dec, line_amounts, order_totals, same_money


@dataclass
class Finding:
    kind: str          # disagreement | missing | stray | duplicate
    flow: str
    what: str          # the record or pair, in words
    prop: str = ""
    webcrm: Any = None
    uniconta: Any = None
    note: str = ""
    records: list[str] = dc_field(default_factory=list)  # "system:entity:id", for timelines

    def line(self) -> str:
        values = f" webCRM={self.webcrm!r} Uniconta={self.uniconta!r}" if (self.webcrm, self.uniconta) != (None, None) \
            else ""
        fld = f" [{self.prop}]" if self.prop else ""
        note = f" — {self.note}" if self.note else ""
        return f"{self.kind.upper()} {self.flow}: {self.what}{fld}{values}{note}"


@dataclass
class Unsynced:
    flow: str
    what: str
    rule: str


@dataclass
class Systems:
    """Everything both systems hold, read through their APIs."""

    orgs: dict[int, dict[str, Any]]
    persons: dict[int, dict[str, Any]]
    users: dict[int, dict[str, Any]]
    active_users: set[int]
    deliveries: dict[int, dict[str, Any]]
    lines: dict[int, list[dict[str, Any]]]  # delivery id → its quotation lines
    catalogue: list[dict[str, Any]]
    debtors: list[dict[str, Any]]
    items: dict[str, dict[str, Any]]
    orders: list[dict[str, Any]]
    order_lines: dict[int, list[dict[str, Any]]]
    employees: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    invoices: list[dict[str, Any]]
    calls: int = 0


def read_systems(webcrm: Any, uniconta: Any) -> Systems:
    """Read both systems with the API clients (webcrm: WebcrmClient, uniconta: UnicontaClient)."""
    deliveries = {int(d["DeliveryId"]): d for d in webcrm.iter_all("Deliveries")}
    lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for line in webcrm.iter_all("QuotationLines"):
        parent = int(line.get("QuotationLineOpportunityId") or 0)
        if parent in deliveries:
            lines[parent].append(line)
    order_lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for line in uniconta.odata("DebtorOrderLineClientUser"):
        order_lines[int(line["OrderNumber"])].append(line)
    return Systems(
        orgs={int(o["OrganisationId"]): o for o in webcrm.iter_all("Organisations")},
        persons={int(p["PersonId"]): p for p in webcrm.iter_all("Persons")},
        users={int(u["UserId"]): u for u in webcrm.iter_all("Users")},
        active_users={int(u["UserId"]) for u in webcrm.active_users()},
        deliveries=deliveries,
        lines=dict(lines),
        catalogue=list(webcrm.query("SELECT * FROM LinkedData")),
        debtors=list(uniconta.odata("DebtorClientUser")),
        items={str(i["Item"]): i for i in uniconta.odata("InvItemClient")},
        orders=list(uniconta.odata("DebtorOrderClientUser")),
        order_lines=dict(order_lines),
        employees=list(uniconta.odata("EmployeeClientUser")),
        contacts=list(uniconta.odata("ContactClientUser")),
        invoices=list(uniconta.odata("DebtorInvoiceClient")),
    )


def _group(rows: Iterable[dict[str, Any]], key: Any) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        k = key(row)
        if k not in (None, ""):
            out[k].append(row)
    return out


class Checker:
    """Compares what `read_systems` read, flow by flow, with what the flows' rules say should be there.

    `walk` is what the people did (bench._soak_walk.Walk): deletions, moves and invoicing make some
    records intentionally unsynced, and the checker names the rule each time.
    """

    def __init__(self, conn: Connection, systems: Systems, walk: Any) -> None:
        self.conn, self.s, self.walk = conn, systems, walk
        self.findings: list[Finding] = []
        self.unsynced: list[Unsynced] = []
        self.pairs: dict[str, int] = defaultdict(int)  # linked pairs compared, per flow
        self.ocfg = conn.organisations
        self.countries = orgflow._countries(self.ocfg)
        self.debtors_by_org = _group(self.s.debtors, lambda d: orgflow._link_of(d, self.ocfg) or None)
        self.debtor_by_account = {text(d.get("Account")): d for d in self.s.debtors}
        # The debtor each organisation is linked to (exactly one carrying its id, agreeing with the org's number).
        self.org_account: dict[int, str] = {}
        for org_id, rows in self.debtors_by_org.items():
            if org_id.isdigit() and len(rows) == 1:
                self.org_account[int(org_id)] = text(rows[0].get("Account"))
        ucfg = conn.users
        self.employees_by_user = _group(self.s.employees, lambda e: as_id(e.get(ucfg.uniconta_link_field)))
        self.user_employee: dict[int, str] = {}

    # ------------------------------------------------------------------ helpers

    def _find(self, kind: str, flow: str, what: str, *records: str, **kw: Any) -> None:
        self.findings.append(Finding(kind, flow, what, records=list(records), **kw))

    def _skip(self, flow: str, what: str, rule: str) -> None:
        self.unsynced.append(Unsynced(flow, what, rule))

    def _compare(self, flow: str, what: str, records: list[str], w: Mapping[str, Any], u: Mapping[str, Any],
                 normalizers: Mapping[str, Any], note: str = "") -> None:
        for name in sorted(set(w) | set(u)):
            norm = normalizers.get(name, merge.plain)
            if norm(w.get(name)) != norm(u.get(name)):
                self._find("disagreement", flow, what, *records, prop=name, webcrm=w.get(name),
                           uniconta=u.get(name), note=note)

    def _deleted(self, entity: str, key: Any) -> int | None:
        return self.walk.deleted.get(entity, {}).get(str(key))

    def run(self) -> Checker:
        self.organisations()
        self.items()
        self.users()
        self.persons()
        self.orders()
        return self

    # ------------------------------------------------------------------ organisations ↔ debtors

    def org_expectation(self, org: dict[str, Any]) -> tuple[bool, str]:
        """(should it have a debtor, why not) by docs/flows/organisations.md."""
        cfg = self.ocfg
        org_id = int(org["OrganisationId"])
        if not is_customer(org, cfg):
            return False, f"not a customer ({cfg.trigger_field} = {text(org.get(cfg.trigger_field))!r})"
        mapped = map_webcrm(org, cfg, self.countries)
        if mapped.missing:
            return False, f"required fields empty: {', '.join(mapped.missing)}"
        if mapped.problems:
            return False, "; ".join(mapped.problems.values())
        deleted_at = self.walk.debtor_deleted.get(org_id)
        status = text(org.get(cfg.status_field)) if cfg.status_field else ""
        if deleted_at is not None and status.endswith("was deleted"):
            return False, (f"its debtor was deleted in Uniconta (op {deleted_at}) and it stayed a customer: "
                           "not re-created until the trigger goes away and back (status says so)")
        return True, ""

    def organisations(self) -> None:
        cfg = self.ocfg
        flow = "organisations"
        by_number = _group(self.s.orgs.values(), lambda o: text(o.get(cfg.debtor_number_field)) or None)
        for number, orgs in by_number.items():
            if len(orgs) > 1:
                ids = sorted(int(o["OrganisationId"]) for o in orgs)
                self._find("duplicate", flow, f"organisations {ids} carry the same debtor number {number}",
                           *[f"webcrm:organisation:{i}" for i in ids], note="natural key")
        for org_id, org in sorted(self.s.orgs.items()):
            rec = f"webcrm:organisation:{org_id}"
            debtors = self.debtors_by_org.get(str(org_id), [])
            if len(debtors) > 1:
                accounts = sorted(text(d.get("Account")) for d in debtors)
                self._find("duplicate", flow, f"organisation {org_id} has {len(debtors)} debtors {accounts}",
                           rec, *[f"uniconta:debtor:{a}" for a in accounts], note="by link")
            should, why = self.org_expectation(org)
            if not debtors:
                if should:
                    self._find("missing", flow, f"organisation {org_id} (a complete customer) has no debtor", rec,
                               webcrm=text(org.get("OrganisationName")), uniconta=None)
                else:
                    self._skip(flow, f"organisation {org_id}", why)
                    self._check_status_unlinked(org, rec)
                continue
            self._pair(org, debtors[0])
        for debtor in self.s.debtors:
            account = text(debtor.get("Account"))
            link = orgflow._link_of(debtor, cfg)
            rec = f"uniconta:debtor:{account}"
            if not link:
                if account in {str(x.key) for x in self.walk.handles.get("debtor", [])}:
                    self._skip(flow, f"debtor {account}", "made in Uniconta; create_from_uniconta is off")
                else:
                    self._find("stray", flow, f"debtor {account} carries no organisation id", rec)
            elif not link.isdigit() or int(link) not in self.s.orgs:
                op = self._deleted("organisation", link)
                if op is not None:
                    self._skip(flow, f"debtor {account}", f"its organisation {link} was deleted in webCRM "
                                                          f"(op {op}): the debtor is kept")
                else:
                    self._find("stray", flow, f"debtor {account} names organisation {link}, which does not exist",
                               rec)

    def _pair(self, org: dict[str, Any], debtor: dict[str, Any]) -> None:
        cfg = self.ocfg
        flow = "organisations"
        org_id = int(org["OrganisationId"])
        account = text(debtor.get("Account"))
        what = f"organisation {org_id} ↔ debtor {account}"
        records = [f"webcrm:organisation:{org_id}", f"uniconta:debtor:{account}"]
        self.pairs[flow] += 1
        mapped = map_webcrm(org, cfg, self.countries)
        skip = set(mapped.problems)
        w = {k: v for k, v in mapped.values.items() if k not in skip}
        u = {k: v for k, v in map_uniconta(debtor, cfg).items() if k not in skip}
        self._compare(flow, what, records, w, u, orgflow.NORMALIZERS)
        if text(org.get(cfg.debtor_number_field)) != account:
            self._find("disagreement", flow, what, *records, prop=cfg.debtor_number_field,
                       webcrm=org.get(cfg.debtor_number_field), uniconta=account, note="debtor number")
        if not is_customer(org, cfg):
            self._find("disagreement", flow, what, *records, prop=cfg.trigger_field,
                       webcrm=org.get(cfg.trigger_field), uniconta=account,
                       note="linked, so the trigger should have been set back to the keyword")
        for prop, value in shown_values(debtor, cfg).items():
            if text(org.get(prop)) != value:
                self._find("disagreement", flow, what, *records, prop=prop, webcrm=org.get(prop), uniconta=value,
                           note="shown field (Uniconta → webCRM)")
        if cfg.status_field:
            expected = status_text(account=account, problems=mapped.problems.values())
            if text(org.get(cfg.status_field)) != expected:
                self._find("disagreement", flow, what, *records, prop=cfg.status_field,
                           webcrm=org.get(cfg.status_field), uniconta=expected, note="status text")

    def _check_status_unlinked(self, org: dict[str, Any], rec: str) -> None:
        cfg = self.ocfg
        if not cfg.status_field:
            return
        status = text(org.get(cfg.status_field))
        if not is_customer(org, cfg):
            if status.startswith("Uniconta:"):
                self._find("disagreement", "organisations", f"organisation {int(org['OrganisationId'])}", rec,
                           prop=cfg.status_field, webcrm=status, uniconta="",
                           note="not a customer: the status should be cleared")
            return
        mapped = map_webcrm(org, cfg, self.countries)
        if mapped.missing or mapped.problems:
            expected = status_text(missing=mapped.missing, problems=mapped.problems.values())
            if status != expected:
                self._find("disagreement", "organisations", f"organisation {int(org['OrganisationId'])}", rec,
                           prop=cfg.status_field, webcrm=status, uniconta=expected,
                           note="status of a customer that cannot become a debtor yet")

    # ------------------------------------------------------------------ items → catalogue

    def items(self) -> None:
        flow = "items"
        cfg = self.conn.items
        number_field = cfg.number_field
        rows = _group(self.s.catalogue, lambda r: text(r.get(number_field)) or None)
        for number, item in sorted(self.s.items.items()):
            rec = f"uniconta:item:{number}"
            found = rows.get(number, [])
            if len(found) > 1:
                self._find("duplicate", flow, f"item {number} is {len(found)} times in the catalogue", rec,
                           note="natural key (item number)")
            if item.get("Blocked"):
                if found:
                    self._find("stray", flow, f"item {number} is blocked but still in the catalogue", rec)
                else:
                    self._skip(flow, f"item {number}", "blocked in Uniconta: not in the catalogue")
                continue
            if not found:
                self._find("missing", flow, f"item {number} is not in the catalogue", rec,
                           webcrm=None, uniconta=item.get("Name"))
                continue
            self.pairs[flow] += 1
            row = found[0]
            for prop, wanted in map_item(item, cfg).items():
                have = row.get(prop)
                same = same_money(have, wanted) if isinstance(wanted, float) else text(have) == text(wanted)
                if not same:
                    self._find("disagreement", flow, f"item {number} ↔ catalogue "
                               f"{row.get('QuotationLineLinkedDataItemId')}", rec, prop=prop, webcrm=have,
                               uniconta=wanted)
        for number in rows:
            if number in self.s.items:
                continue
            op = self._deleted("item", number)
            note = f"deleted in Uniconta at op {op}; the catalogue item should have gone" if op else ""
            self._find("stray", flow, f"catalogue has item number {number}, which Uniconta does not have",
                       f"uniconta:item:{number}", note=note)

    # ------------------------------------------------------------------ users ↔ employees

    def users(self) -> None:
        flow = "users"
        cfg = self.conn.users
        for uid, user in sorted(self.s.users.items()):
            rec = f"webcrm:user:{uid}"
            employees = self.employees_by_user.get(uid, [])
            if len(employees) > 1:
                numbers = sorted(text(e.get("Number")) for e in employees)
                self._find("duplicate", flow, f"user {uid} has {len(employees)} employees {numbers}", rec,
                           *[f"uniconta:employee:{n}" for n in numbers], note="by link")
            active = uid in self.s.active_users
            if employees:
                self._user_pair(user, employees[0], active)
                continue
            hint = text(user.get(cfg.webcrm_link_field))
            address = text(user.get("UserEmail"))
            if hint:
                op = self._deleted("employee", hint)
                if op is not None:
                    self._skip(flow, f"user {uid}", f"its employee {hint} was deleted in Uniconta (op {op}); the "
                                                    f"user keeps the number, so no new employee is made")
                else:
                    self._find("missing", flow, f"user {uid} names employee {hint}, which does not carry its id",
                               rec, webcrm=hint, uniconta=None)
            elif not active:
                self._skip(flow, f"user {uid}", "not active in webCRM (only active users get an employee)")
            elif not merge.email(address):
                self._skip(flow, f"user {uid}", "no e-mail: cannot be matched, not created")
            elif self._user_ambiguous(uid, address):
                self._skip(flow, f"user {uid}", f"e-mail {address} is ambiguous (kept for review)")
            else:
                self._find("missing", flow, f"active user {uid} with e-mail {address} has no employee", rec,
                           webcrm=address, uniconta=None)
        for employee in self.s.employees:
            number = text(employee.get("Number"))
            uid = as_id(employee.get(cfg.uniconta_link_field))
            rec = f"uniconta:employee:{number}"
            if uid is None:
                address = text(employee.get("Email"))
                candidates = [u for u in same_email(self.s.users.values(), "UserEmail", address)
                              if int(u["UserId"]) in self.s.active_users and not text(u.get(cfg.webcrm_link_field))]
                if len(candidates) == 1 and not self._employee_peers(number, address):
                    self._find("missing", flow, f"employee {number} has the e-mail of unlinked user "
                               f"{candidates[0]['UserId']} but is not linked", rec,
                               f"webcrm:user:{candidates[0]['UserId']}", webcrm=None, uniconta=address)
                else:
                    self._skip(flow, f"employee {number}", "no unique active unlinked webCRM user with its e-mail "
                                                           "(Uniconta never creates webCRM users)")
            elif uid not in self.s.users:
                self._find("stray", flow, f"employee {number} names user {uid}, which does not exist", rec)

    def _employee_peers(self, number: str, address: str) -> list[dict[str, Any]]:
        cfg = self.conn.users
        return [e for e in same_email(self.s.employees, "Email", address)
                if text(e.get("Number")) != number and as_id(e.get(cfg.uniconta_link_field)) is None]

    def _user_ambiguous(self, uid: int, address: str) -> bool:
        cfg = self.conn.users
        candidates = [e for e in same_email(self.s.employees, "Email", address)
                      if as_id(e.get(cfg.uniconta_link_field)) is None]
        peers = [u for u in same_email(self.s.users.values(), "UserEmail", address)
                 if int(u["UserId"]) != uid and int(u["UserId"]) in self.s.active_users
                 and not text(u.get(cfg.webcrm_link_field))]
        return decide(candidates, peers) == "ambiguous"

    def _user_pair(self, user: dict[str, Any], employee: dict[str, Any], active: bool) -> None:
        flow = "users"
        cfg = self.conn.users
        uid = int(user["UserId"])
        number = text(employee.get("Number"))
        what = f"user {uid} ↔ employee {number}"
        records = [f"webcrm:user:{uid}", f"uniconta:employee:{number}"]
        self.pairs[flow] += 1
        if text(user.get(cfg.webcrm_link_field)) == number:
            self.user_employee[uid] = number
        else:
            self._find("disagreement", flow, what, *records, prop=cfg.webcrm_link_field,
                       webcrm=user.get(cfg.webcrm_link_field), uniconta=number, note="link field")
        self._compare(flow, what, records, map_user(user), map_employee(employee), TWOWAY)
        inactive = is_inactive(employee)
        if active and inactive:
            self._find("disagreement", flow, what, *records, prop="active", webcrm=True,
                       uniconta={"Terminated": employee.get("Terminated"), "Blocked": employee.get("Blocked")},
                       note="user active; employee still terminated/blocked by the sync")
        elif not active and not inactive:
            self._find("disagreement", flow, what, *records, prop="active", webcrm=False,
                       uniconta={"Terminated": employee.get("Terminated"), "Blocked": employee.get("Blocked")},
                       note="user not active; employee should be terminated and blocked")

    # ------------------------------------------------------------------ persons ↔ contacts

    def persons(self) -> None:
        flow = "persons"
        cfg = self.conn.persons
        contacts = [c for c in self.s.contacts if is_debtor_contact(c)]
        by_ref = _group(contacts, lambda c: as_id(c.get(cfg.uniconta_link_field)))
        by_rowid = {int(c["RowId"]): c for c in contacts}
        claimed = _group((p for p in self.s.persons.values() if not is_resigned(p)),
                         lambda p: as_id(p.get(cfg.webcrm_link_field)))
        for rowid, persons in claimed.items():
            if len(persons) > 1:
                ids = sorted(int(p["PersonId"]) for p in persons)
                self._find("duplicate", flow, f"persons {ids} all name contact {rowid}",
                           *[f"webcrm:person:{i}" for i in ids], f"uniconta:contact:{rowid}", note="by link")
        # Persons the sync made (from contacts) twice: the same organisation, name and e-mail (the walk never
        # gives two contacts one address, so an address seen twice here is one contact made into two persons).
        made = _group((p for p in self.s.persons.values() if text(p.get("PersonCreatedBy")) ==
                       self.conn.webcrm.api_user_name and not is_resigned(p) and merge.email(p.get("PersonEmail"))),
                      lambda p: (int(p.get("PersonOrganisationId") or 0), text(p.get("PersonName")).casefold(),
                                 merge.email(p.get("PersonEmail"))))
        for (org, name, email), persons in made.items():
            if len(persons) > 1:
                ids = sorted(int(p["PersonId"]) for p in persons)
                self._find("duplicate", flow, f"the sync made persons {ids} on organisation {org} with the same "
                           f"name and e-mail ({name!r}, {email!r})", *[f"webcrm:person:{i}" for i in ids],
                           note="natural key")
        for pid, person in sorted(self.s.persons.items()):
            rec = f"webcrm:person:{pid}"
            linked = by_ref.get(pid, [])
            if len(linked) > 1:
                rowids = sorted(int(c["RowId"]) for c in linked)
                self._find("duplicate", flow, f"person {pid} has {len(linked)} contacts {rowids}", rec,
                           *[f"uniconta:contact:{r}" for r in rowids], note="by link")
            org = int(person.get("PersonOrganisationId") or 0)
            account = self.org_account.get(org)
            if linked:
                if is_resigned(person):
                    self._find("stray", flow, f"person {pid} resigned but contact {linked[0]['RowId']} still exists",
                               rec, f"uniconta:contact:{linked[0]['RowId']}")
                else:
                    self._person_pair(person, linked[0], account)
                continue
            if is_resigned(person):
                self._skip(flow, f"person {pid}", "resigned: its contact is deleted (persons never are)")
            elif account is None:
                self._skip(flow, f"person {pid}", f"its organisation {org} has no debtor: the person waits")
            elif self._person_ambiguous(pid, org, account, text(person.get("PersonEmail")), contacts):
                self._skip(flow, f"person {pid}", f"e-mail {person.get('PersonEmail')} is ambiguous on "
                                                  f"organisation {org} (kept for review)")
            else:
                hint = as_id(person.get(cfg.webcrm_link_field))
                note = f"its link field names contact {hint}" + (" (gone)" if hint not in by_rowid else "") \
                    if hint else ""
                self._find("missing", flow, f"active person {pid} on linked organisation {org} (debtor {account}) "
                           "has no contact", rec, *([f"uniconta:contact:{hint}"] if hint else []),
                           webcrm=person.get("PersonName"), uniconta=None, note=note)
        org_of_account = {a: o for o, a in self.org_account.items()}
        for contact in contacts:
            rowid = int(contact["RowId"])
            rec = f"uniconta:contact:{rowid}"
            pid = as_id(contact.get(cfg.uniconta_link_field))
            account = text(contact.get("DCAccount"))
            if pid is not None:
                if pid not in self.s.persons:
                    op = self._deleted("person", pid)
                    if op is not None:
                        self._skip(flow, f"contact {rowid}", f"its person {pid} was deleted in webCRM (op {op}): "
                                                             "the contact stays with the debtor")
                    else:
                        self._find("stray", flow, f"contact {rowid} names person {pid}, which does not exist", rec)
                continue
            org = org_of_account.get(account)
            if org is None or org not in self.s.orgs:
                self._skip(flow, f"contact {rowid}", f"debtor {account} is not linked to an existing organisation: "
                                                     "the contact waits")
            elif self._contact_ambiguous(rowid, org, account, text(contact.get("Email")), contacts):
                self._skip(flow, f"contact {rowid}", f"e-mail {contact.get('Email')} is ambiguous on debtor "
                                                     f"{account} (kept for review)")
            else:
                self._find("missing", flow, f"contact {rowid} on linked debtor {account} has no person", rec,
                           webcrm=None, uniconta=contact.get("Name"))

    def _person_ambiguous(self, pid: int, org: int, account: str, address: str,
                          contacts: list[dict[str, Any]]) -> bool:
        cfg = self.conn.persons
        candidates = [c for c in same_email([c for c in contacts if text(c.get("DCAccount")) == account], "Email",
                                            address) if not text(c.get(cfg.uniconta_link_field))]
        peers = [p for p in same_email([p for p in self.s.persons.values()
                                        if int(p.get("PersonOrganisationId") or 0) == org], "PersonEmail", address)
                 if int(p["PersonId"]) != pid and not text(p.get(cfg.webcrm_link_field)) and not is_resigned(p)]
        return decide(candidates, peers) == "ambiguous"

    def _contact_ambiguous(self, rowid: int, org: int, account: str, address: str,
                           contacts: list[dict[str, Any]]) -> bool:
        cfg = self.conn.persons
        candidates = [p for p in same_email([p for p in self.s.persons.values()
                                             if int(p.get("PersonOrganisationId") or 0) == org], "PersonEmail",
                                            address)
                      if not text(p.get(cfg.webcrm_link_field)) and not is_resigned(p)]
        peers = [c for c in same_email([c for c in contacts if text(c.get("DCAccount")) == account], "Email",
                                       address)
                 if int(c["RowId"]) != rowid and not text(c.get(cfg.uniconta_link_field))]
        return decide(candidates, peers) == "ambiguous"

    def _person_pair(self, person: dict[str, Any], contact: dict[str, Any], account: str | None) -> None:
        flow = "persons"
        cfg = self.conn.persons
        pid, rowid = int(person["PersonId"]), int(contact["RowId"])
        what = f"person {pid} ↔ contact {rowid}"
        records = [f"webcrm:person:{pid}", f"uniconta:contact:{rowid}"]
        self.pairs[flow] += 1
        if as_id(person.get(cfg.webcrm_link_field)) != rowid:
            self._find("disagreement", flow, what, *records, prop=cfg.webcrm_link_field,
                       webcrm=person.get(cfg.webcrm_link_field), uniconta=rowid, note="link field")
        self._compare(flow, what, records, map_person(person), map_contact(contact), TWOWAY)
        dc_account = text(contact.get("DCAccount"))
        org = int(person.get("PersonOrganisationId") or 0)
        if account is not None and dc_account != account:
            moved_u = self.walk.moved_in_uniconta.get(rowid, -1)
            moved_w = self.walk.moved_in_webcrm.get(pid, -1)
            if moved_u > moved_w:
                self._skip(flow, what, f"contact moved to debtor {dc_account} in Uniconta (op {moved_u}): "
                                       "journaled only, webCRM persons cannot move through the API")
            else:
                self._find("disagreement", flow, what, *records, f"webcrm:organisation:{org}",
                           f"uniconta:debtor:{dc_account}", prop="organisation/DCAccount",
                           webcrm=f"organisation {org} (debtor {account})", uniconta=dc_account,
                           note=(f"the person moved in webCRM at op {moved_w}" if moved_w >= 0 else ""))

    # ------------------------------------------------------------------ deliveries → orders

    def orders(self) -> None:
        flow = "orders"
        cfg = self.conn.orders
        by_link = _group(self.s.orders, lambda o: text(o.get(cfg.uniconta_link_field)) or None)
        invoiced = {int(i["OrderNumber"]) for i in self.s.invoices if i.get("OrderNumber")}
        for did, delivery in sorted(self.s.deliveries.items()):
            rec = f"webcrm:delivery:{did}"
            orders = sorted(by_link.get(str(did), []), key=lambda o: int(o.get("OrderNumber") or 0))
            if len(orders) > 1:
                self._find("duplicate", flow, f"delivery {did} has {len(orders)} orders "
                           f"{[o.get('OrderNumber') for o in orders]}", rec, note="by link")
            sent = was_sent(delivery) or text(delivery.get(ERP_STATUS)) == SYNCHRONIZED
            if not (is_ready(delivery, cfg) or sent or did in self.walk.ever_ready):
                if orders:
                    self._find("stray", flow, f"delivery {did} was never marked ready but has order "
                               f"{orders[0].get('OrderNumber')}", rec)
                else:
                    self._skip(flow, f"delivery {did}", "never marked ready for the ERP")
                continue
            erp_id = text(delivery.get(ERP_ID))
            if erp_id and not orders:
                if erp_id.isdigit() and int(erp_id) in invoiced:
                    self._skip(flow, f"delivery {did}", f"its order {erp_id} was invoiced: changes are no longer "
                                                        "sent")
                else:
                    self._find("missing", flow, f"delivery {did} names order {erp_id}, which is neither there nor "
                               "invoiced", rec, webcrm=erp_id, uniconta=None)
                continue
            lines = sorted(self.s.lines.get(did, []), key=line_sort_key)
            org = int(delivery.get("DeliveryOrganisationId") or 0)
            account = self.org_account.get(org)
            if account is None:
                why = self.org_expectation(self.s.orgs[org])[1] if org in self.s.orgs else "organisation gone"
                what = f"delivery {did}"
                if orders:
                    self._find("stray", flow, f"{what} has an order but organisation {org} has no debtor", rec)
                elif org in self.s.orgs and self.org_expectation(self.s.orgs[org])[0]:
                    self._skip(flow, what, f"waits for organisation {org}, which should have a debtor but has none "
                                           "(see that organisation's finding)")
                else:
                    self._skip(flow, what, f"waits for organisation {org}: {why}")
                continue
            debtor = self.debtor_by_account[account]
            unknown = sorted({n for n in (item_number(line, cfg) for line in lines) if n and n not in self.s.items})
            problem = currency_problem(delivery, debtor, cfg)
            if problem:
                self._skip(flow, f"delivery {did}", f"waits: {problem}")
                continue
            if unknown:
                self._skip(flow, f"delivery {did}", f"item numbers {unknown} unknown in Uniconta: the order fails "
                                                    "(a dead letter) until the lines are corrected")
                continue
            if not orders:
                self._find("missing", flow, f"delivery {did} marked ready for a linked customer has no order", rec,
                           webcrm=delivery.get(ERP_STATUS), uniconta=None)
                continue
            self._order_pair(delivery, lines, orders[0], debtor)
        deliveries_deleted = self.walk.deleted.get("delivery", {})
        for link, orders in by_link.items():
            if link.isdigit() and int(link) not in self.s.deliveries:
                op = deliveries_deleted.get(link)
                for order in orders:
                    if op is not None:
                        self._skip(flow, f"order {order.get('OrderNumber')}", f"its delivery {link} was deleted "
                                                                             f"in webCRM (op {op}): the order stays")
                    else:
                        self._find("stray", flow, f"order {order.get('OrderNumber')} names delivery {link}, which "
                                   "does not exist", f"webcrm:delivery:{link}")

    def _order_pair(self, delivery: dict[str, Any], lines: list[dict[str, Any]], order: dict[str, Any],
                    debtor: dict[str, Any]) -> None:
        flow = "orders"
        cfg = self.conn.orders
        did = int(delivery["DeliveryId"])
        number = int(order["OrderNumber"])
        what = f"delivery {did} ↔ order {number}"
        records = [f"webcrm:delivery:{did}"]
        self.pairs[flow] += 1
        responsible = int(delivery.get("DeliveryResponsible") or 0)
        employee = self.user_employee.get(responsible)
        header = map_header(delivery, cfg, account=text(debtor.get("Account")), currency=order_currency(debtor),
                            employee=employee)
        for name in changed_fields(order, header):
            self._find("disagreement", flow, what, *records, prop=name, webcrm=header.get(name),
                       uniconta=order.get(name), note="order header")
        wanted = [map_line(line, cfg) for line in lines]
        existing = self.s.order_lines.get(number, [])
        plan = plan_lines(wanted, existing, cfg.uniconta_line_link_field)
        for line in plan.insert:
            self._find("missing", flow, what, *records, prop=f"line {line[cfg.uniconta_line_link_field]}",
                       webcrm=line, uniconta=None, note="quotation line not on the order")
        for current, new in plan.update:
            fields = [k for k in changed_fields(current, new) if k in new]
            self._find("disagreement", flow, what, *records, prop=f"line {new[cfg.uniconta_line_link_field]}",
                       webcrm={k: new[k] for k in fields}, uniconta={k: current.get(k) for k in fields})
        for line in plan.delete:
            self._find("stray", flow, what, *records, prop=f"order line {line.get('LineNumber')}",
                       uniconta={k: line.get(k) for k in ("Item", "Text", "Qty", "Price", cfg.uniconta_line_link_field)},
                       note="line not (or no longer) in webCRM")
        # Totals (sync/totals.py): the value webCRM shows, and what Uniconta computes (an item line sent with
        # cost price 0 takes the item's cost price there: docs/flows/orders.md "Totals").
        shown = webcrm_totals(lines)
        expected = order_totals(
            line_amounts(w["Qty"], w["Price"], w["DiscountPct"],
                         self.s.items[w["Item"]].get("CostPrice") if w.get("Item") and dec(w["CostPrice"]) == 0
                         and w["Item"] in self.s.items else w["CostPrice"]) for w in wanted)
        if not same_money(order.get("Total"), shown.value):
            self._find("disagreement", flow, what, *records, prop="Total", webcrm=float(shown.value),
                       uniconta=order.get("Total"), note="order value")
        if not same_money(order.get("Margin"), expected.margin):
            self._find("disagreement", flow, what, *records, prop="Margin", webcrm=float(expected.margin),
                       uniconta=order.get("Margin"), note="margin (cost price of 0 taken from the item)")
        if not (same_money(delivery.get("DeliveryOrderValue"), shown.value)):
            self._find("disagreement", flow, what, *records, prop="DeliveryOrderValue",
                       webcrm=delivery.get("DeliveryOrderValue"), uniconta=float(shown.value),
                       note="webCRM's own total of its lines")
        expected_back = {ERP_ID: str(number), ERP_STATUS: SYNCHRONIZED}
        if cfg.status_field:
            expected_back[cfg.status_field] = f"Uniconta order {number}"
        for name, value in expected_back.items():
            if text(delivery.get(name)) != value:
                self._find("disagreement", flow, what, *records, prop=name, webcrm=delivery.get(name),
                           uniconta=value, note="written back to the delivery")
