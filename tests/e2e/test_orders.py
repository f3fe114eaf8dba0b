"""webCRM deliveries → Uniconta debtor orders, end to end: webhooks, receiver, a real worker, both sandboxes.

Changes are made as people make them (the sandboxes' admin "UI" routes); results are read
from the sandboxes' state (no API calls, so the worker keeps the webCRM rate limit to itself).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from kombu import Connection

from sync.config import OrderFlow
from sync.flows import orders_map
from sync.state import deadletters, journal
from sync.state.links import LinkStore
from sync.totals import dec
from tests.e2e.conftest import Stack, settle
from tests.support.stack import CONNECTION, TOKEN, admin, start_worker, wait_for

pytestmark = pytest.mark.slow

CFG = OrderFlow()
READY = "ReadyForSynchronization"
STATUS = CFG.status_field


@pytest.fixture(scope="module", autouse=True)
def _stop_replacement_worker(stack: Stack) -> Iterator[None]:
    """A test may replace the stack's worker (killing it); stop whichever runs at the end."""
    yield
    stack.worker.stop()


# --------------------------------------------------------------------------- people's edits


def crm(stack: Stack, method: str, path: str, **fields: Any) -> dict[str, Any]:
    return admin(stack.webcrm_url, method, f"/ui/{path}", json=fields)


def erp(stack: Stack, method: str, entity: str, **fields: Any) -> dict[str, Any]:
    return admin(stack.uniconta_url, method, f"/ui/{entity}", json=fields)


def customer(stack: Stack, name: str = "Smedjen ApS", currency: str | None = None) -> tuple[int, str]:
    """A customer organisation, and the debtor the organisation flow makes for it."""
    org = crm(stack, "POST", "Organisations", OrganisationName=name, OrganisationType="Kunde",
              OrganisationAddress="Havnegade 1", OrganisationPostCode="8000", OrganisationCity="Aarhus",
              OrganisationCountry="Denmark")
    org_id = int(org["OrganisationId"])
    debtor = wait_for(lambda: debtor_of(stack, org_id), what="the organisation's debtor")
    if currency:
        erp(stack, "PUT", "DebtorClient", Account=debtor["Account"], Currency=currency)
        wait_for(lambda: debtor_of(stack, org_id)["Currency"] == currency, what="the debtor's currency")
    return org_id, str(debtor["Account"])


def items(stack: Stack, *specs: tuple[str, float, float]) -> None:
    for number, price, cost in specs:
        erp(stack, "POST", "InvItemClient", Item=number, Name=f"Vare {number}", SalesPrice1=price, CostPrice=cost)


def new_delivery(stack: Stack, org_id: int, lines: list[dict[str, Any]], **fields: Any) -> tuple[int, list[int]]:
    delivery = crm(stack, "POST", "Deliveries", DeliveryOrganisationId=org_id, **fields)
    did = int(delivery["DeliveryId"])
    ids = [int(crm(stack, "POST", "QuotationLines", QuotationLineOpportunityId=did, **line)["QuotationLineId"])
           for line in lines]
    return did, ids


def item_line(number: str, qty: float, price: float, *, discount: float = 0, cost: float = 0, **more: Any
              ) -> dict[str, Any]:
    """A line where the user typed the item number (Data1), as opposed to picking it from the catalogue."""
    return {"QuotationLineData1": number, "QuotationLineQuantity": qty, "QuotationLinePrice": price,
            "QuotationLineDiscount": discount, "QuotationLineCostPrice": cost, **more}


def text_line(memo: str, qty: float, price: float, *, discount: float = 0, cost: float = 0) -> dict[str, Any]:
    return {"QuotationLineMemo": memo, "QuotationLineQuantity": qty, "QuotationLinePrice": price,
            "QuotationLineDiscount": discount, "QuotationLineCostPrice": cost}


def edit_delivery(stack: Stack, did: int, **fields: Any) -> None:
    """A person edits the delivery in webCRM."""
    crm(stack, "PUT", f"Deliveries/{did}", **fields)


def mark_ready(stack: Stack, did: int, **fields: Any) -> None:
    edit_delivery(stack, did, DeliveryErpStatus=READY, **fields)


# --------------------------------------------------------------------------- reading state


def tables(base: str) -> dict[str, dict[str, dict[str, Any]]]:
    return admin(base, "GET", "/state")["tables"]


def delivery_of(stack: Stack, did: int) -> dict[str, Any]:
    return tables(stack.webcrm_url)["Deliveries"][str(did)]


def webcrm_lines(stack: Stack, did: int) -> list[dict[str, Any]]:
    rows = tables(stack.webcrm_url).get("QuotationLines", {}).values()
    return [r for r in rows if r["QuotationLineOpportunityId"] == did]


def _with_user_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in row.items() if k != "_user"}, **row.get("_user", {})}


def orders_for(stack: Stack, did: int) -> list[dict[str, Any]]:
    rows = tables(stack.uniconta_url).get("DebtorOrder", {}).values()
    return [_with_user_fields(r) for r in rows if r.get("_user", {}).get("WebcrmDeliveryId") == str(did)]


def order_for(stack: Stack, did: int) -> dict[str, Any] | None:
    found = orders_for(stack, did)
    assert len(found) <= 1, f"{len(found)} orders for delivery {did}"
    return found[0] if found else None


def order_lines(stack: Stack, number: int) -> list[dict[str, Any]]:
    rows = tables(stack.uniconta_url).get("DebtorOrderLine", {}).values()
    return sorted((_with_user_fields(r) for r in rows if r["OrderNumber"] == number), key=lambda r: r["LineNumber"])


def debtor_of(stack: Stack, org_id: int) -> dict[str, Any] | None:
    rows = [_with_user_fields(r) for r in tables(stack.uniconta_url).get("Debtor", {}).values()]
    found = [r for r in rows if r.get("WebcrmId") == str(org_id)]
    return found[0] if len(found) == 1 else None


def calls(base: str, method: str, fragment: str) -> int:
    return sum(1 for c in admin(base, "GET", "/calls")["calls"]
               if c["method"] == method and fragment in c["path"] and c["status"] < 400)


def entries(stack: Stack, did: int, kind: str | None = None) -> list[dict[str, Any]]:
    found = journal.entries(stack.redis, CONNECTION, "delivery", str(did))
    return [e for e in found if kind is None or e["kind"] == kind]


def synced(stack: Stack, did: int, lines: int | None = None) -> dict[str, Any] | None:
    """The order once the delivery shows it as synchronized (and, if given, with that many lines)."""
    delivery = delivery_of(stack, did)
    order = order_for(stack, did)
    if order is None or delivery["DeliveryErpStatus"] != "Synchronized" \
            or delivery["DeliveryErpId"] != str(order["OrderNumber"]):
        return None
    if lines is not None and len(order_lines(stack, order["OrderNumber"])) != lines:
        return None
    return order



def assert_totals_agree(stack: Stack, did: int) -> orders_map.totals.Amounts:
    """webCRM's DeliveryOrderValue/GmValue = sync.totals = Uniconta's Total/Margin/MarginRatio, to the øre."""
    delivery = delivery_of(stack, did)
    order = order_for(stack, did)
    assert order is not None
    expected = orders_map.webcrm_totals(webcrm_lines(stack, did))
    assert (dec(delivery["DeliveryOrderValue"]), dec(delivery["DeliveryOrderGmValue"])) == \
        (expected.value, expected.margin)
    assert (dec(order["Total"]), dec(order["Margin"]), dec(order["MarginRatio"])) == \
        (expected.value, expected.margin, expected.margin_percent)
    assert sum((dec(line["Total"]) for line in order_lines(stack, order["OrderNumber"])), Decimal(0)) == \
        expected.value
    return expected


# --------------------------------------------------------------------------- tests


def test_delivery_with_item_and_text_lines_becomes_an_order(e2e: Stack) -> None:
    org_id, account = customer(e2e)
    items(e2e, ("A-100", 100.0, 60.0), ("B-200", 19.95, 7.5))
    catalogue = wait_for(lambda: (lambda c: c if {"A-100", "B-200"} <= set(c) else None)(e2e.catalogue()),
                         what="items in the webCRM catalogue")
    LinkStore(e2e.redis, CONNECTION).bind("user", 1, "AJ")  # the user flow's link: Anna Jensen ↔ employee AJ
    lines = [
        {"QuotationLineLinkedDataId": catalogue["A-100"]["QuotationLineLinkedDataItemId"], "QuotationLineQuantity": 3,
         "QuotationLineDiscount": 12.5},
        {"QuotationLineLinkedDataId": catalogue["B-200"]["QuotationLineLinkedDataItemId"], "QuotationLineQuantity": -1,
         "QuotationLineComment": "Returneret"},
        text_line("Montage", 2, 437.5, cost=210),
        item_line("B-200", 4, 0, cost=7.5, QuotationLineMemo="Gratis prøve"),
        text_line("Fragt", 1, 0),
    ]
    did, line_ids = new_delivery(e2e, org_id, lines, DeliveryNumber="T-1001", DeliveryDescription="Værkstedsordre",
                                 DeliveryResponsible=1)
    mark_ready(e2e, did)

    order = wait_for(lambda: synced(e2e, did, lines=5), what="the order with its lines")
    assert order["Account"] == account and order["Employee"] == "AJ"
    assert order["OurRef"] == "T-1001" and order["Remark"] == "Værkstedsordre"
    got = [(r["WebcrmLineId"], r.get("Item"), r.get("Text"), r["Qty"], r["Price"], r["DiscountPct"], r["CostPrice"])
           for r in order_lines(e2e, order["OrderNumber"])]
    assert got == [
        (str(line_ids[0]), "A-100", "Vare A-100", 3.0, 100.0, 12.5, 60.0),
        (str(line_ids[1]), "B-200", "Vare B-200", -1.0, 19.95, 0.0, 7.5),
        (str(line_ids[2]), None, "Montage", 2.0, 437.5, 0.0, 210.0),
        (str(line_ids[3]), "B-200", "Gratis prøve", 4.0, 0.0, 0.0, 7.5),
        (str(line_ids[4]), None, "Fragt", 1.0, 0.0, 0.0, 0.0),
    ]
    assert order_lines(e2e, order["OrderNumber"])[1]["Note"] == "Returneret"
    expected = assert_totals_agree(e2e, did)
    assert expected.value == Decimal("1117.55")  # 262.50 - 19.95 + 875 + 0 + 0

    delivery = delivery_of(e2e, did)
    assert delivery[STATUS] == f"Uniconta order {order['OrderNumber']}"
    assert not delivery["DeliveryErpSyncDateTime"].startswith("0001")
    settle(e2e)
    # Our own write-back comes back as a webhook: recognised, nothing written again.
    assert calls(e2e.uniconta_url, "POST", "Insert/DebtorOrderClient") == 1
    assert calls(e2e.uniconta_url, "POST", "InsertList/DebtorOrderLineClient") == 1
    assert calls(e2e.webcrm_url, "PUT", f"/Deliveries/{did}") == 1
    assert [e["action"] for e in entries(e2e, did, "done") if e["action"] not in ("skipped", "unchanged")] == \
        ["created"]
    assert deadletters.count(e2e.redis) == 0


def test_lines_added_changed_removed_and_reordered_follow_by_link(e2e: Stack) -> None:
    org_id, _ = customer(e2e)
    items(e2e, ("X-1", 10.0, 4.0))
    did, (l1, l2, l3) = new_delivery(e2e, org_id, [item_line("X-1", 1, 10, cost=4), text_line("Service", 1, 5),
                                                   item_line("X-1", 2, 10, cost=4)])
    mark_ready(e2e, did)
    order = wait_for(lambda: synced(e2e, did, lines=3), what="the first version of the order")
    number = order["OrderNumber"]
    rows = {r["WebcrmLineId"]: r["RowId"] for r in order_lines(e2e, number)}
    settle(e2e)

    l4 = crm(e2e, "POST", "QuotationLines", QuotationLineOpportunityId=did, QuotationLineSortOrder=0,
             **text_line("Ekstra", 3, 2.5))["QuotationLineId"]
    crm(e2e, "PUT", f"QuotationLines/{l2}", QuotationLinePrice=7.5, QuotationLineDiscount=10)
    crm(e2e, "DELETE", f"QuotationLines/{l3}")
    crm(e2e, "PUT", f"QuotationLines/{l1}", QuotationLineSortOrder=9)  # re-ordered: nothing to do in Uniconta

    def reconciled() -> bool:
        now = {r["WebcrmLineId"]: r for r in order_lines(e2e, number)}
        return set(now) == {str(l1), str(l2), str(l4)} and now[str(l2)]["Price"] == 7.5 \
            and now[str(l2)]["DiscountPct"] == 10
    wait_for(reconciled, what="lines added, changed and removed")
    settle(e2e)
    now = {r["WebcrmLineId"]: r for r in order_lines(e2e, number)}
    assert now[str(l1)]["RowId"] == rows[str(l1)] and now[str(l2)]["RowId"] == rows[str(l2)]  # matched by link
    assert (now[str(l4)]["Text"], now[str(l4)]["Qty"], now[str(l4)]["Price"]) == ("Ekstra", 3.0, 2.5)
    assert calls(e2e.uniconta_url, "DELETE", "DebtorOrderLineClient") == 1
    assert calls(e2e.uniconta_url, "PUT", "Update/DebtorOrderLineClient") == 1
    assert calls(e2e.uniconta_url, "POST", "InsertList/DebtorOrderLineClient") == 2
    assert order_for(e2e, did)["OrderNumber"] == number
    assert_totals_agree(e2e, did)
    assert delivery_of(e2e, did)["DeliveryErpStatus"] == "Synchronized"


def test_many_lines_with_discounts_credits_and_zero_prices_agree_to_the_ore(e2e: Stack) -> None:
    org_id, _ = customer(e2e)
    items(e2e, ("M-1", 0.0, 0.0))
    lines = []
    for i in range(24):
        qty = [1, 3, -2, 0.5, 7, -1][i % 6]
        price = [0.125, 19.995, 0, 1234.565, 0.005, 99.99][i % 6] + i
        discount = [0, 12.5, 100, 33.333, 0.5, 7][i % 6]
        cost = [0.333, 0, 12.345, 500, 0.004, 1][i % 6]
        lines.append(item_line("M-1", qty, price, discount=discount, cost=cost or 0.01) if i % 4 == 0
                     else text_line(f"Linje {i}", qty, price, discount=discount, cost=cost))
    lines.append(text_line("Kreditnota", -3, 333.335, discount=15, cost=111.115))
    did, _ids = new_delivery(e2e, org_id, lines)
    mark_ready(e2e, did)
    wait_for(lambda: synced(e2e, did, lines=25), timeout=30, what="the order with 25 lines")
    expected = assert_totals_agree(e2e, did)
    assert expected.value != 0 and expected.margin != 0


def test_unknown_item_number_fails_the_whole_order_clearly_then_goes_through_when_fixed(e2e: Stack) -> None:
    org_id, _ = customer(e2e)
    items(e2e, ("K-1", 5.0, 2.0))
    did, (_known, unknown) = new_delivery(e2e, org_id, [item_line("K-1", 1, 5, cost=2), item_line("NOPE-9", 1, 5)])
    mark_ready(e2e, did)
    wait_for(lambda: deadletters.count(e2e.redis) >= 1, what="a dead letter")
    wait_for(lambda: delivery_of(e2e, did)[STATUS].startswith("Error:"), what="the error on the delivery")
    settle(e2e)
    letters = list(deadletters.iter_all(e2e.redis))
    assert len(letters) == 1 and letters[0]["kind"] == "invalid" and "NOPE-9" in letters[0]["error"]
    assert "NOPE-9" in delivery_of(e2e, did)[STATUS]
    assert entries(e2e, did, "items-unknown")[0]["items"] == ["NOPE-9"]
    assert calls(e2e.uniconta_url, "POST", "DebtorOrder") == 0  # no half order
    assert order_for(e2e, did) is None

    crm(e2e, "PUT", f"QuotationLines/{unknown}", QuotationLineData1="K-1")
    order = wait_for(lambda: synced(e2e, did, lines=2), what="the order after the fix")
    assert {r["Item"] for r in order_lines(e2e, order["OrderNumber"])} == {"K-1"}
    assert delivery_of(e2e, did)[STATUS] == f"Uniconta order {order['OrderNumber']}"


def test_twenty_duplicate_and_concurrent_triggers_make_one_order(e2e: Stack) -> None:
    org_id, _ = customer(e2e)
    did, _ids = new_delivery(e2e, org_id, [text_line("A", 1, 100), text_line("B", 2, 50, discount=5)])
    settle(e2e)
    url = f"{e2e.receiver.url}/webhook/{CONNECTION}/webcrm?token={TOKEN}"
    start = threading.Barrier(21)

    def trigger(n: int) -> None:
        start.wait()
        hook = 7 if n % 2 else 8  # half are redeliveries of one hook call, half distinct calls
        stamp = "2024-01-01T00:00:00Z" if n % 2 else f"2024-01-01T00:00:{n:02d}Z"
        requests.post(url, json={"HookId": hook, "EventType": "Update", "Entity": "Delivery", "EntityId": did,
                                 "Timestamp": stamp}, timeout=10)

    threads = [threading.Thread(target=trigger, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    mark_ready(e2e, did)
    start.wait()
    for thread in threads:
        thread.join()
    wait_for(lambda: synced(e2e, did, lines=2), what="the order")
    settle(e2e)
    assert len(orders_for(e2e, did)) == 1
    assert calls(e2e.uniconta_url, "POST", "Insert/DebtorOrderClient") == 1
    assert calls(e2e.uniconta_url, "POST", "InsertList/DebtorOrderLineClient") == 1
    assert_totals_agree(e2e, did)


def test_worker_killed_between_order_insert_and_lines_completes_on_redelivery(e2e: Stack) -> None:
    org_id, _ = customer(e2e)
    did, _ids = new_delivery(e2e, org_id, [text_line("A", 1, 10), text_line("B", 1, 20), text_line("C", 1, 30)])
    settle(e2e)
    # Uniconta refuses the lines: the first attempt stops right after the order insert.
    admin(e2e.uniconta_url, "PUT", "/faults", json={"error_rate": 1.0, "error_status": 503,
                                                    "error_path": "InsertList/DebtorOrderLine"})
    mark_ready(e2e, did)
    wait_for(lambda: entries(e2e, did, "retry"), what="the failed line insert")
    order = order_for(e2e, did)
    assert order is not None and order_lines(e2e, order["OrderNumber"]) == []

    # The worker dies while it holds the job (waiting for its retry); the broker gives it to a new one.
    e2e.worker.kill()
    admin(e2e.uniconta_url, "PUT", "/faults", json={"error_rate": 0.0, "error_path": ""})
    for key in e2e.redis.scan_iter("sync:*:lock:*"):  # a dead worker's lock would expire on its own (60 s)
        e2e.redis.delete(key)
    held = e2e.redis.hlen("unacked")  # kombu's Redis transport: messages delivered and not acknowledged
    with Connection(e2e.env["REDIS_URL"], transport_options={"visibility_timeout": 0}) as conn:
        time.sleep(0.01)
        conn.default_channel.qos.restore_visible(num=100)  # what the visibility timeout does, without the wait
    assert held >= 1 and e2e.redis.hlen("unacked") == 0
    e2e.worker = start_worker(e2e.env, e2e.log)

    wait_for(lambda: synced(e2e, did, lines=3), timeout=30, what="the order completed after redelivery")
    settle(e2e)
    assert [o["OrderNumber"] for o in orders_for(e2e, did)] == [order["OrderNumber"]]
    assert calls(e2e.uniconta_url, "POST", "Insert/DebtorOrderClient") == 1
    assert len({r["WebcrmLineId"] for r in order_lines(e2e, order["OrderNumber"])}) == 3
    assert_totals_agree(e2e, did)


def test_invoiced_or_deleted_order_is_not_recreated_and_the_delivery_says_so(e2e: Stack) -> None:
    org_id, _ = customer(e2e)
    invoiced, (line,) = new_delivery(e2e, org_id, [text_line("A", 1, 100)])
    deleted, (other,) = new_delivery(e2e, org_id, [text_line("B", 1, 50)])
    mark_ready(e2e, invoiced)
    mark_ready(e2e, deleted)
    first = wait_for(lambda: synced(e2e, invoiced, lines=1), what="first order")
    second = wait_for(lambda: synced(e2e, deleted, lines=1), what="second order")
    settle(e2e)
    invoice = admin(e2e.uniconta_url, "POST", f"/invoice/{first['OrderNumber']}")
    erp(e2e, "DELETE", "DebtorOrderClient", OrderNumber=second["OrderNumber"])

    crm(e2e, "PUT", f"QuotationLines/{line}", QuotationLinePrice=120)
    mark_ready(e2e, deleted, DeliveryDescription="changed after the order was deleted")
    crm(e2e, "PUT", f"QuotationLines/{other}", QuotationLineQuantity=2)
    wait_for(lambda: "invoiced" in delivery_of(e2e, invoiced)[STATUS], what="invoiced shown on the delivery")
    wait_for(lambda: "deleted" in delivery_of(e2e, deleted)[STATUS], what="deleted shown on the delivery")
    settle(e2e)
    assert f"invoice {invoice['InvoiceNumber']}" in delivery_of(e2e, invoiced)[STATUS]
    for did, number in ((invoiced, first["OrderNumber"]), (deleted, second["OrderNumber"])):
        delivery = delivery_of(e2e, did)
        assert delivery["DeliveryErpStatus"] == "Synchronized" and delivery["DeliveryErpId"] == str(number)
        assert order_for(e2e, did) is None
    assert calls(e2e.uniconta_url, "POST", "Insert/DebtorOrderClient") == 2
    assert deadletters.count(e2e.redis) == 0


def test_currency_of_delivery_and_debtor_must_agree(e2e: Stack) -> None:
    org_id, _ = customer(e2e, currency="EUR")
    did, _ids = new_delivery(e2e, org_id, [text_line("A", 1, 100)], DeliveryCurrencyName="DKK")
    mark_ready(e2e, did)
    wait_for(lambda: delivery_of(e2e, did)[STATUS].startswith("Waiting:"), what="the waiting reason")
    settle(e2e)
    assert "EUR" in delivery_of(e2e, did)[STATUS] and "DKK" in delivery_of(e2e, did)[STATUS]
    assert entries(e2e, did, "waiting") and order_for(e2e, did) is None
    assert delivery_of(e2e, did)["DeliveryErpStatus"] == READY

    edit_delivery(e2e, did, DeliveryCurrencyName="EUR")
    order = wait_for(lambda: synced(e2e, did, lines=1), what="the order in EUR")
    assert order["Currency"] == "EUR"


def test_new_customers_first_order_creates_the_debtor_first(e2e: Stack) -> None:
    # The organisation's own hook is lost, so only the order can make its debtor.
    admin(e2e.webcrm_url, "PUT", "/faults", json={"webhook_drop_rate": 1.0})
    org = crm(e2e, "POST", "Organisations", OrganisationName="Ny Kunde A/S", OrganisationType="Kunde",
              OrganisationAddress="Torvet 2", OrganisationPostCode="5000", OrganisationCity="Odense",
              OrganisationCountry="Denmark")
    admin(e2e.webcrm_url, "POST", "/webhooks/flush")
    admin(e2e.webcrm_url, "PUT", "/faults", json={"webhook_drop_rate": 0.0})
    org_id = int(org["OrganisationId"])
    assert debtor_of(e2e, org_id) is None
    did, _ids = new_delivery(e2e, org_id, [text_line("Opstart", 1, 1500, cost=900)])
    mark_ready(e2e, did)

    order = wait_for(lambda: synced(e2e, did, lines=1), what="the first order of a new customer")
    debtor = debtor_of(e2e, org_id)
    assert debtor is not None and order["Account"] == debtor["Account"]
    assert calls(e2e.uniconta_url, "POST", "Insert/DebtorClient") == 1
    org_journal = journal.entries(e2e.redis, CONNECTION, "organisation", str(org_id))
    assert any(e["kind"] == "started" and e.get("origin") == "dependency" for e in org_journal)
    settle(e2e)
    assert len([d for d in tables(e2e.uniconta_url)["Debtor"].values()
                if d["_user"].get("WebcrmId") == str(org_id)]) == 1
    assert_totals_agree(e2e, did)


def test_order_for_organisation_missing_fields_waits_then_goes_through_when_fixed(e2e: Stack) -> None:
    org = crm(e2e, "POST", "Organisations", OrganisationName="Mangler ApS", OrganisationType="Kunde",
              OrganisationAddress="Vejen 3", OrganisationCountry="Denmark")
    org_id = int(org["OrganisationId"])
    did, _ids = new_delivery(e2e, org_id, [text_line("Rådgivning", 3, 850, discount=5, cost=400)])
    mark_ready(e2e, did)

    wait_for(lambda: delivery_of(e2e, did)[STATUS].startswith("Waiting:"), what="the waiting reason on the delivery")
    settle(e2e)
    status = delivery_of(e2e, did)[STATUS]
    assert "postcode" in status and "city" in status, status
    assert entries(e2e, did, "waiting")[0]["dependency"] == f"organisation:{org_id}"
    assert order_for(e2e, did) is None and debtor_of(e2e, org_id) is None
    assert deadletters.count(e2e.redis) == 0

    crm(e2e, "PUT", f"Organisations/{org_id}", OrganisationPostCode="9000", OrganisationCity="Aalborg")
    order = wait_for(lambda: synced(e2e, did, lines=1), what="the order once the organisation is fixed")
    assert order["Account"] == debtor_of(e2e, org_id)["Account"]
    assert delivery_of(e2e, did)[STATUS] == f"Uniconta order {order['OrderNumber']}"
    assert_totals_agree(e2e, did)
