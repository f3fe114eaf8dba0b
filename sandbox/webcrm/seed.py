"""Fake webCRM data: the default setup and the seeders behind POST /_sandbox/seed.

Seeded records are written as if a webCRM user ("Anna Jensen") had created them in the UI, so they
are not the integration's own echo. Seeding fires no hooks (it is set-up, not a change to observe).
Called with the store lock held.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from sandbox.common import demo, fake
from sandbox.webcrm.entities import (
    DELIVERIES,
    LINKED_DATA,
    OPPORTUNITIES,
    ORGANISATIONS,
    PERSONS,
    QUOTATION_LINES,
    USERS,
    EntityDef,
)
from sandbox.webcrm.settings import DEFAULT_UI_USER
from sandbox.webcrm.totals import order_totals

if TYPE_CHECKING:
    from sandbox.webcrm.app import WebcrmSandbox

# Three in five are customers, typed with the default trigger keyword ("Kunde", docs/configuration.md),
# so seeded data syncs under the default configuration; suppliers and partners never become debtors.
ORGANISATION_TYPES = ("Kunde", "Kunde", "Kunde", "Leverandør", "Partner")
ORGANISATION_STATUSES = ("Aktiv", "Aktiv", "Aktiv", "Emne", "Ophørt")
TITLES = ("Direktør", "Indkøber", "Bogholder", "Værkfører", "Salgschef", "Projektleder", "")
DELIVERY_STATUSES = ("New", "Planned", "OnGoing", "Completed")
DEMO_PROSPECT, DEMO_SUPPLIER = "Emne", "Leverandør"  # the demo's organisations that are not customers


def _create(wc: WebcrmSandbox, e: EntityDef, body: dict) -> dict:
    return wc.crm.create(e, body, by=DEFAULT_UI_USER, fire=False)


def _user_ids(wc: WebcrmSandbox) -> list[int]:
    return [r["UserId"] for r in wc.crm.rows(USERS)]


def seed_defaults(wc: WebcrmSandbox) -> None:
    """What a fresh (or reset) sandbox contains: the UI user "Anna Jensen" as user 1."""
    _create(wc, USERS, {
        "UserName": DEFAULT_UI_USER, "UserInitials": demo.ANNA["initials"], "UserEmail": demo.ANNA["email"],
        "UserLoginName": "anna", "UserTitle": demo.ANNA["title"], "UserCurrencyName": "DKK",
        "UserTelephone": "+45 70 20 30 40",
    })


def seed_organisations(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[int]:
    """`count` organisations, each with 1-3 persons."""
    users = _user_ids(wc) or [0]
    ids = []
    for _ in range(count):
        org = _organisation(wc, rng, users)
        ids.append(org["OrganisationId"])
        for _ in range(rng.randint(1, 3)):
            _person(wc, org, org["OrganisationDomain"], rng)
    return ids


def _organisation(wc: WebcrmSandbox, rng: random.Random, users: list[int], kind: str = "") -> dict:
    """A complete organisation (everything a debtor needs); `kind` fixes type and status, else drawn."""
    name = fake.company_name(rng)
    postcode, city = fake.postcode_city(rng)
    domain = fake.email("", name.split()[0], "dk").split("@")[0].strip(".") + ".dk"
    return _create(wc, ORGANISATIONS, {
        "OrganisationName": name,
        "OrganisationAddress": fake.street_address(rng),
        "OrganisationPostCode": postcode,
        "OrganisationCity": city,
        "OrganisationCountry": "Danmark",
        "OrganisationTelephone": fake.phone(rng),
        "OrganisationWww": f"www.{domain}",
        "OrganisationDomain": domain,
        "OrganisationVatNumber": fake.cvr(rng),
        "OrganisationType": kind or rng.choice(ORGANISATION_TYPES),
        "OrganisationStatus": "Aktiv" if kind else rng.choice(ORGANISATION_STATUSES),
        "OrganisationOwner": rng.choice(users),
    })


def _person(wc: WebcrmSandbox, org: dict, domain: str, rng: random.Random) -> dict:
    first, last = fake.person_name(rng)
    return _create(wc, PERSONS, {
        "PersonOrganisationId": org["OrganisationId"],
        "PersonFirstName": first,
        "PersonLastName": last,
        "PersonEmail": fake.email(first, last, domain),
        "PersonDirectPhone": fake.phone(rng),
        "PersonMobilePhone": fake.phone(rng),
        "PersonTitle": rng.choice(TITLES),
        "PersonStatus": "Active",
    })


def seed_persons(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[int]:
    """`count` persons on random existing organisations."""
    orgs = list(wc.crm.rows(ORGANISATIONS))
    if not orgs:
        raise ValueError("entity: seed Organisations first (persons belong to an organisation)")
    ids = []
    for _ in range(count):
        org = rng.choice(orgs)
        domain = org["OrganisationDomain"] or "example.dk"
        ids.append(_person(wc, org, domain, rng)["PersonId"])
    return ids


def seed_users(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[int]:
    return [_user(wc, rng)["UserId"] for _ in range(count)]


def _user(wc: WebcrmSandbox, rng: random.Random, *, numbered: bool = True) -> dict:
    """A salesperson; `numbered` initials (AB17) keep many seeded users apart."""
    first, last = fake.person_name(rng)
    initials = (first[0] + last[0]).upper() + (str(rng.randint(1, 99)) if numbered else "")
    return _create(wc, USERS, {
        "UserName": f"{first} {last}",
        "UserInitials": initials,
        "UserEmail": fake.email(first, last, "example.dk"),
        "UserLoginName": fake.email(first, last, "x").split("@")[0],
        "UserTitle": rng.choice(("Sælger", "Key account manager", "Kundeservice", "Salgschef")),
        "UserTelephone": fake.phone(rng),
        "UserMobilePhone": fake.phone(rng),
        "UserCurrencyName": "DKK",
    })


def seed_linked_data(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[int]:
    """`count` catalogue items (QuotationLines/LinkedData): Data1..4 = number, name, unit, group."""
    ids = []
    labels = wc.settings()["linked_setup"]
    for _ in range(count):
        body = _catalogue_item(fake.item(rng))
        for n in range(5, 10):  # any extra Data field enabled by the admin gets a value too
            if labels.get(str(n)):
                body[f"QuotationLineLinkedDataItemData{n}"] = "-"
        ids.append(_create(wc, LINKED_DATA, body)["QuotationLineLinkedDataItemId"])
    return ids


def _catalogue_item(item: dict) -> dict[str, Any]:
    """A `fake.item` as a catalogue item body (Data1..4 = number, name, unit, group)."""
    return {
        "QuotationLineLinkedDataItemData1": item["number"],
        "QuotationLineLinkedDataItemData2": item["name"],
        "QuotationLineLinkedDataItemData3": item["unit"],
        "QuotationLineLinkedDataItemData4": item["group"],
        "QuotationLineLinkedDataItemItemGroup": item["group"],
        "QuotationLineLinkedDataItemPrice": item["price"],
        "QuotationLineLinkedDataItemCostPrice": item["cost"],
        "QuotationLineLinkedDataItemVatCode": "25",
    }


def _seed_orders(wc: WebcrmSandbox, e: EntityDef, count: int, rng: random.Random) -> list[int]:
    orgs = list(wc.crm.rows(ORGANISATIONS))
    if not orgs:
        raise ValueError("entity: seed Organisations first (orders belong to an organisation)")
    items = list(wc.crm.rows(LINKED_DATA))
    if not items:
        seed_linked_data(wc, 10, rng)
        items = list(wc.crm.rows(LINKED_DATA))
    users = _user_ids(wc) or [0]
    persons_by_org = _persons_by_org(wc)
    p = e.singular
    ids = []
    for _ in range(count):
        org = rng.choice(orgs)
        body: dict[str, Any] = {
            f"{p}PersonId": rng.choice(persons_by_org.get(org["OrganisationId"], [0])),
            f"{p}Number": str(rng.randint(10000, 99999)),
        }
        if e is DELIVERIES:
            body.update({"DeliveryStatus": rng.choice(DELIVERY_STATUSES), "DeliveryResponsible": rng.choice(users)})
        else:
            body.update({"OpportunityLevel": rng.randint(1, 5), "OpportunityAssignedTo": rng.choice(users),
                         "OpportunityPercent": rng.choice((10, 25, 50, 75, 90))})
        order = _order(wc, e, org, body)
        lines = [(rng.choice(items), float(rng.randint(1, 20)), rng.choice((0.0, 0.0, 0.0, 5.0, 10.0)))
                 for _ in range(rng.randint(1, 4))]
        ids.append(_add_lines(wc, e, order, lines))
    wc.store.mark_dirty()
    return ids


def _persons_by_org(wc: WebcrmSandbox) -> dict[int, list[int]]:
    persons_by_org: dict[int, list[int]] = {}
    for person in wc.crm.rows(PERSONS):
        persons_by_org.setdefault(person["PersonOrganisationId"], []).append(person["PersonId"])
    return persons_by_org


def _order(wc: WebcrmSandbox, e: EntityDef, org: dict, body: dict[str, Any]) -> dict:
    """A delivery or opportunity of `org` (lines follow with `_add_lines`)."""
    p = e.singular
    return _create(wc, e, {
        f"{p}OrganisationId": org["OrganisationId"],
        f"{p}Description": f"Ordre til {org['OrganisationName']}"[:200],
        f"{p}CurrencyName": "DKK",
        f"{p}OrderDate": wc.now(),
        **body,
    })


def _add_lines(wc: WebcrmSandbox, e: EntityDef, order: dict, lines: list[tuple[dict, float, float]]) -> int:
    """Quotation lines (catalogue item, quantity, discount %) on `order`, and its totals; the order's id."""
    p = e.singular
    order_id = order[e.id_field]
    lines_table = wc.crm.table(QUOTATION_LINES)
    written = []
    for n, (item, quantity, discount) in enumerate(lines):
        line = QUOTATION_LINES.dto.defaults()
        line.update({
            "QuotationLineId": wc.store.next_id(QUOTATION_LINES.sequence),
            "QuotationLineOpportunityId": order_id,
            "QuotationLineOrganisationId": order[f"{p}OrganisationId"],
            "QuotationLineQuantity": quantity,
            "QuotationLinePrice": item["QuotationLineLinkedDataItemPrice"],
            "QuotationLineListPrice": item["QuotationLineLinkedDataItemPrice"],
            "QuotationLineCostPrice": item["QuotationLineLinkedDataItemCostPrice"],
            "QuotationLineDiscount": discount,
            "QuotationLineVatPercentage": 25.0,
            "QuotationLineSortOrder": (n + 1) * 10,
            "QuotationLineMemo": item["QuotationLineLinkedDataItemData2"],
            "QuotationLineCreatedAt": order[f"{p}CreatedAt"],
            "QuotationLineCreatedBy": DEFAULT_UI_USER,
            "QuotationLineUpdatedAt": order[f"{p}CreatedAt"],
            "QuotationLineUpdatedBy": DEFAULT_UI_USER,
        })
        for d in range(1, 10):
            line[f"QuotationLineData{d}"] = item.get(f"QuotationLineLinkedDataItemData{d}", "")
        lines_table[str(line["QuotationLineId"])] = line
        written.append(line)
    updated = dict(order)
    updated[f"{p}OrderValue"], updated[f"{p}OrderGmValue"] = order_totals(written)
    wc.crm.table(e)[str(order_id)] = updated
    return int(order_id)


def seed_deliveries(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[int]:
    """`count` deliveries on random organisations, each with 1-4 quotation lines from the catalogue."""
    return _seed_orders(wc, DELIVERIES, count, rng)


def seed_opportunities(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[int]:
    return _seed_orders(wc, OPPORTUNITIES, count, rng)


def seed_demo(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[str]:
    """The data `make run` syncs to show every flow: two salespeople; `count` customers (type "Kunde"), a
    prospect and a supplier, with 1-2 persons each; two deliveries of the first customers whose lines are
    Uniconta's demo items (`sandbox.common.demo`), the first marked ready for the ERP, the second not yet."""
    sales = [_user(wc, rng, numbered=False) for _ in range(2)]
    owners = [u["UserId"] for u in sales]
    orgs = []
    for kind in ["Kunde"] * count + [DEMO_PROSPECT, DEMO_SUPPLIER]:
        org = _organisation(wc, rng, owners, kind)
        for _ in range(rng.randint(1, 2)):
            _person(wc, org, org["OrganisationDomain"], rng)
        orgs.append(org)
    items = [_catalogue_item(item) for item in demo.items()]
    persons = _persons_by_org(wc)
    deliveries = []
    for n, (status, picks) in enumerate((("ReadyForSynchronization", items[:3]),
                                         ("NotReadyForSynchronization", items[3:5]))):
        org = orgs[n % count]
        order = _order(wc, DELIVERIES, org, {
            "DeliveryPersonId": persons[org["OrganisationId"]][0], "DeliveryNumber": str(rng.randint(10000, 99999)),
            "DeliveryStatus": "Planned", "DeliveryResponsible": owners[n % 2], "DeliveryErpStatus": status})
        deliveries.append(_add_lines(wc, DELIVERIES, order, [(item, float(rng.randint(1, 12)), 0.0) for item in picks]))
    wc.store.mark_dirty()
    return ([f"Users/{i}" for i in owners] + [f"Organisations/{o['OrganisationId']}" for o in orgs]
            + [f"Deliveries/{i}" for i in deliveries])


SEEDERS = {
    "Organisations": seed_organisations,
    "Persons": seed_persons,
    "Users": seed_users,
    "LinkedData": seed_linked_data,
    "Deliveries": seed_deliveries,
    "Opportunities": seed_opportunities,
    "Demo": seed_demo,
}
