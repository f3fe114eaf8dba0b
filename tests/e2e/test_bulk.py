"""The bulk lane end to end: `syncctl backfill` pages through a real worker, with the receiver and the
hooks up, so the webhooks of our own writes are part of what it costs."""

from __future__ import annotations

import collections

import pytest

from sync.state import journal
from tests.e2e.conftest import Stack, StackConfig, settle
from tests.e2e.ops_helpers import syncctl
from tests.support.stack import CONNECTION, admin, start_worker

pytestmark = pytest.mark.slow

CUSTOMERS = ("Kunde",)  # the seeder's customer type: the default trigger keyword, so no setting is needed


@pytest.fixture(scope="module")
def stack_config() -> StackConfig:
    return StackConfig(name="bulk")


def _calls(base: str) -> list[dict]:
    return [c for c in admin(base, "GET", "/calls")["calls"] if not c["path"].startswith("/Auth")]


def test_backfill_of_organisations_and_persons_costs_calls_per_page_not_per_record(
        e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    admin(e2e.webcrm_url, "POST", "/seed", json={"entity": "Organisations", "count": 150, "seed": 5})
    settle(e2e)
    state = admin(e2e.webcrm_url, "GET", "/state")["tables"]
    orgs, persons = state["Organisations"], state["Persons"]
    customers = {int(k) for k, o in orgs.items() if o["OrganisationType"] in CUSTOMERS}
    of_customers = {int(k) for k, p in persons.items() if p["PersonOrganisationId"] in customers}
    admin(e2e.webcrm_url, "DELETE", "/calls")
    admin(e2e.uniconta_url, "DELETE", "/calls")

    for entity in ("organisation", "person"):
        result = syncctl(e2e, monkeypatch, "backfill", CONNECTION, entity)
        assert result.exit_code == 0, result.output
        settle(e2e, timeout=60)

    tables = admin(e2e.uniconta_url, "GET", "/state")["tables"]
    debtors = [d["_user"]["WebcrmId"] for d in tables["Debtor"].values()]
    contacts = [c.get("ReferenceId") for c in tables["Contact"].values()]
    assert sorted(int(d) for d in debtors) == sorted(customers)  # each customer once
    assert sorted(int(c) for c in contacts) == sorted(of_customers)  # each of their persons once
    records = len(orgs) + len(persons)
    webcrm, uniconta = _calls(e2e.webcrm_url), _calls(e2e.uniconta_url)
    kinds = collections.Counter(f"{c['method']} {c['rule']}" for c in webcrm + uniconta)
    # One job per record spent ~1.7 calls per record on each side (docs/benchmarks.md, 5a); pages spend
    # a few calls each, echoes included.
    assert len(uniconta) / records <= 0.1, kinds
    assert len(webcrm) / records <= 0.1, kinds
    dead = e2e.redis.hlen("sync:dlq")
    assert dead == 0


def test_a_burst_of_item_edits_is_synced_by_batches_that_take_the_waiting_jobs(e2e: Stack) -> None:
    numbers = [f"B-{n:03d}" for n in range(40)]
    for n, number in enumerate(numbers):
        admin(e2e.uniconta_url, "POST", "/ui/InvItemClient", json={"Item": number, "Name": f"Vare {n}",
                                                                    "SalesPrice1": 10 + n})
    settle(e2e)
    assert sorted(e2e.catalogue()) == numbers
    e2e.worker.stop()  # the edits queue up while no worker runs: a burst, for sure
    admin(e2e.webcrm_url, "DELETE", "/calls")
    admin(e2e.uniconta_url, "DELETE", "/calls")
    for n, number in enumerate(numbers):
        admin(e2e.uniconta_url, "PUT", "/ui/InvItemClient", json={"Item": number, "SalesPrice1": 20 + n})
    admin(e2e.uniconta_url, "POST", "/webhooks/flush")
    e2e.worker = start_worker(e2e.env, e2e.log)
    settle(e2e)

    catalogue = e2e.catalogue()
    assert {n: catalogue[n]["QuotationLineLinkedDataItemPrice"] for n in numbers} == {
        number: 20 + n for n, number in enumerate(numbers)}
    uniconta, webcrm = _calls(e2e.uniconta_url), _calls(e2e.webcrm_url)
    puts = [c for c in webcrm if c["method"] == "PUT"]
    assert len(puts) == 40  # one catalogue PUT per edited item
    assert len(uniconta) <= 40 * 0.2, collections.Counter(c["query"][:40] for c in uniconta)
    assert len(webcrm) - len(puts) <= 40 * 0.2, collections.Counter(f"{c['method']} {c['rule']}" for c in webcrm)
    kinds = collections.Counter(e["kind"] for n in numbers for e in journal.entries(e2e.redis, CONNECTION, "item", n))
    assert kinds["batched"] >= 30 and kinds["drained"] >= 30, kinds  # taken into batches; their own jobs idle

