"""Each sandbox down (process stopped and restarted from its state file) or answering 503 for a while,
and a 429 storm → every sync completes after recovery, no duplicates, nothing in the dead letters.

The outages last OUTAGE seconds, not the issue's 60 s, to keep the suite short: with the test worker's
backoff cap (SYNC_RETRY_MAX_SECONDS=2) a job retries every 0-2 s during it, so a longer outage only adds
attempts of the same kind (the production defaults - cap 300 s, 50 attempts, a 1 h window - outlast a
60 s outage with room to spare).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
import requests

from sync.state import journal
from tests.resilience.conftest import NUMBER, Stack, expect_catalogue
from tests.support.stack import CONNECTION, TOKEN, admin

pytestmark = pytest.mark.slow

OUTAGE = 8.0
ITEMS = 8


def create_items(res: Stack, prefix: str, count: int) -> dict[str, float]:
    """A person creates items in Uniconta (each fires its Change-URL webhook)."""
    prices = {}
    for n in range(count):
        number = f"{prefix}-{n}"
        prices[number] = 20.0 + n
        res.ui_item("POST", Item=number, Name=f"Outage {number}", SalesPrice1=prices[number], CostPrice=2)
    res.flush_webhooks()
    return prices


def check(res: Stack, prices: dict[str, float]) -> None:
    expect_catalogue(res, prices, timeout=120, what="every item synced after the outage")
    rows = Counter(r[NUMBER] for r in res.catalogue_rows())
    assert {n: c for n, c in rows.items() if c != 1} == {}, "duplicates in the webCRM catalogue"
    assert Counter(r["Item"] for r in res.uniconta_items()) == Counter(prices.keys())
    assert res.dead_letters() == []


def retries(res: Stack, numbers: list[str]) -> int:
    return sum(1 for n in numbers for e in journal.entries(res.redis, CONNECTION, "item", n) if e["kind"] == "retry")


def test_webcrm_stopped_and_restarted_from_its_state_file(res: Stack) -> None:
    res.start_worker()
    first = create_items(res, "WS", 2)
    expect_catalogue(res, first, timeout=30, what="the first items")  # webCRM has a token issued to us now
    res.stop_sandbox("webcrm")
    down_at = time.monotonic()
    prices = {**first, **create_items(res, "WD", ITEMS)}
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
    res.start_sandbox("webcrm")  # same port, same data; access tokens are gone (kept in memory)
    check(res, prices)
    assert retries(res, [n for n in prices if n.startswith("WD")]) > 0


def test_uniconta_stopped_and_restarted_from_its_state_file(res: Stack) -> None:
    """Uniconta goes down right after sending its webhooks: the jobs cannot read the items."""
    admin(res.uniconta.url, "POST", "/seed", json={"entity": "InvItems", "count": ITEMS, "seed": 3})
    items = {str(r["Item"]): r for r in res.uniconta_items()}
    time.sleep(1)  # the sandbox saves its state within ~0.5 s of a change (and again on SIGTERM)
    res.stop_sandbox("uniconta")
    res.start_worker()
    session = requests.Session()
    for item in items.values():  # the Change-URL calls Uniconta made just before it went down
        answer = session.get(f"{res.receiver.url}/webhook/{CONNECTION}/invitems",
                             params={"CompanyId": 1234, "Key": item["Item"], "RowId": item["RowId"],
                                     "Action": "add", "token": TOKEN}, timeout=10)
        assert answer.status_code == 202, answer.text
    time.sleep(OUTAGE)
    res.start_sandbox("uniconta")
    check(res, {n: round(float(r.get("SalesPrice1") or 0), 2) for n, r in items.items()})
    assert retries(res, list(items)) > 0


OUTAGES: dict[str, Callable[[Stack], None]] = {
    "webcrm-503": lambda res: admin(res.webcrm.url, "PUT", "/faults", json={"down_seconds": OUTAGE,
                                                                            "error_status": 503}),
    "uniconta-503": lambda res: admin(res.uniconta.url, "PUT", "/faults", json={"down_seconds": OUTAGE,
                                                                                "error_status": 503}),
}


@pytest.mark.parametrize("outage", sorted(OUTAGES))
def test_sandbox_answering_503_for_a_while(res: Stack, outage: str) -> None:
    res.start_worker()
    OUTAGES[outage](res)
    prices = create_items(res, outage.upper(), ITEMS)
    check(res, prices)
    assert retries(res, list(prices)) > 0


def test_429_storm(res: Stack) -> None:
    """webCRM throttles every call for a while (Retry-After 2 s) and Uniconta half of them."""
    res.start_worker()
    admin(res.webcrm.url, "PUT", "/quirks", json={"injected_retry_after": 2})
    admin(res.webcrm.url, "PUT", "/faults", json={"down_seconds": OUTAGE, "error_status": 429})
    admin(res.uniconta.url, "PUT", "/faults", json={"error_rate": 0.5, "error_status": 429, "seed": 7})
    prices = create_items(res, "STORM", ITEMS)
    time.sleep(OUTAGE)
    admin(res.uniconta.url, "PUT", "/faults", json={"error_rate": 0})
    check(res, prices)
    throttled = [e for n in prices for e in journal.entries(res.redis, CONNECTION, "item", n)
                 if e["kind"] == "retry" and "429" in e.get("error", "")]
    assert throttled, "no 429 was seen"
    # webCRM said "retry after 2 s": no retry after one of its 429s came sooner.
    webcrm_429 = [e for e in throttled if "webcrm" in e.get("error", "")]
    assert webcrm_429 and all(e["in_seconds"] >= 2 for e in webcrm_429)
