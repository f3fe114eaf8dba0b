"""Reconciliation end to end: webhooks dropped by the sandboxes, the records still sync within one
reconciliation period (the sweep task run by the real worker, or `syncctl reconcile`)."""

from __future__ import annotations

import pytest
import requests

from sync.config import load_settings
from sync.events import Event
from sync.state import intake, journal
from tasks import broker
from tasks.celery_app import make_celery
from tasks.queues import RECONCILE_SWEEP
from tests.e2e.conftest import Stack, StackConfig, settle
from tests.e2e.ops_helpers import catalogue_numbers, dict_of, syncctl
from tests.support.stack import CONNECTION, TOKEN, admin, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack_config() -> StackConfig:
    return StackConfig("reconcile", flows=("items", "organisations"))


def drop_webhooks(stack: Stack) -> None:
    for base in (stack.webcrm_url, stack.uniconta_url):
        admin(base, "PUT", "/faults", json={"webhook_drop_rate": 1.0})


def sweep_in_worker(stack: Stack) -> None:
    """What beat does every reconcile_minutes: send the sweep task to the worker."""
    app = make_celery(load_settings(stack.env))
    try:
        app.send_task(RECONCILE_SWEEP, kwargs={"connection": CONNECTION})
    finally:
        app.close()


def test_lost_uniconta_webhooks_are_caught_by_the_sweep(e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    drop_webhooks(e2e)
    for number in ("L-1", "L-2", "L-3"):
        admin(e2e.uniconta_url, "POST", "/ui/InvItemClient", json={"Item": number, "Name": f"Lost {number}",
                                                                   "SalesPrice1": 10})
    admin(e2e.uniconta_url, "POST", "/webhooks/flush")
    deliveries = admin(e2e.uniconta_url, "GET", "/webhooks")["deliveries"]
    assert deliveries and all(d.get("dropped") for d in deliveries)
    assert catalogue_numbers(e2e) == []

    sweep_in_worker(e2e)
    wait_for(lambda: catalogue_numbers(e2e) == ["L-1", "L-2", "L-3"], timeout=30, what="the sweep's syncs")
    origins = [e.get("origin") for e in journal.entries(e2e.redis, CONNECTION, "item", "L-1") if e["kind"] == "queued"]
    assert origins == ["reconcile"]
    settle(e2e)

    # The next sweep finds the same records inside its overlap window and queues nothing new.
    result = dict_of(syncctl(e2e, monkeypatch, "reconcile", CONNECTION, "--entity", "item", "--json"))
    assert result["uniconta:item"]["queued"] == 0 and result["uniconta:item"]["skipped"] == 3
    # A change made now is caught by the next sweep.
    admin(e2e.uniconta_url, "PUT", "/ui/InvItemClient", json={"Item": "L-2", "Name": "Renamed"})
    result = dict_of(syncctl(e2e, monkeypatch, "reconcile", CONNECTION, "--entity", "item", "--json"))
    assert result["uniconta:item"]["queued"] == 1
    wait_for(lambda: e2e.catalogue()["L-2"]["QuotationLineLinkedDataItemData2"] == "Renamed", timeout=20,
             what="the renamed item")
    status = dict_of(syncctl(e2e, monkeypatch, "status", CONNECTION, "--json", "--no-ping"))
    run = status["connections"][CONNECTION]["reconciliation"]["uniconta:item"]
    assert run["last_ok_at"] and not run["error"] and run["watermark"]


def test_deleted_item_whose_webhook_was_lost_is_caught_by_the_full_compare(e2e: Stack,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    admin(e2e.uniconta_url, "POST", "/ui/InvItemClient", json={"Item": "G-1", "Name": "Going", "SalesPrice1": 1})
    wait_for(lambda: catalogue_numbers(e2e) == ["G-1"], timeout=20, what="the item")
    settle(e2e)
    dict_of(syncctl(e2e, monkeypatch, "reconcile", CONNECTION, "--entity", "item", "--full", "--json"))
    drop_webhooks(e2e)
    admin(e2e.uniconta_url, "DELETE", "/ui/InvItemClient", json={"Item": "G-1"})
    result = dict_of(syncctl(e2e, monkeypatch, "reconcile", CONNECTION, "--entity", "item", "--full", "--json"))
    assert result["uniconta:item"]["deleted"] == 1
    wait_for(lambda: catalogue_numbers(e2e) == [], timeout=20, what="the deleted item to leave the catalogue")


def test_lost_webcrm_webhook_for_an_organisation_is_caught(e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sync.flows.organisations")
    drop_webhooks(e2e)
    org = admin(e2e.webcrm_url, "POST", "/ui/Organisations", json={
        "OrganisationName": "Tabt Webhook ApS", "OrganisationAddress": "Nørregade 1", "OrganisationPostCode": "8000",
        "OrganisationCity": "Aarhus C", "OrganisationCountry": "Danmark", "OrganisationType": "Kunde"})
    org_id = org["OrganisationId"]
    result = dict_of(syncctl(e2e, monkeypatch, "reconcile", CONNECTION, "--entity", "organisation", "--json"))
    assert result["webcrm:organisation"]["queued"] >= 1

    def debtor() -> dict | None:
        with e2e.uniconta() as uniconta:
            rows = [d for d in uniconta.odata("DebtorClientUser") if str(d.get("WebcrmId")) == str(org_id)]
        return rows[0] if rows else None

    found = wait_for(debtor, timeout=30, what="the organisation's debtor")
    assert found["Name"] == "Tabt Webhook ApS"


def test_a_pending_mark_whose_job_is_gone_is_released_by_the_sweep(e2e: Stack) -> None:
    """A confirmed pending mark whose job the broker lost (a purged queue, an older file restored)
    swallows every event for its record; the sweep that beat runs queues the record again."""
    drop_webhooks(e2e)
    row = admin(e2e.uniconta_url, "POST", "/ui/InvItemClient", json={"Item": "O-1", "Name": "Orphan", "SalesPrice1": 4})
    intake.accept(e2e.redis, Event(CONNECTION, "uniconta", "item", "O-1"), lambda event: None)  # then purged
    webhook = requests.get(f"{e2e.receiver.url}/webhook/{CONNECTION}/uniconta", timeout=10, params={
        "CompanyId": 1234, "Table": "InvItem", "Key": "O-1", "RowId": row["RowId"], "Action": "update", "token": TOKEN})
    assert webhook.status_code == 202 and webhook.json().get("coalesced") is True  # joined a job that is gone
    mark = intake.pending_mark(e2e.redis, CONNECTION, "uniconta", "item", "O-1")
    assert mark is not None and mark.event_id not in (broker.live_event_ids(e2e.redis) or set())

    sweep_in_worker(e2e)
    wait_for(lambda: "O-1" in catalogue_numbers(e2e), timeout=30, what="the orphaned record synced")
    assert "orphan" in [e["kind"] for e in journal.entries(e2e.redis, CONNECTION, "item", "O-1")]
    settle(e2e)
