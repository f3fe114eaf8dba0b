"""Uniconta items → webCRM catalogue, end to end through webhooks, the receiver and a real worker."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sync.state import deadletters, journal
from tests.e2e.conftest import Stack, settle
from tests.support.stack import CONNECTION, TOKEN, admin, wait_for

pytestmark = pytest.mark.slow

NUMBER_FIELD = "QuotationLineLinkedDataItemData1"


def catalogue(stack: Stack) -> dict[str, dict[str, Any]]:
    return stack.catalogue()


def webcrm_writes(stack: Stack) -> list[str]:
    calls = admin(stack.webcrm_url, "GET", "/calls")["calls"]
    return [f"{c['method']} {c['path']}" for c in calls
            if c["method"] in ("POST", "PUT", "DELETE") and "LinkedData" in c["path"]]


def ui_item(stack: Stack, method: str, **fields: Any) -> dict[str, Any]:
    return admin(stack.uniconta_url, method, "/ui/InvItemClient", json=fields)



def test_item_created_updated_and_blocked_in_uniconta_follows_in_catalogue(e2e: Stack) -> None:
    ui_item(e2e, "POST", Item="V-100", Name="Rustfri skrue", Unit="Piece", Group="Skruer", CostPrice=1.25,
            SalesPrice1=2.5)
    row = wait_for(lambda: catalogue(e2e).get("V-100"), what="catalogue item")
    assert row["QuotationLineLinkedDataItemData2"] == "Rustfri skrue"
    assert row["QuotationLineLinkedDataItemPrice"] == 2.5 and row["QuotationLineLinkedDataItemCostPrice"] == 1.25
    assert row["QuotationLineLinkedDataItemItemGroup"] == "Skruer"

    ui_item(e2e, "PUT", Item="V-100", SalesPrice1=3.75)
    wait_for(lambda: catalogue(e2e)["V-100"]["QuotationLineLinkedDataItemPrice"] == 3.75, what="new price")
    assert len(catalogue(e2e)) == 1

    ui_item(e2e, "PUT", Item="V-100", Blocked=True)
    wait_for(lambda: "V-100" not in catalogue(e2e), what="blocked item to leave the catalogue")
    settle(e2e)
    kinds = [e["kind"] for e in journal.entries(e2e.redis, CONNECTION, "item", "V-100")]
    assert "api" in kinds and "done" in kinds


def test_deleted_item_leaves_the_catalogue(e2e: Stack) -> None:
    ui_item(e2e, "POST", Item="D-1", Name="Gone soon", SalesPrice1=10)
    wait_for(lambda: "D-1" in catalogue(e2e), what="catalogue item")
    ui_item(e2e, "DELETE", Item="D-1")
    wait_for(lambda: "D-1" not in catalogue(e2e), what="deleted item to leave")


def test_unchanged_item_causes_no_write(e2e: Stack) -> None:
    ui_item(e2e, "POST", Item="U-1", Name="Stable", SalesPrice1=5)
    wait_for(lambda: "U-1" in catalogue(e2e), what="catalogue item")
    settle(e2e)
    before = webcrm_writes(e2e)
    ui_item(e2e, "PUT", Item="U-1", Weight=2.5)  # not a synced field
    settle(e2e)
    assert webcrm_writes(e2e) == before
    results = [e.get("action") for e in journal.entries(e2e.redis, CONNECTION, "item", "U-1") if e["kind"] == "done"]
    assert results[0] == "unchanged"


def test_duplicate_webhooks_make_one_sync(e2e: Stack) -> None:
    admin(e2e.uniconta_url, "PUT", "/quirks", json={})  # defaults
    with e2e.uniconta() as uniconta:
        uniconta.insert("InvItemClient", {"Item": "DUP-1", "Name": "Burst", "SalesPrice1": 1})
    settle(e2e)
    writes_before = len(webcrm_writes(e2e))
    url = f"{e2e.receiver.url}/webhook/{CONNECTION}/uniconta"
    params = {"CompanyId": 1234, "Table": "InvItem", "Key": "DUP-1", "RowId": 1, "Action": "update", "token": TOKEN}
    answers = [requests.get(url, params=params, headers={"webhook-id": "msg-dup-1"}, timeout=5) for _ in range(200)]
    assert answers[0].status_code == 202
    assert {a.status_code for a in answers[1:]} == {200}
    assert {a.json()["status"] for a in answers[1:]} == {"duplicate"}
    settle(e2e)
    started = [e for e in journal.entries(e2e.redis, CONNECTION, "item", "DUP-1") if e["kind"] == "started"
               and e.get("origin") == "webhook" and e.get("event") == answers[0].json()["event"]]
    assert len(started) == 1, journal.entries(e2e.redis, CONNECTION, "item", "DUP-1")
    assert len(webcrm_writes(e2e)) == writes_before  # already in the catalogue: no write at all


def test_webcrm_down_for_a_while_then_sync_completes(e2e: Stack) -> None:
    admin(e2e.webcrm_url, "PUT", "/faults", json={"down_seconds": 2.5, "error_status": 503})
    ui_item(e2e, "POST", Item="R-1", Name="Resilient", SalesPrice1=9)
    wait_for(lambda: "R-1" in catalogue(e2e), timeout=30, what="item after recovery")
    kinds = [e["kind"] for e in journal.entries(e2e.redis, CONNECTION, "item", "R-1")]
    assert "retry" in kinds
    assert deadletters.count(e2e.redis) == 0


def test_rate_limited_by_webcrm_waits_and_completes(e2e: Stack) -> None:
    admin(e2e.webcrm_url, "PUT", "/quirks", json={"injected_retry_after": 1})
    admin(e2e.webcrm_url, "PUT", "/faults", json={"down_seconds": 1.5, "error_status": 429})
    ui_item(e2e, "POST", Item="T-1", Name="Throttled", SalesPrice1=4)
    wait_for(lambda: "T-1" in catalogue(e2e), timeout=30, what="item after throttling")
    retries = [e for e in journal.entries(e2e.redis, CONNECTION, "item", "T-1") if e["kind"] == "retry"]
    assert retries and all(r["in_seconds"] >= 1 for r in retries)
    assert deadletters.count(e2e.redis) == 0


def test_permanent_error_makes_exactly_one_dead_letter(e2e: Stack) -> None:
    admin(e2e.webcrm_url, "PUT", "/auth", json={"auth_codes": "someone-else=Other"})
    admin(e2e.webcrm_url, "POST", "/auth/expire")
    ui_item(e2e, "POST", Item="P-1", Name="Doomed", SalesPrice1=1)
    wait_for(lambda: deadletters.count(e2e.redis) >= 1, timeout=20, what="a dead letter")
    settle(e2e)
    letters = list(deadletters.iter_all(e2e.redis))
    assert len(letters) == 1
    assert letters[0]["record_id"] == "P-1" and letters[0]["kind"] == "permanent"
    assert letters[0]["error_type"] == "AuthError"
    assert "sandbox-token" not in str(letters[0])
