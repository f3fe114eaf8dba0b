"""The convergence soak's random walk: people editing both systems as people do, through the sandboxes'
"UI" routes (which fire the real webhooks), across every flow.

Reproducible from its seed: every operation draws all of its random values from the walk's own
generator before it looks at either system, and it picks records among the *handles* the walk made
itself (a handle stays in its list when the record is deleted; an operation on a gone record is
recorded as skipped). So a seed always gives the same sequence of intended operations; what each one
finds (a contact the sync has not made yet, a debtor Uniconta refuses to delete) depends on timing.

Every operation is kept with the records it touched (`Walk.timeline`), so the checker can print a
record's history next to the sync's own journal.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from bench import _harness as h

KEYWORD = "Kunde"
OTHER_TYPES = ("Emne", "Leverandør", "Partner")
READY = "ReadyForSynchronization"
FIRST = ("Mette", "Søren", "Anne", "Jens", "Birgitte", "Lars", "Pia", "Mads", "Ida", "Rasmus", "Sofie",
         "Henrik", "Camilla", "Thomas", "Line", "Ole", "Karen", "Niels", "Hanne", "Jørgen", "Åse", "Jan")
LAST = ("Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen",
        "Rasmussen", "Jørgensen", "Holm", "Møller", "Kjær", "Ødegaard", "van der Berg", "Due")
TITLES = ("Indkøber", "Indkøbschef", "Direktør", "Bogholder", "Lagerchef", "Projektleder", "Sælger", "")
COMPANY_WORDS = ("Smed", "Tømrer", "Gartneri", "VVS", "El-service", "Maskinfabrik", "Trælast", "Auto",
                 "Bageri", "Rådgivning", "Transport", "Isenkram")
SUFFIXES = ("ApS", "A/S", "IVS", "I/S", "& Søn")
STREETS = ("Østergade", "Vestergade", "Nørregade", "Søndergade", "Havnevej", "Skovvej", "Åboulevarden",
           "Industrivej", "Bredgade", "Kongevejen")
CITIES = (("8000", "Aarhus C"), ("5000", "Odense C"), ("9000", "Aalborg"), ("7100", "Vejle"),
          ("6700", "Esbjerg"), ("2100", "København Ø"), ("4000", "Roskilde"), ("8600", "Silkeborg"))
COUNTRIES = ("Danmark",) * 17 + ("Sverige", "Norge", "Tyskland")
CURRENCIES = ("",) * 8 + ("DKK", "EUR")
UNITS = ("None", "Piece", "Hours", "Box", "Meter", "Kg")
GROUPS = ("Beslag", "Værktøj", "El", "VVS", "Service")
LINE_TEXTS = ("Fragt", "Montage", "Kørsel", "Rabat aftalt")


# --------------------------------------------------------------------------- the walk's own knowledge


@dataclass
class Handle:
    """A record the walk made (or knows from the start). `key` is its id in the system it lives in."""

    kind: str
    n: int
    key: Any = None          # webCRM id / Uniconta key or RowId; None if the create did not happen
    alive: bool = True       # as far as the walk knows (its own deletes and cascades)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.kind}#{self.n}"


@dataclass
class OpRecord:
    n: int
    kind: str
    at: float
    phase: str
    outcome: str = "ok"
    records: list[str] = field(default_factory=list)   # "system:entity:id"
    detail: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at)) + f".{int(self.at * 1000) % 1000:03d}"
        fields = ", ".join(f"{k}={v!r}" for k, v in self.detail.items())
        return f"op {self.n:>5} {stamp} [{self.phase}] {self.kind} {fields} → {self.outcome}"


class Gone(Exception):
    """The record an operation wanted is not there (not synced yet, deleted): the op is skipped."""


class View:
    """What a person sees on the screen: both sandboxes' records, read from their admin state (no API
    calls, so the call logs hold only the sync's calls), at most `max_age` seconds old."""

    def __init__(self, webcrm: str, uniconta: str, max_age: float = 1.5) -> None:
        self.webcrm_url, self.uniconta_url, self.max_age = webcrm, uniconta, max_age
        self._at = 0.0
        self.webcrm: dict[str, dict[str, dict[str, Any]]] = {}
        self.uniconta: dict[str, dict[str, dict[str, Any]]] = {}

    def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._at < self.max_age:
            return
        self.webcrm = h.admin(self.webcrm_url, "GET", "/state")["tables"]
        tables = h.admin(self.uniconta_url, "GET", "/state")["tables"]
        self.uniconta = {name: {k: {**r, **(r.get("_user") or {})} for k, r in rows.items()}
                         for name, rows in tables.items()}
        self._at = time.monotonic()

    def w(self, table: str) -> dict[str, dict[str, Any]]:
        return self.webcrm.get(table) or {}

    def u(self, table: str) -> list[dict[str, Any]]:
        return list((self.uniconta.get(table) or {}).values())

    def debtor_of(self, org_id: int) -> dict[str, Any] | None:
        rows = [d for d in self.u("Debtor") if str(d.get("WebcrmId") or "") == str(org_id)]
        return rows[0] if rows else None

    def contact_of(self, person_id: int) -> dict[str, Any] | None:
        rows = [c for c in self.u("Contact") if str(c.get("ReferenceId") or "") == str(person_id)]
        return rows[0] if rows else None

    def person_of(self, rowid: int) -> dict[str, Any] | None:
        rows = [p for p in self.w("Persons").values() if str(p.get("PersonCustom1") or "") == str(rowid)]
        return rows[0] if rows else None

    def employee_of(self, user_id: int) -> dict[str, Any] | None:
        rows = [e for e in self.u("Employee") if str(e.get("WebcrmUserId") or "") == str(user_id)]
        return rows[0] if rows else None

    def user_of(self, number: str) -> dict[str, Any] | None:
        rows = [u for u in self.w("Users").values() if str(u.get("UserCustom1") or "") == number]
        return rows[0] if rows else None

    def order_of(self, delivery_id: int) -> dict[str, Any] | None:
        rows = [o for o in self.u("DebtorOrder") if str(o.get("WebcrmDeliveryId") or "") == str(delivery_id)]
        return rows[0] if rows else None


# --------------------------------------------------------------------------- the walk


class Walk:
    """Draws and makes one operation at a time; keeps what it made and what it did."""

    def __init__(self, seed: int, webcrm: str, uniconta: str) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.webcrm_url, self.uniconta_url = webcrm, uniconta
        self.view = View(webcrm, uniconta)
        self.handles: dict[str, list[Handle]] = defaultdict(list)
        self.ops: list[OpRecord] = []
        self.timeline: dict[str, list[int]] = defaultdict(list)
        self.phase = "clean"
        self._counter = 0
        self._session = requests.Session()
        # What the walk did that makes a record intentionally unsynced (read by the checker).
        self.deleted: dict[str, dict[str, int]] = defaultdict(dict)  # entity → key → op
        self.moved_in_uniconta: dict[int, int] = {}   # contact RowId → op of its last move in Uniconta
        self.moved_in_webcrm: dict[int, int] = {}     # person id → op of its last move in webCRM
        self.invoiced: dict[int, int] = {}            # delivery id → op that invoiced its order
        self.debtor_deleted: dict[int, int] = {}      # organisation id → op that deleted its debtor
        self.trigger_changed: dict[int, int] = {}     # organisation id → op of its last trigger change
        self.ever_ready: set[int] = set()             # deliveries marked ready at least once

    # ------------------------------------------------------------------ plumbing

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _ui(self, system: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A person's edit; raises Gone with the sandbox's message when it is refused."""
        base = self.webcrm_url if system == "webcrm" else self.uniconta_url
        resp = self._session.request(method, f"{base}/_sandbox/ui/{path}", json=body, timeout=30)
        if resp.status_code >= 400:
            try:
                answer = resp.json()
                message = answer.get("error") or answer.get("Message") or resp.text
            except ValueError:
                message = resp.text
            raise Gone(f"refused {resp.status_code}: {str(message)[:160]}")
        return resp.json() if resp.content else {}

    def _admin(self, system: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        base = self.webcrm_url if system == "webcrm" else self.uniconta_url
        resp = self._session.request(method, f"{base}/_sandbox{path}", json=body, timeout=30)
        if resp.status_code >= 400:
            raise Gone(f"refused {resp.status_code}: {resp.text[:160]}")
        return resp.json() if resp.content else None

    def _touch(self, op: OpRecord, *records: str) -> None:
        for record in records:
            if record not in op.records:
                op.records.append(record)
                self.timeline[record].append(op.n)

    def _add(self, kind: str, key: Any = None, **extra: Any) -> Handle:
        handle = Handle(kind, len(self.handles[kind]), key, True, dict(extra))
        self.handles[kind].append(handle)
        return handle

    def _pick(self, kind: str, alive: bool = True) -> Handle | None:
        """A handle of `kind`, drawn from the walk's generator (deterministic for a seed)."""
        pool = [x for x in self.handles[kind] if x.alive or not alive]
        if not pool:
            return None
        if self.rng.random() < 0.35:  # people mostly work on what they touched lately: edits collide
            pool = pool[-8:]
        return pool[self.rng.randrange(len(pool))]

    def _pick_customer(self) -> Handle | None:
        """An organisation, mostly one the walk made (or last set) as a customer: orders and contacts need a
        debtor, and a person in webCRM would pick one."""
        wanted = self.rng.random() < 0.85
        pool = [x for x in self.handles["org"] if x.alive and x.extra.get("customer", False) == wanted]
        if not pool:
            return self._pick("org")
        return pool[self.rng.randrange(len(pool))]

    # ------------------------------------------------------------------ random values

    def _phone(self) -> str:
        digits = "".join(str(self.rng.randrange(10)) for _ in range(8))
        style = self.rng.randrange(3)
        if style == 0:
            return f"+45 {digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:]}"
        if style == 1:
            return f"+45{digits}"
        return f"{digits[:4]}-{digits[4:]}"

    def _person_name(self) -> tuple[str, str]:
        return self.rng.choice(FIRST), self.rng.choice(LAST)

    def _email(self, first: str, last: str, domain: str = "kunde.dk") -> str:
        n = self._next()
        local = f"{first}.{last.split()[-1]}{n}".lower()
        local = local.replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
        address = f"{local}@{domain}"
        return address.upper() if self.rng.random() < 0.05 else address  # case must not matter

    def _address(self) -> str:
        lines = [f"{self.rng.choice(STREETS)} {self.rng.randrange(1, 120)}"]
        extra = self.rng.random()
        if extra < 0.25:
            lines.append(f"{self.rng.randrange(1, 5)}. sal")
        if extra < 0.05:
            lines += ["Bygning C", "Port 4"]  # a 4th line is joined into Address3
        return "\n".join(lines)

    def _org_fields(self) -> dict[str, Any]:
        rng = self.rng
        postcode, city = rng.choice(CITIES)
        n = self._next()
        name = f"{rng.choice(LAST)} {rng.choice(COMPANY_WORDS)} {rng.choice(SUFFIXES)} {n}"
        if rng.random() < 0.02:
            name = (name + " " + "Holding og Ejendomsselskab") * 4  # over Uniconta's 100: cut there
        fields = {
            "OrganisationName": name, "OrganisationAddress": self._address(), "OrganisationPostCode": postcode,
            "OrganisationCity": city, "OrganisationCountry": rng.choice(COUNTRIES),
            "OrganisationVatNumber": f"{rng.randrange(10000000, 99999999)}",
            "OrganisationTelephone": self._phone(),
            "OrganisationCustom1": rng.choice(CURRENCIES),
            "OrganisationCustom2": rng.choice(("", "", "U25", "EU")),
            "OrganisationCustom3": f"faktura{n}@kunde.dk" if rng.random() < 0.6 else "",
        }
        if rng.random() < 0.02:
            fields["OrganisationCountry"] = "Atlantis"  # unknown: reported, never guessed
        return fields

    # ------------------------------------------------------------------ choosing an operation

    def weights(self) -> dict[str, float]:
        """How likely each operation is now; only the walk's own knowledge decides (counts of handles)."""
        n = {k: len([x for x in v if x.alive]) for k, v in self.handles.items()}
        orgs, persons, users, items = n.get("org", 0), n.get("person", 0), n.get("user", 0), n.get("item", 0)
        deliveries, contacts = n.get("delivery", 0), n.get("contact", 0)
        few = lambda have, want, w: w * 4 if have < want else w  # noqa: E731 - start by creating things
        w = {
            "org_create": few(orgs, 12, 5), "org_edit": 7 if orgs else 0, "org_type": 3 if orgs else 0,
            "org_required": 2.5 if orgs else 0, "org_delete": 0.25 if orgs > 10 else 0,
            "person_create": few(persons, 15, 6) if orgs else 0, "person_edit": 7 if persons else 0,
            "person_move": 1.2 if persons and orgs > 1 else 0, "person_status": 1.8 if persons else 0,
            "person_delete": 0.3 if persons > 10 else 0,
            "user_create": few(users, 6, 1.4), "user_edit": 2.5 if users else 0,
            "user_active": 0.7 if users > 2 else 0,
            "item_create": few(items, 10, 2.5), "item_edit": 4 if items else 0, "item_block": 0.8 if items else 0,
            "item_delete": 0.25 if items > 8 else 0,
            "delivery_create": 3.5 if orgs and items else 0, "line_add": 3.5 if deliveries else 0,
            "line_change": 3.5 if deliveries else 0, "line_remove": 1.8 if deliveries else 0,
            "delivery_ready": 4.5 if deliveries else 0, "delivery_edit": 1.5 if deliveries else 0,
            "order_invoice": 0.25 if deliveries > 5 else 0,
            "debtor_edit": 6 if orgs else 0, "debtor_create": 0.4, "debtor_delete": 0.25 if orgs > 10 else 0,
            "employee_edit": 2.5 if users else 0, "employee_create": 0.5, "employee_delete": 0.15 if users > 4 else 0,
            "contact_edit": 6 if persons or contacts else 0, "contact_create": 2.5 if orgs else 0,
            "contact_delete": 1.2 if persons or contacts else 0, "contact_move": 0.4 if persons and orgs > 1 else 0,
            "both_sides": 6 if orgs else 0, "bulk_edit": 1.2 if orgs > 5 and items > 5 else 0,
        }
        return {k: v for k, v in w.items() if v > 0}

    def step(self, n: int) -> OpRecord:
        """Draw operation number `n` and make it."""
        weights = self.weights()
        kinds = sorted(weights)
        kind = self.rng.choices(kinds, [weights[k] for k in kinds])[0]
        op = OpRecord(n, kind, time.time(), self.phase)
        action = getattr(self, f"op_{kind}")
        try:
            action(op)
        except Gone as why:
            op.outcome = f"skipped: {why}"
        except requests.RequestException as err:
            op.outcome = f"failed: {type(err).__name__}: {err}"
        self.ops.append(op)
        return op

    # ------------------------------------------------------------------ organisations and debtors

    def _org_id(self, handle: Handle | None) -> int:
        if handle is None or handle.key is None or not handle.alive:
            raise Gone("no organisation")
        return int(handle.key)

    def op_org_create(self, op: OpRecord) -> None:
        fields = self._org_fields()
        roll = self.rng.random()
        fields["OrganisationType"] = KEYWORD if roll < 0.72 else self.rng.choice(OTHER_TYPES)
        missing = self.rng.choice(("OrganisationPostCode", "OrganisationCity", "OrganisationAddress"))
        if self.rng.random() < 0.15:
            fields[missing] = ""  # required field left empty: no debtor until it is filled
        handle = self._add("org", customer=fields["OrganisationType"] == KEYWORD)
        op.detail = {"org": handle.name, "type": fields["OrganisationType"],
                     "empty": [k for k, v in fields.items() if v == "" and k in (
                         "OrganisationPostCode", "OrganisationCity", "OrganisationAddress")]}
        record = self._ui("webcrm", "POST", "Organisations", fields)
        handle.key = int(record["OrganisationId"])
        op.detail["id"] = handle.key
        self._touch(op, f"webcrm:organisation:{handle.key}")

    def op_org_edit(self, op: OpRecord) -> None:
        handle = self._pick("org")
        candidates = self._org_fields()
        names = sorted(candidates)
        chosen = self.rng.sample(names, self.rng.randint(1, 3))
        if "OrganisationCountry" in chosen and self.rng.random() < 0.7:
            chosen.remove("OrganisationCountry")
        if "OrganisationCustom1" in chosen and self.rng.random() < 0.7:
            chosen.remove("OrganisationCustom1")
        fields = {k: candidates[k] for k in chosen}
        org = self._org_id(handle)
        op.detail = {"org": org, **fields}
        self._touch(op, f"webcrm:organisation:{org}")
        self._ui("webcrm", "PUT", f"Organisations/{org}", fields)

    def op_org_type(self, op: OpRecord) -> None:
        """The trigger set away from the keyword, or back to it (sometimes away and back within a second)."""
        handle = self._pick("org")
        roll, other, pause = self.rng.random(), self.rng.choice(OTHER_TYPES), self.rng.uniform(0.05, 0.9)
        org = self._org_id(handle)
        self._touch(op, f"webcrm:organisation:{org}")
        self.trigger_changed[org] = op.n
        assert handle is not None
        if roll < 0.45:
            op.detail = {"org": org, "type": KEYWORD}
            handle.extra["customer"] = True
            self._ui("webcrm", "PUT", f"Organisations/{org}", {"OrganisationType": KEYWORD})
        elif roll < 0.8:
            op.detail = {"org": org, "type": other}
            handle.extra["customer"] = False
            self._ui("webcrm", "PUT", f"Organisations/{org}", {"OrganisationType": other})
        else:
            op.detail = {"org": org, "type": f"{other} then {KEYWORD} after {pause:.2f} s"}
            handle.extra["customer"] = True
            self._ui("webcrm", "PUT", f"Organisations/{org}", {"OrganisationType": other})
            time.sleep(pause)
            self._ui("webcrm", "PUT", f"Organisations/{org}", {"OrganisationType": KEYWORD})

    def op_org_required(self, op: OpRecord) -> None:
        """A required field emptied, or filled again."""
        handle = self._pick("org")
        field_name = self.rng.choice(("OrganisationPostCode", "OrganisationCity", "OrganisationAddress"))
        fill = self.rng.random() < 0.55
        value = self._org_fields()[field_name] if fill else ""
        org = self._org_id(handle)
        op.detail = {"org": org, field_name: value}
        self._touch(op, f"webcrm:organisation:{org}")
        self._ui("webcrm", "PUT", f"Organisations/{org}", {field_name: value})

    def op_org_delete(self, op: OpRecord) -> None:
        handle = self._pick("org")
        org = self._org_id(handle)
        op.detail = {"org": org}
        self._touch(op, f"webcrm:organisation:{org}")
        # What the delete takes with it (persons and deliveries the sync made included), as the screen shows it.
        self.view.refresh(force=True)
        cascade = {"person": [p["PersonId"] for p in self.view.w("Persons").values()
                              if p.get("PersonOrganisationId") == org],
                   "delivery": [d["DeliveryId"] for d in self.view.w("Deliveries").values()
                                if d.get("DeliveryOrganisationId") == org]}
        self._ui("webcrm", "DELETE", f"Organisations/{org}", {})
        handle.alive = False
        self.deleted["organisation"][str(org)] = op.n
        for entity, ids in cascade.items():
            for ident in ids:
                self.deleted[entity][str(ident)] = op.n
                self._touch(op, f"webcrm:{entity}:{ident}")
        for person in self.handles["person"]:
            if person.extra.get("org") is handle and person.alive:
                person.alive = False
                self.deleted["person"][str(person.key)] = op.n
        for delivery in self.handles["delivery"]:
            if delivery.extra.get("org") is handle and delivery.alive:
                delivery.alive = False
                self.deleted["delivery"][str(delivery.key)] = op.n

    def _debtor_values(self) -> dict[str, Any]:
        rng = self.rng
        postcode, city = rng.choice(CITIES)
        n = self._next()
        return {"Name": f"{rng.choice(LAST)} {rng.choice(COMPANY_WORDS)} {rng.choice(SUFFIXES)} u{n}",
                "Address1": f"{rng.choice(STREETS)} {rng.randrange(1, 99)}", "ZipCode": postcode, "City": city,
                "Phone": self._phone(), "CompanyRegNo": f"{rng.randrange(10000000, 99999999)}",
                "InvoiceEmail": f"bogholderi{n}@kunde.dk", "Vat": rng.choice(("U25", "EU", "")),
                "EAN": f"57{rng.randrange(10**10, 10**11)}", "Payment": rng.choice(("Netto 8", "Netto 30", "LM+30")),
                "Group": rng.choice(("Indland", "Udland", "Stor"))}

    def op_debtor_edit(self, op: OpRecord) -> None:
        """A person edits a customer's debtor in Uniconta (synced fields, and the ones shown in webCRM)."""
        handle = self._pick("org")
        values = self._debtor_values()
        chosen = self.rng.sample(sorted(values), self.rng.randint(1, 3))
        fields = {k: values[k] or None for k in chosen}
        org = self._org_id(handle)
        self.view.refresh()
        debtor = self.view.debtor_of(org)
        if debtor is None:
            raise Gone(f"organisation {org} has no debtor (yet)")
        account = debtor["Account"]
        op.detail = {"account": account, "org": org, **fields}
        self._touch(op, f"uniconta:debtor:{account}", f"webcrm:organisation:{org}")
        self._ui("uniconta", "PUT", "Debtor", {"Account": account, **fields})

    def op_debtor_create(self, op: OpRecord) -> None:
        """A debtor made in Uniconta (create_from_uniconta is off: never pushed to webCRM)."""
        values = self._debtor_values()
        account = f"U{self._next()}"
        handle = self._add("debtor", account)
        op.detail = {"debtor": handle.name, "account": account}
        self._touch(op, f"uniconta:debtor:{account}")
        self._ui("uniconta", "POST", "Debtor", {"Account": account, **values})

    def op_debtor_delete(self, op: OpRecord) -> None:
        """A customer's debtor deleted in Uniconta (refused while it has contacts or orders)."""
        handle = self._pick("org")
        org = self._org_id(handle)
        self.view.refresh()
        debtor = self.view.debtor_of(org)
        if debtor is None:
            raise Gone(f"organisation {org} has no debtor")
        account = debtor["Account"]
        op.detail = {"account": account, "org": org}
        self._touch(op, f"uniconta:debtor:{account}", f"webcrm:organisation:{org}")
        self._ui("uniconta", "DELETE", "Debtor", {"Account": account})
        self.deleted["debtor"][account] = op.n
        self.debtor_deleted[org] = op.n

    # ------------------------------------------------------------------ persons and contacts

    def op_person_create(self, op: OpRecord) -> None:
        org_handle = self._pick_customer()
        first, last = self._person_name()
        email = self._email(first, last)
        reuse = self.rng.random() < 0.04
        title, mobile = self.rng.choice(TITLES), self._phone()
        no_email = self.rng.random() < 0.05
        handle = self._add("person", org=org_handle)
        org = self._org_id(org_handle)
        if reuse:  # the same address as another person on the organisation: maybe ambiguous
            same = [p for p in self.view.w("Persons").values() if p.get("PersonOrganisationId") == org
                    and p.get("PersonEmail")]
            if same:
                email = same[0]["PersonEmail"]
        fields = {"PersonOrganisationId": org, "PersonFirstName": first, "PersonLastName": last,
                  "PersonEmail": "" if no_email else email, "PersonMobilePhone": mobile, "PersonTitle": title,
                  "PersonStatus": "Active"}
        op.detail = {"person": handle.name, "org": org, "email": fields["PersonEmail"]}
        record = self._ui("webcrm", "POST", "Persons", fields)
        handle.key = int(record["PersonId"])
        op.detail["id"] = handle.key
        self._touch(op, f"webcrm:person:{handle.key}", f"webcrm:organisation:{org}")

    def _person_values(self) -> dict[str, Any]:
        first, last = self._person_name()
        return {"PersonFirstName": first, "PersonLastName": last, "PersonEmail": self._email(first, last),
                "PersonMobilePhone": self._phone(), "PersonTitle": self.rng.choice(TITLES)}

    def _person_id(self, handle: Handle | None) -> int:
        if handle is None or handle.key is None or not handle.alive:
            raise Gone("no person")
        return int(handle.key)

    def op_person_edit(self, op: OpRecord) -> None:
        handle = self._pick("person")
        values = self._person_values()
        fields = {k: values[k] for k in self.rng.sample(sorted(values), self.rng.randint(1, 2))}
        pid = self._person_id(handle)
        op.detail = {"person": pid, **fields}
        self._touch(op, f"webcrm:person:{pid}")
        self._ui("webcrm", "PUT", f"Persons/{pid}", fields)

    def op_person_move(self, op: OpRecord) -> None:
        handle = self._pick("person")
        target = self._pick("org")
        pid, org = self._person_id(handle), self._org_id(target)
        if handle is not None and handle.extra.get("org") is target:
            raise Gone("already there")
        op.detail = {"person": pid, "to_org": org}
        self._touch(op, f"webcrm:person:{pid}", f"webcrm:organisation:{org}")
        self._ui("webcrm", "PUT", f"Persons/{pid}", {"PersonOrganisationId": org})
        assert handle is not None
        handle.extra["org"] = target
        self.moved_in_webcrm[pid] = op.n

    def op_person_status(self, op: OpRecord) -> None:
        """A person resigns, or is made active again."""
        handle = self._pick("person")
        resign = self.rng.random() < 0.6
        pid = self._person_id(handle)
        status = "Resigned" if resign else "Active"
        op.detail = {"person": pid, "status": status}
        self._touch(op, f"webcrm:person:{pid}")
        self._ui("webcrm", "PUT", f"Persons/{pid}", {"PersonStatus": status})

    def op_person_delete(self, op: OpRecord) -> None:
        handle = self._pick("person")
        pid = self._person_id(handle)
        op.detail = {"person": pid}
        self._touch(op, f"webcrm:person:{pid}")
        self._ui("webcrm", "DELETE", f"Persons/{pid}", {})
        assert handle is not None
        handle.alive = False
        self.deleted["person"][str(pid)] = op.n

    def _contact_values(self) -> dict[str, Any]:
        first, last = self._person_name()
        return {"Name": f"{first} {last}", "Email": self._email(first, last), "Mobil": self._phone(),
                "Title": self.rng.choice(TITLES) or None}

    def _some_contact(self) -> tuple[int, int | None]:
        """(contact RowId, its person id) of a walk person's contact or a contact the walk made."""
        use_person = self.rng.random() < 0.7 or not self.handles["contact"]
        person, contact = (self._pick("person"), None) if use_person else (None, self._pick("contact"))
        self.view.refresh()
        if person is not None:
            pid = self._person_id(person)
            row = self.view.contact_of(pid)
            if row is None:
                raise Gone(f"person {pid} has no contact (yet)")
            return int(row["RowId"]), pid
        if contact is None or contact.key is None or not contact.alive:
            raise Gone("no contact")
        linked = self.view.person_of(int(contact.key))
        return int(contact.key), (int(linked["PersonId"]) if linked else None)

    def op_contact_edit(self, op: OpRecord) -> None:
        values = self._contact_values()
        fields = {k: values[k] for k in self.rng.sample(sorted(values), self.rng.randint(1, 2))}
        rowid, pid = self._some_contact()
        op.detail = {"contact": rowid, **fields}
        self._touch(op, f"uniconta:contact:{rowid}", *([f"webcrm:person:{pid}"] if pid else []))
        self._ui("uniconta", "PUT", "Contact", {"RowId": rowid, **fields})

    def op_contact_create(self, op: OpRecord) -> None:
        """A contact added to a customer's debtor in Uniconta (becomes a person in webCRM)."""
        org_handle = self._pick_customer()
        values = self._contact_values()
        no_email = self.rng.random() < 0.05
        handle = self._add("contact", org=org_handle)
        org = self._org_id(org_handle)
        self.view.refresh()
        debtor = self.view.debtor_of(org)
        if debtor is None:
            raise Gone(f"organisation {org} has no debtor (yet)")
        body = {"DCType": 1, "DCAccount": debtor["Account"], **values}
        if no_email:
            body["Email"] = None
        op.detail = {"contact": handle.name, "account": debtor["Account"], "email": body["Email"]}
        record = self._ui("uniconta", "POST", "Contact", body)
        handle.key = int(record["RowId"])
        op.detail["rowid"] = handle.key
        self._touch(op, f"uniconta:contact:{handle.key}", f"uniconta:debtor:{debtor['Account']}")

    def op_contact_delete(self, op: OpRecord) -> None:
        rowid, pid = self._some_contact()
        op.detail = {"contact": rowid, "person": pid}
        self._touch(op, f"uniconta:contact:{rowid}", *([f"webcrm:person:{pid}"] if pid else []))
        self._ui("uniconta", "DELETE", "Contact", {"RowId": rowid})
        self.deleted["contact"][str(rowid)] = op.n
        for contact in self.handles["contact"]:
            if contact.key == rowid:
                contact.alive = False

    def op_contact_move(self, op: OpRecord) -> None:
        """A contact moved to another debtor in Uniconta (journaled only: webCRM persons cannot move by API)."""
        target = self._pick("org")
        rowid, pid = self._some_contact()
        org = self._org_id(target)
        debtor = self.view.debtor_of(org)
        if debtor is None:
            raise Gone(f"organisation {org} has no debtor")
        op.detail = {"contact": rowid, "to_account": debtor["Account"]}
        self._touch(op, f"uniconta:contact:{rowid}", *([f"webcrm:person:{pid}"] if pid else []))
        self._ui("uniconta", "PUT", "Contact", {"RowId": rowid, "DCAccount": debtor["Account"]})
        self.moved_in_uniconta[rowid] = op.n

    # ------------------------------------------------------------------ users and employees

    def op_user_create(self, op: OpRecord) -> None:
        first, last = self._person_name()
        email = self._email(first, last, "firma.dk")
        roll = self.rng.random()
        handle = self._add("user")
        fields = {"UserName": f"{first} {last}", "UserEmail": email, "UserMobilePhone": self._phone(),
                  "UserInitials": (first[0] + last.split()[-1][0]).upper()}
        if roll < 0.08:
            fields["UserEmail"] = ""  # no e-mail: never matched, never an employee
        elif roll < 0.14:
            self.view.refresh()
            unlinked = sorted(e["Email"] for e in self.view.u("Employee")
                              if e.get("Email") and not e.get("WebcrmUserId"))
            if unlinked:
                fields["UserEmail"] = unlinked[0]  # an employee made in Uniconta gets its user
        op.detail = {"user": handle.name, "email": fields["UserEmail"]}
        record = self._ui("webcrm", "POST", "Users", fields)
        handle.key = int(record["UserId"])
        handle.extra["active"] = True
        op.detail["id"] = handle.key
        self._touch(op, f"webcrm:user:{handle.key}")

    def _user_id(self, handle: Handle | None) -> int:
        if handle is None or handle.key is None or not handle.alive:
            raise Gone("no user")
        return int(handle.key)

    def op_user_edit(self, op: OpRecord) -> None:
        handle = self._pick("user")
        first, last = self._person_name()
        values = {"UserName": f"{first} {last}", "UserEmail": self._email(first, last, "firma.dk"),
                  "UserMobilePhone": self._phone()}
        fields = {k: values[k] for k in self.rng.sample(sorted(values), self.rng.randint(1, 2))}
        uid = self._user_id(handle)
        op.detail = {"user": uid, **fields}
        self._touch(op, f"webcrm:user:{uid}")
        self._ui("webcrm", "PUT", f"Users/{uid}", fields)

    def op_user_active(self, op: OpRecord) -> None:
        """A user leaves (or comes back): webCRM changes that without a hook; reconciliation follows it."""
        handle = self._pick("user")
        uid = self._user_id(handle)
        assert handle is not None
        active = not handle.extra.get("active", True)
        op.detail = {"user": uid, "active": active}
        self._touch(op, f"webcrm:user:{uid}")
        self._admin("webcrm", "PUT", f"/users/{uid}/active", {"active": active})
        handle.extra["active"] = active

    def op_employee_edit(self, op: OpRecord) -> None:
        handle = self._pick("user")
        first, last = self._person_name()
        values = {"Name": f"{first} {last}", "Email": self._email(first, last, "firma.dk"), "Mobil": self._phone()}
        fields = {k: values[k] for k in self.rng.sample(sorted(values), self.rng.randint(1, 2))}
        uid = self._user_id(handle)
        self.view.refresh()
        employee = self.view.employee_of(uid)
        if employee is None:
            raise Gone(f"user {uid} has no employee (yet)")
        number = employee["Number"]
        op.detail = {"employee": number, "user": uid, **fields}
        self._touch(op, f"uniconta:employee:{number}", f"webcrm:user:{uid}")
        self._ui("uniconta", "PUT", "Employee", {"Number": number, **fields})

    def op_employee_create(self, op: OpRecord) -> None:
        """An employee made in Uniconta: linked to an active unlinked user with its e-mail, else left alone."""
        first, last = self._person_name()
        email = self._email(first, last, "firma.dk")
        number = f"E{self._next()}"
        match = self.rng.random() < 0.3
        handle = self._add("employee", number)
        if match:
            self.view.refresh()
            unlinked = sorted(u["UserEmail"] for u in self.view.w("Users").values()
                              if u.get("UserEmail") and not u.get("UserCustom1"))
            if unlinked:
                email = unlinked[0]
        op.detail = {"employee": number, "email": email}
        self._touch(op, f"uniconta:employee:{number}")
        self._ui("uniconta", "POST", "Employee", {"Number": number, "Name": f"{first} {last}", "Email": email,
                                                  "Mobil": self._phone()})
        assert handle is not None

    def op_employee_delete(self, op: OpRecord) -> None:
        handle = self._pick("user")
        uid = self._user_id(handle)
        self.view.refresh()
        employee = self.view.employee_of(uid)
        if employee is None:
            raise Gone(f"user {uid} has no employee")
        number = employee["Number"]
        op.detail = {"employee": number, "user": uid}
        self._touch(op, f"uniconta:employee:{number}", f"webcrm:user:{uid}")
        self._ui("uniconta", "DELETE", "Employee", {"Number": number})
        self.deleted["employee"][number] = op.n

    # ------------------------------------------------------------------ items

    def _item_values(self) -> dict[str, Any]:
        rng = self.rng
        cost = round(rng.uniform(1, 400), 2)
        return {"Name": f"{rng.choice(GROUPS)} {rng.choice(('standard', 'pro', 'mini', 'galv.'))} {self._next()}",
                "CostPrice": cost, "SalesPrice1": round(cost * rng.uniform(1.1, 1.9), 2),
                "Unit": rng.choice(UNITS), "Group": rng.choice(GROUPS)}

    def op_item_create(self, op: OpRecord) -> None:
        values = self._item_values()
        number = f"{self.rng.randrange(10, 99)}-{self._next():04d}"
        handle = self._add("item", number)
        op.detail = {"item": number, "price": values["SalesPrice1"]}
        self._touch(op, f"uniconta:item:{number}")
        self._ui("uniconta", "POST", "InvItem", {"Item": number, **values})
        assert handle is not None

    def _item(self) -> str:
        handle = self._pick("item")
        if handle is None or not handle.alive:
            raise Gone("no item")
        return str(handle.key)

    def op_item_edit(self, op: OpRecord) -> None:
        values = self._item_values()
        fields = {k: values[k] for k in self.rng.sample(sorted(values), self.rng.randint(1, 3))}
        number = self._item()
        op.detail = {"item": number, **fields}
        self._touch(op, f"uniconta:item:{number}")
        self._ui("uniconta", "PUT", "InvItem", {"Item": number, **fields})

    def op_item_block(self, op: OpRecord) -> None:
        handle = self._pick("item")
        if handle is None:
            raise Gone("no item")
        blocked = not handle.extra.get("blocked", False)
        op.detail = {"item": handle.key, "blocked": blocked}
        self._touch(op, f"uniconta:item:{handle.key}")
        self._ui("uniconta", "PUT", "InvItem", {"Item": handle.key, "Blocked": blocked})
        handle.extra["blocked"] = blocked

    def op_item_delete(self, op: OpRecord) -> None:
        handle = self._pick("item")
        if handle is None:
            raise Gone("no item")
        op.detail = {"item": handle.key}
        self._touch(op, f"uniconta:item:{handle.key}")
        handle.alive = False  # the walk leaves it alone from now on, also when Uniconta refuses (on an order)
        self._ui("uniconta", "DELETE", "InvItem", {"Item": handle.key})
        self.deleted["item"][str(handle.key)] = op.n

    # ------------------------------------------------------------------ deliveries and lines

    def _line_fields(self, delivery_id: int) -> dict[str, Any]:
        rng = self.rng
        item = self._pick("item")
        qty = rng.choice((1, 1, 2, 3, 5, 10, 0.5, 12.5, -1))
        discount = rng.choice((0, 0, 0, 5, 10, 12.5, 100))
        text_line = rng.random() < 0.12
        cost_zero = rng.random() < 0.05
        price, cost = round(rng.uniform(5, 900), 2), round(rng.uniform(1, 400), 2)
        if text_line or item is None:
            return {"QuotationLineOpportunityId": delivery_id, "QuotationLineData1": "",
                    "QuotationLineMemo": rng.choice(LINE_TEXTS), "QuotationLineQuantity": qty,
                    "QuotationLinePrice": price, "QuotationLineDiscount": discount, "QuotationLineCostPrice": 0}
        return {"QuotationLineOpportunityId": delivery_id, "QuotationLineData1": str(item.key),
                "QuotationLineData2": f"Vare {item.key}", "QuotationLineQuantity": qty,
                "QuotationLinePrice": price, "QuotationLineDiscount": discount,
                "QuotationLineCostPrice": 0 if cost_zero else cost,
                "QuotationLineComment": rng.choice(("", "", "Leveres fredag"))}

    def _delivery(self) -> tuple[Handle, int]:
        handle = self._pick("delivery")
        if handle is None or handle.key is None or not handle.alive:
            raise Gone("no delivery")
        return handle, int(handle.key)

    def op_delivery_create(self, op: OpRecord) -> None:
        org_handle = self._pick_customer()
        user = self._pick("user")
        currency = self.rng.choice(("",) * 9 + ("EUR",))
        n = self._next()
        lines = self.rng.randint(0, 3)
        handle = self._add("delivery", org=org_handle)
        org = self._org_id(org_handle)
        fields = {"DeliveryOrganisationId": org, "DeliveryDescription": f"Ordre {n}", "DeliveryNumber": f"L-{n}",
                  "DeliveryResponsible": int(user.key) if user is not None and user.key is not None else 0,
                  "DeliveryCurrencyName": currency, "DeliveryErpStatus": "NotReadyForSynchronization"}
        op.detail = {"delivery": handle.name, "org": org}
        record = self._ui("webcrm", "POST", "Deliveries", fields)
        handle.key = int(record["DeliveryId"])
        op.detail["id"] = handle.key
        self._touch(op, f"webcrm:delivery:{handle.key}")
        handle.extra["lines"] = []
        for _ in range(lines):
            line = self._ui("webcrm", "POST", "QuotationLines", self._line_fields(handle.key))
            handle.extra["lines"].append(int(line["QuotationLineId"]))

    def op_line_add(self, op: OpRecord) -> None:
        handle, delivery = self._delivery()
        fields = self._line_fields(delivery)
        op.detail = {"delivery": delivery, "item": fields["QuotationLineData1"], "qty": fields["QuotationLineQuantity"]}
        self._touch(op, f"webcrm:delivery:{delivery}")
        line = self._ui("webcrm", "POST", "QuotationLines", fields)
        handle.extra.setdefault("lines", []).append(int(line["QuotationLineId"]))
        op.detail["line"] = line["QuotationLineId"]

    def _line(self, handle: Handle) -> int:
        lines = handle.extra.get("lines") or []
        index = self.rng.randrange(len(lines)) if lines else -1
        if index < 0:
            raise Gone("the delivery has no lines")
        return int(lines[index])

    def op_line_change(self, op: OpRecord) -> None:
        handle, delivery = self._delivery()
        line = self._line(handle)
        fields: dict[str, Any] = {}
        roll = self.rng.random()
        qty, price, discount = self.rng.choice((1, 2, 4, 7, 0.25)), round(self.rng.uniform(5, 900), 2), \
            self.rng.choice((0, 5, 15, 33.3))
        if roll < 0.4:
            fields["QuotationLineQuantity"] = qty
        elif roll < 0.75:
            fields["QuotationLinePrice"] = price
        else:
            fields["QuotationLineDiscount"] = discount
        op.detail = {"delivery": delivery, "line": line, **fields}
        self._touch(op, f"webcrm:delivery:{delivery}")
        self._ui("webcrm", "PUT", f"QuotationLines/{line}", fields)

    def op_line_remove(self, op: OpRecord) -> None:
        handle, delivery = self._delivery()
        line = self._line(handle)
        op.detail = {"delivery": delivery, "line": line}
        self._touch(op, f"webcrm:delivery:{delivery}")
        handle.extra["lines"].remove(line)
        self._ui("webcrm", "DELETE", f"QuotationLines/{line}", {})

    def op_delivery_ready(self, op: OpRecord) -> None:
        _handle, delivery = self._delivery()
        op.detail = {"delivery": delivery}
        self._touch(op, f"webcrm:delivery:{delivery}")
        self._ui("webcrm", "PUT", f"Deliveries/{delivery}", {"DeliveryErpStatus": READY})
        self.ever_ready.add(delivery)

    def op_delivery_edit(self, op: OpRecord) -> None:
        _handle, delivery = self._delivery()
        n = self._next()
        field_name = self.rng.choice(("DeliveryDescription", "DeliveryNumber"))
        value = f"Ordre {n} (rettet)" if field_name == "DeliveryDescription" else f"L-{n}"
        op.detail = {"delivery": delivery, field_name: value}
        self._touch(op, f"webcrm:delivery:{delivery}")
        self._ui("webcrm", "PUT", f"Deliveries/{delivery}", {field_name: value})

    def op_order_invoice(self, op: OpRecord) -> None:
        """An order posted (invoiced) in Uniconta: the order is gone, changes are no longer sent."""
        _handle, delivery = self._delivery()
        self.view.refresh()
        order = self.view.order_of(delivery)
        if order is None:
            raise Gone(f"delivery {delivery} has no order")
        op.detail = {"delivery": delivery, "order": order["OrderNumber"]}
        self._touch(op, f"webcrm:delivery:{delivery}")
        self._admin("uniconta", "POST", f"/invoice/{order['OrderNumber']}")
        self.invoiced[delivery] = op.n

    # ------------------------------------------------------------------ many records in a row

    def op_bulk_edit(self, op: OpRecord) -> None:
        """A person updates many records of one kind in a row (a price adjustment, new payment terms for a
        group of customers, ...): a burst of webhooks that the sync takes into a batch job."""
        kind = self.rng.choice(("item", "org", "person", "debtor", "contact"))
        count = self.rng.randint(6, 12)
        factor = self.rng.choice((1.02, 1.05, 0.97))
        phones = [self._phone() for _ in range(count)]
        title = self.rng.choice(TITLES) or "Indkøber"
        payment = self.rng.choice(("Netto 14", "Netto 30", "LM+15"))
        picked = [self._pick({"debtor": "org", "contact": "person"}.get(kind, kind)) for _ in range(count)]
        self.view.refresh()
        done = 0
        for handle, phone in zip(picked, phones, strict=True):
            if handle is None or handle.key is None or not handle.alive:
                continue
            try:
                if kind == "item":
                    item = (self.view.uniconta.get("InvItem") or {})
                    row = next((r for r in item.values() if r.get("Item") == handle.key), None)
                    if row is None:
                        continue
                    price = round(float(row.get("SalesPrice1") or 0) * factor, 2)
                    self._touch(op, f"uniconta:item:{handle.key}")
                    self._ui("uniconta", "PUT", "InvItem", {"Item": handle.key, "SalesPrice1": price})
                elif kind == "org":
                    self._touch(op, f"webcrm:organisation:{handle.key}")
                    self._ui("webcrm", "PUT", f"Organisations/{handle.key}", {"OrganisationTelephone": phone})
                elif kind == "person":
                    self._touch(op, f"webcrm:person:{handle.key}")
                    self._ui("webcrm", "PUT", f"Persons/{handle.key}", {"PersonTitle": title})
                elif kind == "debtor":
                    debtor = self.view.debtor_of(int(handle.key))
                    if debtor is None:
                        continue
                    self._touch(op, f"uniconta:debtor:{debtor['Account']}", f"webcrm:organisation:{handle.key}")
                    self._ui("uniconta", "PUT", "Debtor", {"Account": debtor["Account"], "Payment": payment})
                else:
                    contact = self.view.contact_of(int(handle.key))
                    if contact is None:
                        continue
                    self._touch(op, f"uniconta:contact:{contact['RowId']}", f"webcrm:person:{handle.key}")
                    self._ui("uniconta", "PUT", "Contact", {"RowId": contact["RowId"], "Title": title})
                done += 1
            except Gone:
                continue
        op.detail = {"kind": kind, "records": done}
        if not done:
            raise Gone(f"no {kind} to edit")

    # ------------------------------------------------------------------ both sides within a second

    def op_both_sides(self, op: OpRecord) -> None:
        """The same pair edited in webCRM and in Uniconta within a second: the same field or different ones."""
        kind = self.rng.choice(("org", "person", "user"))
        same = self.rng.random() < 0.5
        pause = self.rng.uniform(0.0, 0.9)
        if kind == "org":
            handle = self._pick("org")
            w_values, u_values = self._org_fields(), self._debtor_values()
            pairs = [("OrganisationName", "Name"), ("OrganisationCity", "City"),
                     ("OrganisationTelephone", "Phone"), ("OrganisationVatNumber", "CompanyRegNo")]
        elif kind == "person":
            handle = self._pick("person")
            w_values, u_values = self._person_values(), self._contact_values()
            pairs = [("PersonEmail", "Email"), ("PersonMobilePhone", "Mobil"), ("PersonTitle", "Title"),
                     ("PersonLastName", "Name")]
        else:
            handle = self._pick("user")
            first, last = self._person_name()
            w_values = {"UserName": f"{first} {last}", "UserEmail": self._email(first, last, "firma.dk"),
                        "UserMobilePhone": self._phone()}
            first, last = self._person_name()
            u_values = {"Name": f"{first} {last}", "Email": self._email(first, last, "firma.dk"),
                        "Mobil": self._phone()}
            pairs = [("UserName", "Name"), ("UserEmail", "Email"), ("UserMobilePhone", "Mobil")]
        a = pairs[self.rng.randrange(len(pairs))]
        b = a if same else pairs[(pairs.index(a) + 1 + self.rng.randrange(len(pairs) - 1)) % len(pairs)]
        w_field, u_field = a[0], b[1]
        self.view.refresh()
        if kind == "org":
            key = self._org_id(handle)
            other = self.view.debtor_of(key)
            if other is None:
                raise Gone(f"organisation {key} has no debtor (yet)")
            path, ukey, target = f"Organisations/{key}", {"Account": other["Account"]}, "Debtor"
            records = [f"webcrm:organisation:{key}", f"uniconta:debtor:{other['Account']}"]
        elif kind == "person":
            key = self._person_id(handle)
            other = self.view.contact_of(key)
            if other is None:
                raise Gone(f"person {key} has no contact (yet)")
            path, ukey, target = f"Persons/{key}", {"RowId": other["RowId"]}, "Contact"
            records = [f"webcrm:person:{key}", f"uniconta:contact:{other['RowId']}"]
        else:
            key = self._user_id(handle)
            other = self.view.employee_of(key)
            if other is None:
                raise Gone(f"user {key} has no employee (yet)")
            path, ukey, target = f"Users/{key}", {"Number": other["Number"]}, "Employee"
            records = [f"webcrm:user:{key}", f"uniconta:employee:{other['Number']}"]
        op.detail = {"pair": records, "webcrm": {w_field: w_values[w_field]}, "uniconta": {u_field: u_values[u_field]},
                     "apart_s": round(pause, 2)}
        self._touch(op, *records)
        self._ui("webcrm", "PUT", path, {w_field: w_values[w_field]})
        time.sleep(pause)
        self._ui("uniconta", "PUT", target, {**ukey, u_field: u_values[u_field]})


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Phase:
    start: float  # share of the run's operations
    end: float
    name: str
    webcrm: dict[str, Any] = field(default_factory=dict)
    uniconta: dict[str, Any] = field(default_factory=dict)
    kill: str = ""  # "pool" | "worker" | "pool+worker": SIGKILL at the phase's middle


FAULT_PHASES = (
    Phase(0.00, 0.10, "clean"),
    Phase(0.10, 0.20, "webhooks dropped", {"webhook_drop_rate": 0.2}, {"webhook_drop_rate": 0.2}),
    Phase(0.20, 0.30, "webhooks duplicated", {"webhook_duplicate_rate": 0.35}, {"webhook_duplicate_rate": 0.35}),
    Phase(0.30, 0.40, "webhooks reordered", {"webhook_reorder_window": 6}, {"webhook_reorder_window": 6}),
    Phase(0.40, 0.47, "webhooks delayed", {"webhook_delay_ms": 120}, {"webhook_delay_ms": 120}),
    Phase(0.47, 0.56, "API errors", {"error_rate": 0.06, "error_status": 503},
          {"error_rate": 0.06, "error_status": 502}),
    Phase(0.56, 0.62, "429 storm", {"error_rate": 0.5, "error_status": 429}, {"error_rate": 0.3, "error_status": 429}),
    Phase(0.62, 0.68, "short outage", {}, {"down_seconds": 6}),
    Phase(0.68, 0.78, "worker killed", kill="pool+worker"),
    Phase(0.78, 0.90, "mixed", {"webhook_drop_rate": 0.05, "webhook_duplicate_rate": 0.1, "webhook_reorder_window": 3,
                                "error_rate": 0.02, "error_status": 503},
          {"webhook_drop_rate": 0.05, "webhook_duplicate_rate": 0.1, "webhook_reorder_window": 3, "error_rate": 0.02,
           "error_status": 500}),
    Phase(0.90, 1.00, "clean"),
)
NO_FAULTS = (Phase(0.0, 1.0, "clean"),)


class Faults:
    """Switches the sandboxes' faults as the walk passes from one phase to the next, and kills the worker."""

    def __init__(self, phases: tuple[Phase, ...], ops: int, seed: int, webcrm: str, uniconta: str,
                 kill: Callable[[str], str], *, whole_worker: bool = True) -> None:
        self.phases, self.ops, self.seed = phases, ops, seed
        self.whole_worker = whole_worker  # off: only pool processes are killed (the whole worker costs ~2 min)
        self.urls = {"webcrm": webcrm, "uniconta": uniconta}
        self.kill = kill
        self.current: Phase | None = None
        self.events: list[str] = []
        self._killed: set[str] = set()

    def phase_of(self, n: int) -> Phase:
        share = n / max(self.ops, 1)
        for phase in self.phases:
            if phase.start <= share < phase.end:
                return phase
        return self.phases[-1]

    def at(self, n: int) -> str:
        """Before operation `n`: switch the faults if a new phase starts; kill in the middle of a kill phase."""
        phase = self.phase_of(n)
        if phase is not self.current:
            self.current = phase
            index = self.phases.index(phase)
            for system, url in self.urls.items():
                h.admin(url, "PUT", "/faults", json=self._clear())
                settings = getattr(phase, system)
                if settings:
                    h.admin(url, "PUT", "/faults", json={**settings, "seed": self.seed * 100 + index})
            self.events.append(f"op {n}: phase '{phase.name}'")
            h.log(f"soak: op {n}: phase '{phase.name}'")
            if phase.name == "short outage":
                self._outage_webcrm_at = n + max(1, int((phase.end - phase.start) * self.ops / 2))
        if phase.name == "short outage" and n == getattr(self, "_outage_webcrm_at", -1):
            h.admin(self.urls["webcrm"], "PUT", "/faults", json={"down_seconds": 4})
            self.events.append(f"op {n}: webCRM down for 4 s")
        if phase.kill and phase.name not in self._killed:
            middle = int((phase.start + phase.end) / 2 * self.ops)
            quarter = int((phase.start * 3 + phase.end) / 4 * self.ops)
            if "pool" in phase.kill and n == quarter:
                self.events.append(f"op {n}: {self.kill('pool')}")
            if n >= middle:
                self._killed.add(phase.name)
                kind = "worker" if "worker" in phase.kill and self.whole_worker else "pool"
                self.events.append(f"op {n}: {self.kill(kind)}")
        return phase.name

    @staticmethod
    def _clear() -> dict[str, Any]:
        return {"latency_ms": 0, "error_rate": 0.0, "down_until": 0.0, "hang_rate": 0.0, "webhook_drop_rate": 0.0,
                "webhook_duplicate_rate": 0.0, "webhook_reorder_window": 0, "webhook_delay_ms": 0, "seed": None}

    def off(self) -> None:
        for url in self.urls.values():
            h.admin(url, "PUT", "/faults", json=self._clear())
