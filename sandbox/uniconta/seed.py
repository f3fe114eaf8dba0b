"""Seeders for POST /_sandbox/seed: Debtors, InvItems, Employees, Contacts (Danish fake data), Demo.

They write through the same rules as the API but do not call Change URLs (bulk setup, not edits).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from sandbox.common import demo, fake
from sandbox.uniconta.entities import CONTACT, DEBTOR, EMPLOYEE, INV_ITEM
from sandbox.uniconta.records import Company

UNITS = {"stk": "Piece", "m": "Meter", "m2": "Meter2", "time": "Hours", "km": "None", "pk": "Package"}
PAYMENTS = ("Netto8", "Netto14", "Netto30", "LM30")
GROUPS = ("Indland", "Indland", "Indland", "EU", "Udland")
TITLES = ("Indkøber", "Direktør", "Bogholder", "Projektleder", "Værkfører")
EMPLOYEE_TITLES = ("Sælger", "Sælger", "Projektleder", "Bogholder", "Lagerchef")


def _domain(name: str) -> str:
    words = [w for w in re.split(r"\W+", name.lower()) if w and w not in ("aps", "a", "s", "i", "k", "ivs")]
    return "".join(words[:2]) + ".dk"


def make_seeders(company: Company) -> dict[str, Callable[[int, random.Random], list]]:
    def debtors(count: int, rng: random.Random) -> list:
        company.ensure()
        employees = [e["Number"] for e in company.all(EMPLOYEE)]
        created = []
        cursor = 10000
        for _ in range(count):
            account = company.next_free_key(DEBTOR, cursor)
            cursor = int(account) + 1
            name = fake.company_name(rng)
            zipcode, city = fake.postcode_city(rng)
            first, last = fake.person_name(rng)
            body = {
                "Account": account, "Name": name,
                "Address1": fake.street_address(rng), "ZipCode": zipcode, "City": city, "Country": "Denmark",
                "Phone": fake.phone(rng), "CompanyRegNo": fake.cvr(rng),
                "ContactPerson": f"{first} {last}", "ContactEmail": fake.email(first, last, _domain(name)),
                "InvoiceEmail": fake.email("faktura", "", _domain(name)), "Vat": "U25", "VatZone": "Domestic",
                "Currency": "DKK", "Payment": rng.choice(PAYMENTS), "Group": rng.choice(GROUPS),
                "EAN": fake.ean(rng) if rng.random() < 0.4 else None,
                "Employee": rng.choice(employees) if employees else None,
            }
            rec, _ = company.insert(DEBTOR, body, user=False)
            created.append(rec["Account"])
        return created

    def inv_items(count: int, rng: random.Random) -> list:
        company.ensure()
        created = []
        for _ in range(count):
            item = fake.item(rng)
            number = item["number"]
            while company.by_key(INV_ITEM, number) is not None:
                number = fake.item(rng)["number"]
            created.append(_item({**item, "number": number}))
        return created

    def _item(item: dict) -> str:
        body = {
            "Item": item["number"], "Name": item["name"], "Group": item["group"],
            "Unit": UNITS.get(item["unit"], "None"), "CostPrice": item["cost"], "SalesPrice1": item["price"],
            "ItemType": "Item",
        }
        rec, _ = company.insert(INV_ITEM, body, user=False)
        return str(rec["Item"])

    def demo_data(count: int, rng: random.Random) -> list:
        """The Uniconta half of `make run`'s demo: the items the webCRM demo delivery orders (with
        prices), and Anna Jensen, already an employee, whom the users flow links to her webCRM user by
        e-mail. Fixed data (`count` and the seed are not used): the webCRM half must agree with it."""
        company.ensure()
        created = [_item(item) for item in demo.items() if company.by_key(INV_ITEM, item["number"]) is None]
        if company.by_key(EMPLOYEE, demo.ANNA["initials"]) is None:
            rec, _ = company.insert(EMPLOYEE, {"Number": demo.ANNA["initials"], "Name": demo.ANNA["name"],
                                               "Title": demo.ANNA["title"], "Email": demo.ANNA["email"],
                                               "Mobil": demo.ANNA["mobile"]}, user=False)
            created.append(rec["Number"])
        return created

    def employees(count: int, rng: random.Random) -> list:
        company.ensure()
        created = []
        for _ in range(count):
            first, last = fake.person_name(rng)
            initials = (first[0] + last[0]).upper()
            number, n = initials, 1
            while company.by_key(EMPLOYEE, number) is not None:
                n += 1
                number = f"{initials}{n}"
            body = {
                "Number": number, "Name": f"{first} {last}", "Title": rng.choice(EMPLOYEE_TITLES),
                "Email": fake.email(first, last, "sandbox-firma.dk"), "Mobil": fake.phone(rng),
            }
            rec, _ = company.insert(EMPLOYEE, body, user=False)
            created.append(rec["Number"])
        return created

    def contacts(count: int, rng: random.Random) -> list:
        company.ensure()
        debtor_rows = company.all(DEBTOR)
        if not debtor_rows:
            raise ValueError("entity: Contacts are created on existing debtors; seed Debtors first")
        created = []
        for _ in range(count):
            debtor = rng.choice(debtor_rows)
            first, last = fake.person_name(rng)
            body = {
                "DCType": 1, "DCAccount": debtor["Account"], "Name": f"{first} {last}",
                "Title": rng.choice(TITLES), "Email": fake.email(first, last, _domain(debtor.get("Name") or "firma")),
                "Mobil": fake.phone(rng),
            }
            rec, _ = company.insert(CONTACT, body, user=False)
            created.append(rec["RowId"])
        return created

    return {"Debtors": debtors, "InvItems": inv_items, "Employees": employees, "Contacts": contacts,
            "Demo": demo_data}
