"""kill -9 of worker pool processes while batch jobs write with InsertList and bulk PATCH → every
customer's debtor once, every contact once, every link written back; nothing missing.

A backfill of organisations and then persons runs as batch jobs of 50 records. Both sandboxes answer
every call slowly, so a batch spends most of its time waiting for its writes, and a kill at a random
moment usually lands in the middle of one: the InsertList or PATCH was sent and possibly applied, its
answer never read. The killed job goes back to the queue (`task_reject_on_worker_lost`) and runs
again; the flows look each record up before creating it, so what the lost answer created is found,
not created twice. The sandboxes' call logs prove that kills did land during writes.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from typing import Any

import pytest

from sync.config import load_settings
from sync.operations import backfill
from sync.operations.reconcile import source_for
from sync.runtime import Runtime
from tasks.celery_app import make_celery
from tasks.dispatch import batch_enqueuer
from tests.resilience.conftest import Stack, StackOptions
from tests.support.stack import CONNECTION, admin, wait_for

pytestmark = pytest.mark.slow

ORGANISATIONS = 80
KILLS_PER_ENTITY = 4
WRITES = ("InsertList", "PATCH")


@pytest.fixture(scope="module")
def stack_options() -> StackOptions:
    return StackOptions(flows=("organisations", "persons"), settings={"batch_size": 50})


def _state(stack: Stack, name: str) -> dict[str, Any]:
    return admin(stack.webcrm.url if name == "webcrm" else stack.uniconta.url, "GET", "/state")["tables"]


def _writes_in_flight(stack: Stack, kills: list[float]) -> int:
    """How many kills fell between the start and the answer of an InsertList or bulk PATCH."""
    calls = [c for name in ("webcrm", "uniconta") for c in admin(stack.webcrm.url if name == "webcrm" else
                                                               stack.uniconta.url, "GET", "/calls")["calls"]]
    spans = [(c["at"] - c["ms"] / 1000, c["at"]) for c in calls
             if c["method"] == "PATCH" or "InsertList" in c["path"]]
    return sum(1 for t in kills if any(start <= t <= end for start, end in spans))


def test_pool_processes_killed_during_bulk_writes_leave_no_duplicates_and_nothing_missing(res: Stack) -> None:
    seed = int(os.environ.get("RESILIENCE_SEED", random.randrange(10**6)))
    print(f"RESILIENCE_SEED={seed}")
    rng = random.Random(seed)
    admin(res.uniconta.url, "PUT", "/userfields/Debtor", json=[{"Name": "WebcrmId", "Type": "String"}])
    admin(res.webcrm.url, "POST", "/seed", json={"entity": "Organisations", "count": ORGANISATIONS, "seed": seed})
    admin(res.webcrm.url, "POST", "/webhooks/flush")
    for base in (res.webcrm.url, res.uniconta.url):
        admin(base, "PUT", "/faults", json={"latency_ms": 400})
        admin(base, "DELETE", "/calls")
    res.start_worker(concurrency=2)
    settings = load_settings(res.env)
    ctx = Runtime(settings).context(CONNECTION)
    assert ctx is not None
    publish = batch_enqueuer(make_celery(settings))
    kills: list[float] = []

    for entity in ("organisation", "person"):
        source = source_for(entity)
        assert source is not None
        outcome = backfill.run(ctx, source, publish)
        assert outcome.state == "done", outcome.message
        for _ in range(KILLS_PER_ENTITY):
            time.sleep(rng.uniform(0.5, 2.0))
            pool = res.pool_processes(res.worker)
            if pool:
                kills.append(time.time())
                res.kill_pool_process(res.worker, rng.choice(pool))
        wait_for(res.quiet, timeout=240, interval=0.5, what=f"the {entity} backfill to finish after the kills")

    webcrm, uniconta = _state(res, "webcrm"), _state(res, "uniconta")
    customers = {int(k) for k, o in webcrm["Organisations"].items() if o["OrganisationType"] == "Kunde"}
    debtor_links = Counter(int(d["_user"]["WebcrmId"]) for d in uniconta["Debtor"].values())
    assert set(debtor_links) == customers and set(debtor_links.values()) == {1}, "a debtor missing or twice"
    accounts = {int(d["_user"]["WebcrmId"]): d["Account"] for d in uniconta["Debtor"].values()}
    assert {o: webcrm["Organisations"][str(o)]["OrganisationExtraCustom1"] for o in customers} == accounts
    of_customers = {int(k) for k, p in webcrm["Persons"].items() if p["PersonOrganisationId"] in customers}
    contact_links = Counter(int(c["ReferenceId"]) for c in uniconta["Contact"].values())
    assert set(contact_links) == of_customers and set(contact_links.values()) == {1}, "a contact missing or twice"
    rowids = {int(c["ReferenceId"]): str(c["RowId"]) for c in uniconta["Contact"].values()}
    assert {p: webcrm["Persons"][str(p)]["PersonCustom1"] for p in of_customers} == rowids
    assert res.dead_letters() == []
    assert len(kills) >= 2 * KILLS_PER_ENTITY - 1
    assert _writes_in_flight(res, kills) >= 1, "no kill landed during a bulk write; nothing was proven"
