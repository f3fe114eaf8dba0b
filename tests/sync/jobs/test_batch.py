"""Batch jobs on real parts: the sandboxes over HTTP, the real clients and Redis, a real producer.

A page of records runs through the flows' own per-record decisions; what changes is how many API
calls they cost. Counts come from the sandboxes' call logs.
"""

from __future__ import annotations

import collections
from dataclasses import replace
from typing import Any

from sync.config import OrganisationFlow, Settings
from sync.events import Event
from sync.jobs.batch import Batch
from sync.runtime import ConnectionContext
from sync.state import journal
from tests.support.context import Broker, MakeCtx, Sandboxes

CUSTOMERS = ("Kunde",)  # the seeder's customer type, the default trigger keyword


def _settings(ctx: ConnectionContext) -> Settings:
    return Settings(connections={ctx.connection.id: ctx.connection}, source="test")


def _seed(sandboxes: Sandboxes, count: int, seed: int = 3) -> list[dict[str, Any]]:
    sandboxes.webcrm.admin("POST", "/seed", json={"entity": "Organisations", "count": count, "seed": seed})
    return list(sandboxes.webcrm.table("Organisations").values())


def _events(ctx: ConnectionContext, entity: str, ids: list[Any], origin: str = "backfill") -> list[Event]:
    return [Event(ctx.connection.id, "webcrm", entity, str(i), origin=origin) for i in ids]


def _calls(sandboxes: Sandboxes) -> tuple[int, int]:
    webcrm = [c for c in sandboxes.webcrm.calls() if not c["path"].startswith("/Auth")]
    return len(webcrm), len(sandboxes.uniconta.calls())


def test_a_page_of_organisations_becomes_debtors_with_a_few_shared_calls(make_ctx: MakeCtx, sandboxes: Sandboxes,
                                                                        broker: Broker) -> None:
    ctx = make_ctx(organisations=replace(OrganisationFlow(), trigger_keywords=CUSTOMERS,
                                         debtor_number_strategy="organisation_id"))
    orgs = _seed(sandboxes, 120)
    customers = {o["OrganisationId"] for o in orgs if o["OrganisationType"] in CUSTOMERS}
    sandboxes.webcrm.clear_calls()
    sandboxes.uniconta.clear_calls()

    outcomes = Batch(ctx, _settings(ctx)).run(_events(ctx, "organisation", sorted(o["OrganisationId"] for o in orgs)))

    assert [o.error for o in outcomes if o.error] == []
    debtors = sandboxes.uniconta.rows("Debtor")
    linked = {int(d["WebcrmId"]) for d in debtors.values()}
    assert linked == customers and len(debtors) == len(customers)  # every customer once, nobody else
    numbers = {o["OrganisationId"]: o["OrganisationExtraCustom1"] for o in sandboxes.webcrm.table("Organisations").values()}
    assert {numbers[int(d["WebcrmId"])] for d in debtors.values()} == {d["Account"] for d in debtors.values()}
    webcrm_calls, uniconta_calls = _calls(sandboxes)
    # Per record the single path spends ~2 webCRM and ~3 Uniconta calls; shared, a few per page.
    assert webcrm_calls <= 6, collections.Counter(f"{c['method']} {c['rule']}" for c in sandboxes.webcrm.calls())
    assert uniconta_calls <= 3 * (len(customers) // 40 + 1) + 3, sandboxes.uniconta.calls()
    entries = journal.entries(ctx.redis, ctx.connection.id, "organisation", str(min(customers)))
    assert any(e["kind"] == "api" and e.get("shared", 1) > 1 for e in entries)
    assert {o.action for o in outcomes} <= {"created", "skipped", "waiting"}

    # Its own webhooks are checked by one verification batch job, not one job (and read) each.
    batches = [m for m in broker.redis.lrange("sync", 0, -1)]
    assert batches, "a verification batch job was published"

    # Idempotent: the same page again creates nothing and writes nothing.
    sandboxes.webcrm.clear_calls()
    sandboxes.uniconta.clear_calls()
    again = Batch(ctx, _settings(ctx)).run(_events(ctx, "organisation", sorted(o["OrganisationId"] for o in orgs)))
    assert [o.error for o in again if o.error] == []
    assert len(sandboxes.uniconta.rows("Debtor")) == len(customers)
    assert sandboxes.writes() == (0, 0)


def test_persons_of_a_page_become_contacts_of_their_debtors(make_ctx: MakeCtx, sandboxes: Sandboxes,
                                                           broker: Broker) -> None:
    ctx = make_ctx(organisations=replace(OrganisationFlow(), trigger_keywords=CUSTOMERS,
                                         debtor_number_strategy="organisation_id"))
    orgs = _seed(sandboxes, 60)
    customers = {o["OrganisationId"] for o in orgs if o["OrganisationType"] in CUSTOMERS}
    Batch(ctx, _settings(ctx)).run(_events(ctx, "organisation", sorted(o["OrganisationId"] for o in orgs)))
    persons = sandboxes.webcrm.table("Persons")
    of_customers = {pid for pid, p in persons.items() if p["PersonOrganisationId"] in customers}
    sandboxes.webcrm.clear_calls()
    sandboxes.uniconta.clear_calls()

    outcomes = Batch(ctx, _settings(ctx)).run(_events(ctx, "person", sorted(persons)))

    assert [o.error for o in outcomes if o.error] == []
    contacts = sandboxes.uniconta.rows("Contact")
    assert {int(c["ReferenceId"]) for c in contacts.values()} == of_customers and len(contacts) == len(of_customers)
    links = {pid: p["PersonCustom1"] for pid, p in sandboxes.webcrm.table("Persons").items() if pid in of_customers}
    assert {int(v) for v in links.values()} == set(contacts)
    waiting = [o for o in outcomes if o.action == "waiting"]
    assert len(waiting) == len(persons) - len(of_customers)  # persons of non-customers wait for a debtor
    webcrm_calls, uniconta_calls = _calls(sandboxes)
    assert webcrm_calls <= 4, collections.Counter(f"{c['method']} {c['rule']}" for c in sandboxes.webcrm.calls())
    lookups = 3 * (len(of_customers) // 40 + 1)
    assert uniconta_calls <= lookups + 3, collections.Counter(f"{c['method']} {c['rule']}"
                                                               for c in sandboxes.uniconta.calls())


def test_debtor_numbers_from_the_series_stay_unique_when_a_page_is_numbered_at_once(
        make_ctx: MakeCtx, sandboxes: Sandboxes, broker: Broker) -> None:
    ctx = make_ctx(organisations=replace(OrganisationFlow(), trigger_keywords=CUSTOMERS))  # strategy "series"
    sandboxes.uniconta.ui("DebtorClient", Account="10001", Name="Made by hand")  # a number already taken
    orgs = _seed(sandboxes, 60)
    customers = {o["OrganisationId"] for o in orgs if o["OrganisationType"] in CUSTOMERS}
    sandboxes.uniconta.clear_calls()

    outcomes = Batch(ctx, _settings(ctx)).run(_events(ctx, "organisation", sorted(o["OrganisationId"] for o in orgs)))

    assert [o.error for o in outcomes if o.error] == []
    debtors = [d for d in sandboxes.uniconta.rows("Debtor").values() if d.get("WebcrmId")]
    accounts = sorted(int(d["Account"]) for d in debtors)
    assert len(accounts) == len(customers) == len(set(accounts))
    assert 10001 not in accounts and accounts[0] == 10000
    assert len(sandboxes.uniconta.calls()) <= 10, collections.Counter(
        f"{c['method']} {c['rule']}" for c in sandboxes.uniconta.calls())


def test_price_changes_of_many_items_read_both_sides_by_page_and_put_each_catalogue_item(
        make_ctx: MakeCtx, sandboxes: Sandboxes, broker: Broker) -> None:
    ctx = make_ctx()
    numbers = [f"V-{n:03d}" for n in range(30)]
    for n, number in enumerate(numbers):
        sandboxes.uniconta.ui("InvItemClient", Item=number, Name=f"Vare {n}", SalesPrice1=10 + n)
    item_events = [Event(ctx.connection.id, "uniconta", "item", number) for number in numbers]
    created = Batch(ctx, _settings(ctx)).run(item_events)
    assert {o.action for o in created} == {"created"}
    for n, number in enumerate(numbers):
        sandboxes.uniconta.ui_edit("InvItemClient", Item=number, SalesPrice1=20 + n)
    sandboxes.webcrm.clear_calls()
    sandboxes.uniconta.clear_calls()

    updated = Batch(ctx, _settings(ctx)).run([Event(ctx.connection.id, "uniconta", "item", n) for n in numbers])

    assert {o.action for o in updated} == {"updated"}
    prices = {r["QuotationLineLinkedDataItemData1"]: r["QuotationLineLinkedDataItemPrice"]
              for r in sandboxes.webcrm.table("LinkedData").values()}
    assert prices == {number: 20 + n for n, number in enumerate(numbers)}
    webcrm = collections.Counter(f"{c['method']} {c['rule']}" for c in sandboxes.webcrm.calls()
                                 if not c["path"].startswith("/Auth"))
    assert webcrm == {"GET /Queries": 1, "PUT /QuotationLines/LinkedData/<int:id>": 30}, webcrm
    assert len(sandboxes.uniconta.calls()) == 1  # the items, in one read
