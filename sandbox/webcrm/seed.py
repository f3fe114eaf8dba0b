"""Fake webCRM data: the default setup and the seeders behind POST /_sandbox/seed.

Seeded records are written as if a webCRM user ("Anna Jensen") had created them in the UI, so they
are not the integration's own echo. Seeding fires no hooks (it is set-up, not a change to observe).
Called with the store lock held.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from sandbox.common import fake
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


def _create(wc: WebcrmSandbox, e: EntityDef, body: dict) -> dict:
    return wc.crm.create(e, body, by=DEFAULT_UI_USER, fire=False)


def _user_ids(wc: WebcrmSandbox) -> list[int]:
    return [r["UserId"] for r in wc.crm.rows(USERS)]


def seed_defaults(wc: WebcrmSandbox) -> None:
    """What a fresh (or reset) sandbox contains: the UI user "Anna Jensen" as user 1."""
    _create(wc, USERS, {
        "UserName": DEFAULT_UI_USER, "UserInitials": "AJ", "UserEmail": "anna.jensen@example.dk",
        "UserLoginName": "anna", "UserTitle": "Salgschef", "UserCurrencyName": "DKK",
        "UserTelephone": "+45 70 20 30 40",
    })


def seed_organisations(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[int]:
    """`count` organisations, each with 1-3 persons."""
    users = _user_ids(wc) or [0]
    ids = []
    for _ in range(count):
        name = fake.company_name(rng)
        postcode, city = fake.postcode_city(rng)
        domain = fake.email("", name.split()[0], "dk").split("@")[0].strip(".") + ".dk"
        org = _create(wc, ORGANISATIONS, {
            "OrganisationName": name,
            "OrganisationAddress": fake.street_address(rng),
            "OrganisationPostCode": postcode,
            "OrganisationCity": city,
            "OrganisationCountry": "Danmark",
            "OrganisationTelephone": fake.phone(rng),
            "OrganisationWww": f"www.{domain}",
            "OrganisationDomain": domain,
            "OrganisationVatNumber": fake.cvr(rng),
            "OrganisationType": rng.choice(ORGANISATION_TYPES),
            "OrganisationStatus": rng.choice(ORGANISATION_STATUSES),
            "OrganisationOwner": rng.choice(users),
        })
        ids.append(org["OrganisationId"])
        for _ in range(rng.randint(1, 3)):
            _person(wc, org, domain, rng)
    return ids


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
    ids = []
    for _ in range(count):
        first, last = fake.person_name(rng)
        user = _create(wc, USERS, {
            "UserName": f"{first} {last}",
            "UserInitials": (first[0] + last[0]).upper() + str(rng.randint(1, 99)),
            "UserEmail": fake.email(first, last, "example.dk"),
            "UserLoginName": fake.email(first, last, "x").split("@")[0],
            "UserTitle": rng.choice(("Sælger", "Key account manager", "Kundeservice", "Salgschef")),
            "UserTelephone": fake.phone(rng),
            "UserMobilePhone": fake.phone(rng),
            "UserCurrencyName": "DKK",
        })
        ids.append(user["UserId"])
    return ids


def seed_linked_data(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[int]:
    """`count` catalogue items (QuotationLines/LinkedData): Data1..4 = number, name, unit, group."""
    ids = []
    labels = wc.settings()["linked_setup"]
    for _ in range(count):
        item = fake.item(rng)
        body: dict[str, Any] = {
            "QuotationLineLinkedDataItemData1": item["number"],
            "QuotationLineLinkedDataItemData2": item["name"],
            "QuotationLineLinkedDataItemData3": item["unit"],
            "QuotationLineLinkedDataItemData4": item["group"],
            "QuotationLineLinkedDataItemItemGroup": item["group"],
            "QuotationLineLinkedDataItemPrice": item["price"],
            "QuotationLineLinkedDataItemCostPrice": item["cost"],
            "QuotationLineLinkedDataItemVatCode": "25",
        }
        for n in range(5, 10):  # any extra Data field enabled by the admin gets a value too
            if labels.get(str(n)):
                body[f"QuotationLineLinkedDataItemData{n}"] = "-"
        ids.append(_create(wc, LINKED_DATA, body)["QuotationLineLinkedDataItemId"])
    return ids


def _seed_orders(wc: WebcrmSandbox, e: EntityDef, count: int, rng: random.Random) -> list[int]:
    orgs = list(wc.crm.rows(ORGANISATIONS))
    if not orgs:
        raise ValueError("entity: seed Organisations first (orders belong to an organisation)")
    items = list(wc.crm.rows(LINKED_DATA))
    if not items:
        seed_linked_data(wc, 10, rng)
        items = list(wc.crm.rows(LINKED_DATA))
    users = _user_ids(wc) or [0]
    persons_by_org: dict[int, list[int]] = {}
    for person in wc.crm.rows(PERSONS):
        persons_by_org.setdefault(person["PersonOrganisationId"], []).append(person["PersonId"])
    p = e.singular
    ids = []
    lines_table = wc.crm.table(QUOTATION_LINES)
    for _ in range(count):
        org = rng.choice(orgs)
        org_id = org["OrganisationId"]
        body: dict[str, Any] = {
            f"{p}OrganisationId": org_id,
            f"{p}PersonId": rng.choice(persons_by_org.get(org_id, [0])),
            f"{p}Description": f"Ordre til {org['OrganisationName']}"[:200],
            f"{p}Number": str(rng.randint(10000, 99999)),
            f"{p}CurrencyName": "DKK",
            f"{p}OrderDate": wc.now(),
        }
        if e is DELIVERIES:
            body.update({"DeliveryStatus": rng.choice(DELIVERY_STATUSES), "DeliveryResponsible": rng.choice(users)})
        else:
            body.update({"OpportunityLevel": rng.randint(1, 5), "OpportunityAssignedTo": rng.choice(users),
                         "OpportunityPercent": rng.choice((10, 25, 50, 75, 90))})
        order = _create(wc, e, body)
        order_id = order[e.id_field]
        lines = []
        for n in range(rng.randint(1, 4)):
            item = rng.choice(items)
            line = QUOTATION_LINES.dto.defaults()
            line.update({
                "QuotationLineId": wc.store.next_id(QUOTATION_LINES.sequence),
                "QuotationLineOpportunityId": order_id,
                "QuotationLineOrganisationId": org_id,
                "QuotationLineQuantity": float(rng.randint(1, 20)),
                "QuotationLinePrice": item["QuotationLineLinkedDataItemPrice"],
                "QuotationLineListPrice": item["QuotationLineLinkedDataItemPrice"],
                "QuotationLineCostPrice": item["QuotationLineLinkedDataItemCostPrice"],
                "QuotationLineDiscount": rng.choice((0.0, 0.0, 0.0, 5.0, 10.0)),
                "QuotationLineVatPercentage": 25.0,
                "QuotationLineSortOrder": (n + 1) * 10,
                "QuotationLineMemo": item["QuotationLineLinkedDataItemData2"],
                "QuotationLineCreatedAt": order[f"{p}CreatedAt"],
                "QuotationLineCreatedBy": DEFAULT_UI_USER,
                "QuotationLineUpdatedAt": order[f"{p}CreatedAt"],
                "QuotationLineUpdatedBy": DEFAULT_UI_USER,
            })
            for d in range(1, 10):
                line[f"QuotationLineData{d}"] = item[f"QuotationLineLinkedDataItemData{d}"]
            lines_table[str(line["QuotationLineId"])] = line
            lines.append(line)
        updated = dict(order)
        updated[f"{p}OrderValue"], updated[f"{p}OrderGmValue"] = order_totals(lines)
        wc.crm.table(e)[str(order_id)] = updated
        ids.append(order_id)
    wc.store.mark_dirty()
    return ids


def seed_deliveries(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[int]:
    """`count` deliveries on random organisations, each with 1-4 quotation lines from the catalogue."""
    return _seed_orders(wc, DELIVERIES, count, rng)


def seed_opportunities(wc: WebcrmSandbox, count: int, rng: random.Random) -> list[int]:
    return _seed_orders(wc, OPPORTUNITIES, count, rng)


SEEDERS = {
    "Organisations": seed_organisations,
    "Persons": seed_persons,
    "Users": seed_users,
    "LinkedData": seed_linked_data,
    "Deliveries": seed_deliveries,
    "Opportunities": seed_opportunities,
}
