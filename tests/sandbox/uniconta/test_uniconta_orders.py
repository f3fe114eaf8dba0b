"""Order arithmetic (Decimal, half-up to 2 decimals) and admin invoicing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.uniconta import orders


@pytest.mark.parametrize(("qty", "price", "pct", "cost", "total", "margin"), [
    (2, 25, 0, 10, "50.00", "30.00"),
    (3, 19.99, 10, 12.5, "53.97", "16.47"),      # 3 * 19.99 * 0.9 = 53.973
    (1, 0.125, 0, 0, "0.13", "0.13"),            # half-up, not banker's
    (1, 0.005, 0, 0, "0.01", "0.01"),
    (7, 0, 0, 3.333, "0.00", "-23.33"),          # zero price: negative margin
    (-2, 25, 0, 10, "-50.00", "-30.00"),         # negative qty (credit line)
    (1.5, 99.99, 12.5, 40, "131.24", "71.24"),   # 1.5 * 99.99 * 0.875 = 131.236875
    (10, 10, 100, 5, "0.00", "-50.00"),          # 100 % discount
    (0.1, 0.1, 0, 0.1, "0.01", "0.00"),          # 0.01 both, floats kept exact through repr
])
def test_line_amounts(qty, price, pct, cost, total, margin):
    assert orders.line_amounts(qty, price, pct, cost) == (Decimal(total), Decimal(margin))


def test_order_amounts_and_margin_ratio():
    lines = [{"Qty": 2, "Price": 25, "DiscountPct": 0, "CostPrice": 10},
             {"Qty": 1, "Price": 10, "DiscountPct": 50, "CostPrice": 6}]
    assert orders.order_amounts(lines) == (Decimal("55.00"), Decimal("29.00"), Decimal("52.73"))
    assert orders.order_amounts([]) == (Decimal("0.00"), Decimal("0.00"), Decimal(0))
    assert orders.order_amounts([{"Qty": 1, "Price": 0, "DiscountPct": 0, "CostPrice": 5}])[2] == Decimal(0)


@pytest.fixture
def order(api):
    api.debtor("1000", Name="Østergaard Smed ApS")
    api.item("A-1", CostPrice=10)
    api.item("B-2", CostPrice=0)
    api.make("DebtorOrderClient", {"Account": "1000", "YourRef": "PO-7"})
    return api


def get_order(api) -> dict:
    return api.get("DebtorOrderClient", Name="OrderNumber", Value="1").get_json()[0]


def test_order_totals_follow_the_lines(order):
    api = order
    first = api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Item": "A-1", "Qty": 2, "Price": 25})
    assert first["Total"] == 50.0 and first["Margin"] == 30.0 and first["CostPrice"] == 10.0
    api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Item": "B-2", "Qty": 1, "Price": 10, "DiscountPct": 50,
                                       "CostPrice": 6})
    head = get_order(api)
    assert (head["Total"], head["Margin"], head["MarginRatio"]) == (55.0, 29.0, 52.73)
    api.update("DebtorOrderLineClient", {"RowId": first["RowId"], "OrderNumber": 1, "Item": "A-1", "Qty": -1,
                                         "Price": 25})
    head = get_order(api)
    assert (head["Total"], head["Margin"]) == (-20.0, -16.0)  # -25 + 5; -15 + -1
    api.delete("DebtorOrderLineClient", {"RowId": first["RowId"]})
    head = get_order(api)
    assert (head["Total"], head["Margin"], head["MarginRatio"]) == (5.0, -1.0, -20.0)


def test_text_lines_and_zero_price(order):
    api = order
    text = api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Text": "Leveres fredag"})
    assert text["Total"] == 0.0 and "Item" not in text
    free = api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Item": "A-1", "Qty": 3, "Price": 0})
    assert free["Total"] == 0.0 and free["Margin"] == -30.0
    assert get_order(api)["MarginRatio"] == 0.0


def test_order_totals_are_read_only(order):
    body = order.update("DebtorOrderClient", {"OrderNumber": 1, "Account": "1000", "Total": 999}).get_json()
    assert body["Total"] == 0.0


def test_invoicing_creates_an_invoice_and_removes_the_order(order):
    api = order
    api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Item": "A-1", "Qty": 2, "Price": 25})
    api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Text": "Fragt", "Qty": 1, "Price": 49.95})
    response = api.admin("POST", "invoice/1")
    assert response.status_code == 200
    invoice = response.get_json()
    assert invoice["InvoiceNumber"] == 1 and invoice["OrderNumber"] == 1 and invoice["Account"] == "1000"
    assert invoice["Name"] == "Østergaard Smed ApS" and invoice["YourRef"] == "PO-7"
    assert invoice["NetAmount"] == 99.95 and invoice["Margin"] == 79.95
    assert [line["LineNumber"] for line in invoice["Lines"]] == [1, 2]
    assert api.get("DebtorOrderClient").get_json() == []
    assert api.get("DebtorOrderLineClient").get_json() == []
    [listed] = api.get("DebtorInvoiceClient").get_json()
    assert listed["InvoiceNumber"] == 1 and "Lines" not in listed
    assert api.odata("DebtorInvoiceClient").get_json()["value"][0]["NetAmount"] == 99.95
    # the invoice refers to the debtor
    response = api.delete("DebtorClient", {"Account": "1000"})
    assert response.get_json()["ErrorCode"] == "CouldNotDeleteRecordThatIsReferred"


def test_invoicing_errors(order):
    api = order
    response = api.admin("POST", "invoice/1")
    assert response.status_code == 400 and response.get_json()["ErrorCode"] == "NoLinesFound"
    response = api.admin("POST", "invoice/99")
    assert response.status_code == 404 and response.get_json()["ErrorCode"] == "CouldNotFind"
    assert api.admin("POST", "invoice/abc").status_code == 404


def test_huge_numbers_are_400_and_the_largest_accepted_ones_compute(order):
    api = order
    response = api.insert("DebtorOrderLineClient", {"OrderNumber": 1, "Qty": 1e16, "Price": 1})
    assert response.status_code == 400 and response.get_json()["Field"] == "Qty"
    line = api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Qty": 1e15, "Price": 1e15, "DiscountPct": -1e15,
                                              "CostPrice": 1e15})
    assert line["Total"] > 1e40
    assert get_order(api)["Total"] == line["Total"]
