"""Per-flow scenarios for the latency, API-call and burst benchmarks.

A scenario knows how a person changes a record in the flow's source system (through the sandboxes'
admin "UI" routes, which fire the same webhooks as a real edit), which calls in the target sandbox's
call log are the flow's writes, the fewest API calls a correct sync can make per case, and how to
make those calls directly (the baseline: no webhook, receiver, queue or worker).

Only flows whose module exists in `sync/flows/` are offered (`available()`); a flow added later gets
benchmarked by adding its scenario here.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import _harness as h

CASES = ("create", "update", "no-op", "echo")


@dataclass(frozen=True)
class Minimum:
    reads: int
    writes: int
    why: str

    @property
    def calls(self) -> int:
        return self.reads + self.writes


class Scenario:
    """What differs between flows is in the class attributes and in the edit and baseline methods a
    scenario defines; the clients, the UI edits and what counts as a write are shared."""

    flow: str = ""
    source: str = ""          # system a person edits; with `entity`, the route that starts the flow
    target: str = ""          # system the flow writes
    entity: str = ""          # the event's entity (journal key)
    collection: str = ""      # the source's UI path (and, for webCRM, API collection), e.g. "Organisations"
    target_word: str = ""     # what the target's write paths contain, e.g. "Debtor"
    minimum: dict[str, Minimum | None] = {}
    echoes = True  # our writes come back as webhooks (two-way flows)

    def __init__(self, stack: h.Stack) -> None:
        self.stack = stack
        self._numbers = itertools.count(1)
        self._webcrm: Any = None
        self._uniconta: Any = None

    # A person's edits; each returns the record id the event carries.
    def stage(self) -> str | None:
        """Edits a create needs before the measured one (e.g. a delivery and its lines before it is
        marked ready); made before the measurement starts. Returns what `create` gets."""
        return None

    def create(self, staged: str | None = None) -> str:
        raise NotImplementedError

    def update(self, record: str) -> None:
        raise NotImplementedError

    def noop(self, record: str) -> None:
        raise NotImplementedError

    def prepare(self) -> None:
        """Anything the flow's records depend on (e.g. a linked organisation for persons)."""

    def is_write(self, call: dict[str, Any]) -> bool:
        return call["method"] in ("POST", "PUT", "DELETE") and self.target_word in call["path"]

    def _ui(self, method: str, path: str, **fields: Any) -> dict[str, Any]:
        """A person's edit in the source system (its sandbox's admin "UI" route fires the real webhook)."""
        proc = self.stack.webcrm if self.source == "webcrm" else self.stack.uniconta
        assert proc
        return h.admin(proc.url, method, f"/ui/{path}", json=fields)

    def synced(self, record: str) -> bool:
        """The target holds the record as the source has it now."""
        raise NotImplementedError

    def direct(self, case: str, record: str) -> Callable[[], None]:
        """The minimum calls for `case` made directly with the API clients (the baseline)."""
        raise NotImplementedError

    def _clients(self) -> tuple[Any, Any]:
        """The API clients `direct` uses, opened (and webCRM logged in) on first use."""
        from sync.clients.uniconta import UnicontaClient
        from sync.clients.webcrm import WebcrmClient

        if self._webcrm is None:
            assert self.stack.webcrm and self.stack.uniconta
            self._webcrm = WebcrmClient(self.stack.webcrm.url, "sandbox-token")
            self._webcrm.login()
            self._uniconta = UnicontaClient(self.stack.uniconta.url, h.COMPANY, "sandbox", "sandbox")
        return self._webcrm, self._uniconta

    def close(self) -> None:
        """Release clients opened for `direct`."""
        for client in (self._webcrm, self._uniconta):
            if client is not None:
                client.close()
        self._webcrm = self._uniconta = None


class Items(Scenario):
    """Uniconta InvItem → webCRM catalogue (QuotationLines/LinkedData), one-way."""

    flow, source, target, entity = "items", "uniconta", "webcrm", "item"
    collection, target_word = "InvItemClient", "LinkedData"
    minimum = {
        "create": Minimum(2, 1, "read the item from Uniconta (a Change URL carries only the key, and an "
                                "unsigned, possibly reordered body cannot be trusted); look the item number up "
                                "in the catalogue before creating (the only guard against a duplicate when a "
                                "create's answer or the Redis link was lost); POST"),
        "update": Minimum(2, 1, "read the item; GET the linked catalogue item (PUT replaces the whole DTO, so "
                                "GET-modify-PUT); PUT"),
        "no-op": Minimum(1, 0, "read the item; the synced projection's fingerprint is unchanged: no webCRM call"),
        "echo": None,  # the catalogue fires no hooks (sandbox and reference §8): nothing comes back
    }
    echoes = False

    def __init__(self, stack: h.Stack) -> None:
        super().__init__(stack)
        self._prices: dict[str, float] = {}
        self._ids: dict[str, Any] = {}

    def create(self, staged: str | None = None) -> str:
        number = f"B-{time.time_ns() % 10**10}-{next(self._numbers)}"
        self._prices[number] = 10.0
        self._ui("POST", self.collection, Item=number, Name=f"Benchmark item {number}", Unit="Piece",
                 Group="Bench", CostPrice=4.0, SalesPrice1=10.0)
        return number

    def update(self, record: str) -> None:
        self._prices[record] = round(self._prices.get(record, 10.0) + 1.25, 2)
        self._ui("PUT", self.collection, Item=record, SalesPrice1=self._prices[record])

    def noop(self, record: str) -> None:
        self._ui("PUT", self.collection, Item=record, Weight=round(time.time() % 100, 3))  # not a synced field

    def synced(self, record: str) -> bool:
        row = self.stack.catalogue().get(record)
        return row is not None and row["QuotationLineLinkedDataItemPrice"] == self._prices.get(record)

    # -- the baseline: the minimum calls, made directly
    def direct(self, case: str, record: str) -> Callable[[], None]:
        from sync.clients.webcrm import sql_literal
        from sync.config import ItemFlow
        from sync.flows.items import CATALOGUE, ID_FIELD, PLACEHOLDER, map_item

        webcrm, uniconta = self._clients()
        cfg = ItemFlow()

        def create() -> None:
            item = uniconta.get_one("InvItemClient", "Item", record)
            list(webcrm.query(f"SELECT * FROM LinkedData WHERE {cfg.number_field} = {sql_literal(record)}"))
            body = {ID_FIELD: 0, "QuotationLineLinkedDataItemEntityType": "Product",
                    **{f"QuotationLineLinkedDataItemData{i}": PLACEHOLDER for i in range(1, 10)},
                    **map_item(item, cfg)}
            self._ids[record] = webcrm.create(CATALOGUE, body)

        def update() -> None:
            item = uniconta.get_one("InvItemClient", "Item", record)
            current = webcrm.get(CATALOGUE, self._ids[record])
            webcrm.update(CATALOGUE, self._ids[record], {**current, **map_item(item, cfg)})

        return {"create": create, "update": update}[case]


ECHO = Minimum(1, 0, "re-read the record our write changed (the webhook is unsigned and may be stale) and see "
                     "that it equals what we wrote (fingerprint / UpdatedBy): no write")


class FromWebcrm(Scenario):
    """A webCRM record → a Uniconta record (two-way flows whose records start in webCRM)."""

    source, target = "webcrm", "uniconta"
    id_field = ""          # "OrganisationId"
    target_entity = ""     # Uniconta entity the baseline writes, e.g. "DebtorClientUser"
    link_field = ""        # the Uniconta user field / property that holds the webCRM id
    back_link = ""         # the webCRM field that holds the Uniconta key

    def __init__(self, stack: h.Stack) -> None:
        super().__init__(stack)
        self._targets: dict[str, dict[str, Any]] = {}

    def fields(self, n: int) -> dict[str, Any]:
        raise NotImplementedError

    def changed(self, n: int) -> dict[str, Any]:
        raise NotImplementedError

    def unsynced(self, n: int) -> dict[str, Any]:
        raise NotImplementedError

    def create(self, staged: str | None = None) -> str:
        n = next(self._numbers)
        return str(self._ui("POST", self.collection, **self.fields(n))[self.id_field])

    def update(self, record: str) -> None:
        self._ui("PUT", f"{self.collection}/{record}", **self.changed(next(self._numbers)))

    def noop(self, record: str) -> None:
        self._ui("PUT", f"{self.collection}/{record}", **self.unsynced(next(self._numbers)))

    def target_body(self, source: dict[str, Any], n: int) -> dict[str, Any]:
        raise NotImplementedError

    def target_key(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"RowId": row["RowId"]}

    # -- the baseline: the minimum calls, made directly
    def direct(self, case: str, record: str) -> Callable[[], None]:
        webcrm, uniconta = self._clients()

        def create() -> None:
            source = webcrm.get(self.collection, int(record))
            uniconta.find(self.target_entity, self.link_field, record)
            row = uniconta.insert(self.target_entity, self.target_body(source, next(self._numbers))) or {}
            self._targets[record] = row
            webcrm.update(self.collection, int(record), {**source, self.back_link: str(row.get("RowId", ""))})

        def update() -> None:
            source = webcrm.get(self.collection, int(record))
            row = uniconta.get_one(self.target_entity, "RowId", self._targets[record]["RowId"]) or {}
            uniconta.update(self.target_entity, {**row, **self.target_body(source, 0), **self.target_key(row)})

        return {"create": create, "update": update}[case]


CUSTOMER = {"OrganisationType": "Kunde", "OrganisationAddress": "Havnegade 1", "OrganisationPostCode": "8000",
            "OrganisationCity": "Aarhus C", "OrganisationCountry": "Danmark"}


class Organisations(FromWebcrm):
    """webCRM organisation (a customer) → Uniconta debtor; the debtor number is written back."""

    flow, entity = "organisations", "organisation"
    collection, id_field, target_word = "Organisations", "OrganisationId", "Debtor"
    target_entity, link_field, back_link = "DebtorClientUser", "WebcrmId", "OrganisationExtraCustom1"
    minimum = {
        "create": Minimum(2, 2, "read the organisation (the hook's Data is unsigned and may be stale); look the "
                                "debtor up by the WebcrmId user field before creating (the duplicate guard); insert "
                                "the debtor with WebcrmId in the body; write the debtor number back to the "
                                "organisation (PUT of the DTO just read). A taken number fails the insert, so no read "
                                "is needed to pick it"),
        "update": Minimum(2, 1, "read the organisation; read the linked debtor (Update replaces the whole record: "
                                "GET-modify-PUT); update the debtor"),
        "no-op": Minimum(1, 0, "read the organisation; the synced fields are as last synced: no other call"),
        "echo": ECHO,
    }

    def fields(self, n: int) -> dict[str, Any]:
        return {**CUSTOMER, "OrganisationName": f"Bench Kunde {time.time_ns() % 10**9}-{n} ApS"}

    def changed(self, n: int) -> dict[str, Any]:
        return {"OrganisationCity": f"Aarhus {n}"}

    def unsynced(self, n: int) -> dict[str, Any]:
        return {"OrganisationWww": f"www.bench{n}.dk"}

    def target_body(self, source: dict[str, Any], n: int) -> dict[str, Any]:
        body = {"Name": source["OrganisationName"], "Address1": source["OrganisationAddress"],
                "ZipCode": source["OrganisationPostCode"], "City": source["OrganisationCity"],
                "WebcrmId": str(source["OrganisationId"])}
        return {**body, "Account": f"D{time.time_ns() % 10**9}{n}"} if n else body


class Users(FromWebcrm):
    """webCRM user → Uniconta employee (a sales person); the employee Number is written back."""

    flow, entity = "users", "user"
    collection, id_field, target_word = "Users", "UserId", "Employee"
    target_entity, link_field, back_link = "EmployeeClientUser", "WebcrmUserId", "UserCustom1"
    minimum = {
        "create": Minimum(2, 2, "read the user; look the employee up by the link field and e-mail before creating; "
                                "insert the employee with the UserId in the body; write its Number back to the user"),
        "update": Minimum(2, 1, "read the user; read the linked employee (GET-modify-PUT); update the employee"),
        "no-op": Minimum(1, 0, "read the user; name, e-mail and mobile as last synced: no other call"),
        "echo": ECHO,
    }

    def fields(self, n: int) -> dict[str, Any]:
        tag = f"{time.time_ns() % 10**7}{n}"
        letters = "".join(chr(65 + int(d)) for d in tag[-3:])
        return {"UserName": f"Bench Sælger {tag}", "UserInitials": f"B{letters}", "UserEmail": f"bench{tag}@firma.dk"}

    def changed(self, n: int) -> dict[str, Any]:
        return {"UserMobilePhone": f"+45 20 30 {n % 100:02d} {n // 100 % 100:02d}"}

    def unsynced(self, n: int) -> dict[str, Any]:
        return {"UserPhone": f"+45 70 {n % 100:02d} 00 00"}

    def target_body(self, source: dict[str, Any], n: int) -> dict[str, Any]:
        body = {"Name": source["UserName"], "Email": source["UserEmail"], "Mobil": source.get("UserMobilePhone"),
                "WebcrmUserId": str(source["UserId"])}
        return {**body, "Number": f"N{time.time_ns() % 10**6}{n}"} if n else body


def customer(stack: h.Stack, name: str) -> tuple[int, str]:
    """A customer organisation whose debtor the organisation flow has made and linked."""
    assert stack.webcrm and stack.uniconta
    org = h.admin(stack.webcrm.url, "POST", "/ui/Organisations",
                  json={**CUSTOMER, "OrganisationName": f"{name} {time.time_ns() % 10**9} A/S"})
    organisation = int(org["OrganisationId"])

    def debtor() -> str | None:
        rows = h.admin(stack.uniconta.url, "GET", "/state")["tables"].get("Debtor") or {}
        found = [r["Account"] for r in rows.values() if (r.get("_user") or {}).get("WebcrmId") == str(organisation)]
        return found[0] if found else None

    account = h.wait_for(debtor, timeout=60, what="the organisation's debtor")
    stack.settle()
    return organisation, account


class ForCustomer(FromWebcrm):
    """A flow whose records belong to a customer organisation linked to its debtor (made in `prepare`)."""

    customer_name = ""

    def __init__(self, stack: h.Stack) -> None:
        super().__init__(stack)
        self.organisation = 0
        self.account = ""

    def prepare(self) -> None:
        self.organisation, self.account = customer(self.stack, self.customer_name)


class Persons(ForCustomer):
    """webCRM person on a linked customer organisation → Uniconta debtor contact; the RowId is written back."""

    flow, entity = "persons", "person"
    collection, id_field, target_word = "Persons", "PersonId", "Contact"
    target_entity, link_field, back_link = "ContactClientUser", "ReferenceId", "PersonCustom1"
    minimum = {
        "create": Minimum(2, 2, "read the person; look the contact up by the link (ReferenceId) and e-mail before "
                                "creating (the organisation's debtor comes from the link cache); insert the contact "
                                "with the PersonId in the body; write its RowId back to the person"),
        "update": Minimum(2, 1, "read the person; read the linked contact (GET-modify-PUT); update the contact"),
        "no-op": Minimum(1, 0, "read the person; synced fields as last synced: no other call"),
        "echo": ECHO,
    }

    customer_name = "Bench Personer"

    def fields(self, n: int) -> dict[str, Any]:
        tag = f"{time.time_ns() % 10**7}{n}"
        return {"PersonOrganisationId": self.organisation, "PersonFirstName": "Bench", "PersonLastName": f"Person {tag}",
                "PersonEmail": f"person{tag}@kunde.dk"}

    def changed(self, n: int) -> dict[str, Any]:
        return {"PersonTitle": f"Indkøber {n}"}

    def unsynced(self, n: int) -> dict[str, Any]:
        return {"PersonDirectPhone": f"+45 70 {n % 100:02d} 11 11"}

    def target_body(self, source: dict[str, Any], n: int) -> dict[str, Any]:
        body = {"Name": f"{source['PersonFirstName']} {source['PersonLastName']}", "Email": source["PersonEmail"],
                "Title": source.get("PersonTitle"), "ReferenceId": str(source["PersonId"])}
        return {**body, "DCType": 1, "DCAccount": self.account} if n else body


class Orders(ForCustomer):
    """webCRM delivery with lines, marked ready for the ERP → Uniconta debtor order with lines."""

    flow, entity = "orders", "delivery"
    collection, id_field, target_word = "Deliveries", "DeliveryId", "DebtorOrder"
    target_entity, link_field, back_link = "DebtorOrderClientUser", "WebcrmDeliveryId", "DeliveryErpId"
    ITEM = "BENCH-VARE-1"
    minimum = {
        "create": Minimum(3, 3, "read the delivery and its lines; look the order up by WebcrmDeliveryId before "
                                "creating (the customer's debtor comes from the link cache); insert the order; "
                                "insert its lines in one InsertList; write the order number and status back to "
                                "the delivery"),
        "update": Minimum(4, 1, "read the delivery and its lines (a hook does not say what changed); read the linked "
                                "order (GET-modify-PUT) and its lines (lines are reconciled by link); update the "
                                "order header"),
        "no-op": Minimum(2, 0, "read the delivery and its lines (line edits touch the delivery too); nothing the order "
                               "holds changed: no Uniconta call"),
        "echo": ECHO,
    }

    customer_name = "Bench Ordre"

    def prepare(self) -> None:
        assert self.stack.uniconta
        super().prepare()
        items = h.admin(self.stack.uniconta.url, "GET", "/state")["tables"].get("InvItem") or {}
        if not any(r.get("Item") == self.ITEM for r in items.values()):
            h.admin(self.stack.uniconta.url, "POST", "/ui/InvItemClient",
                    json={"Item": self.ITEM, "Name": "Bench vare", "SalesPrice1": 100, "CostPrice": 60})
        self.stack.settle()

    def stage(self) -> str | None:
        delivery = self._ui("POST", "Deliveries", DeliveryOrganisationId=self.organisation,
                            DeliveryDescription=f"Bench ordre {next(self._numbers)}")
        did = int(delivery["DeliveryId"])
        self._ui("POST", "QuotationLines", QuotationLineOpportunityId=did, QuotationLineData1=self.ITEM,
                 QuotationLineQuantity=2, QuotationLinePrice=100, QuotationLineCostPrice=60)
        self.stack.settle()
        return str(did)

    def create(self, staged: str | None = None) -> str:
        assert staged is not None
        self._ui("PUT", f"Deliveries/{staged}", DeliveryErpStatus="ReadyForSynchronization")
        return staged

    def changed(self, n: int) -> dict[str, Any]:
        return {"DeliveryDescription": f"Bench ordre, ændret {n}"}

    def unsynced(self, n: int) -> dict[str, Any]:
        return {"DeliveryComment": f"intern note {n}"}

    def direct(self, case: str, record: str) -> Callable[[], None]:
        webcrm, uniconta = self._clients()
        did = int(record)

        def create() -> None:
            delivery = webcrm.get("Deliveries", did)
            lines = webcrm.delivery_lines(did)
            uniconta.find(self.target_entity, self.link_field, record)
            order = uniconta.insert(self.target_entity, {"Account": self.account, self.link_field: record,
                                                         "Remark": delivery.get("DeliveryDescription")}) or {}
            self._targets[record] = order
            uniconta.insert_list("DebtorOrderLineClientUser", [
                {"OrderNumber": order.get("OrderNumber"), "Item": line.get("QuotationLineData1"),
                 "Qty": line.get("QuotationLineQuantity"), "Price": line.get("QuotationLinePrice"),
                 "WebcrmLineId": str(line.get("QuotationLineId"))} for line in lines])
            webcrm.update("Deliveries", did, {**delivery, "DeliveryErpStatus": "Synchronized",
                                              "DeliveryErpId": str(order.get("OrderNumber"))})

        def update() -> None:
            delivery = webcrm.get("Deliveries", did)
            webcrm.delivery_lines(did)
            order = uniconta.get_one(self.target_entity, "RowId", self._targets[record]["RowId"]) or {}
            uniconta.find("DebtorOrderLineClientUser", "OrderNumber", order.get("OrderNumber", 0))
            uniconta.update(self.target_entity, {**order, "Remark": delivery.get("DeliveryDescription")})

        return {"create": create, "update": update}[case]


SCENARIOS: tuple[type[Scenario], ...] = (Items, Organisations, Users, Persons, Orders)


def available(only: tuple[str, ...] = ()) -> list[type[Scenario]]:
    """The scenarios whose flow exists in this tree (only those named in `only`, if given)."""
    return [s for s in SCENARIOS if h.flow_available(s.source, s.entity) and (not only or s.flow in only)]


def missing_flows() -> list[str]:
    """Flows that have a route but no module yet, or a module but no scenario here."""
    from sync.flows import ROUTES

    covered = {s.flow for s in available()}
    flows = {flow for flow, _ in ROUTES.values()}
    return sorted(flows - covered)
