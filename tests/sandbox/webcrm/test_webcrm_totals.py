"""Order totals of deliveries/opportunities computed from their quotation lines."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.webcrm.totals import line_margin, line_value, order_totals


@pytest.mark.parametrize(("qty", "price", "discount", "expected"), [
    (10, 4051, 10, "36459.00"),      # webCRM's own sample line (S4)
    (3, 19.99, 10, "53.97"),         # 53.973 -> 53.97
    (1, 0.125, 0, "0.13"),           # half-up, not banker's rounding
    (1, 2.675, 0, "2.68"),           # float 2.675 is 2.67499.. in binary; Decimal(str()) keeps 2.675
    (1, 100, 0, "100.00"),
    (0, 100, 0, "0.00"),
    (5, 0, 0, "0.00"),               # zero price
    (-2, 10.005, 0, "-20.01"),       # negative quantity (credit line): half away from zero
    (2, 50, 100, "0.00"),            # 100 % discount
    (1, 10, -10, "11.00"),           # a negative discount is a surcharge
])
def test_line_value(qty, price, discount, expected):
    assert line_value(qty, price, discount) == Decimal(expected)


def test_line_margin_rounds_the_cost_separately():
    # value 33.33 - round(3 x 3.335 = 10.005 -> 10.01) = 23.32
    assert line_margin(3, 11.11, 0, 3.335) == Decimal("23.32")
    assert line_margin(-1, 10, 0, 4) == Decimal("-6.00")


def test_order_totals_sum_line_amounts():
    lines = [
        {"QuotationLineQuantity": 10, "QuotationLinePrice": 4051, "QuotationLineDiscount": 10,
         "QuotationLineCostPrice": 501},
        {"QuotationLineQuantity": 1, "QuotationLinePrice": 401, "QuotationLineDiscount": 0,
         "QuotationLineCostPrice": 201},
    ]
    assert order_totals(lines) == (36860.0, 36860.0 - 5010 - 201)
    assert order_totals([]) == (0.0, 0.0)


def _line(api, parent, qty, price, discount=0.0, cost=0.0, **extra):
    return api.create("QuotationLines", {
        "QuotationLineOpportunityId": parent, "QuotationLineQuantity": qty, "QuotationLinePrice": price,
        "QuotationLineDiscount": discount, "QuotationLineCostPrice": cost, **extra})


def test_delivery_totals_follow_line_changes(api):
    org = api.org()
    delivery = api.delivery(org, DeliveryOrderValue=999.0)
    assert api.get(f"/Deliveries/{delivery}").json["DeliveryOrderValue"] == 999.0  # no lines: as written
    a = _line(api, delivery, 3, 19.99, discount=10, cost=10)        # 53.97 / 23.97
    b = _line(api, delivery, 2, 0, cost=5)                          # zero price: 0 / -10
    c = _line(api, delivery, -1, 12.5, discount=20, cost=4)         # credit: -10 / -6
    d = api.get(f"/Deliveries/{delivery}").json
    assert (d["DeliveryOrderValue"], d["DeliveryOrderGmValue"]) == (43.97, 7.97)
    # change one line (PUT is a full replacement: the parent must be sent again)
    api.put(f"/QuotationLines/{a}", json={"QuotationLineOpportunityId": delivery, "QuotationLineQuantity": 1,
                                          "QuotationLinePrice": 100, "QuotationLineDiscount": 12.5})
    d = api.get(f"/Deliveries/{delivery}").json
    assert (d["DeliveryOrderValue"], d["DeliveryOrderGmValue"]) == (77.5, 71.5)  # 87.5 - 10 (b) - 6 (c)
    # a PUT of the delivery cannot overwrite computed totals while it has lines
    api.put(f"/Deliveries/{delivery}", json={**d, "DeliveryOrderValue": 1.0, "DeliveryOrderGmValue": 1.0})
    assert api.get(f"/Deliveries/{delivery}").json["DeliveryOrderValue"] == 77.5
    for line in (a, b, c):
        api.delete(f"/QuotationLines/{line}")
    d = api.get(f"/Deliveries/{delivery}").json
    assert (d["DeliveryOrderValue"], d["DeliveryOrderGmValue"]) == (0.0, 0.0)


def test_lines_listed_per_delivery_and_opportunity(api):
    org = api.org()
    delivery, other = api.delivery(org), api.delivery(org)
    opportunity = api.create("Opportunities", {"OpportunityOrganisationId": org})
    second = _line(api, delivery, 1, 10, QuotationLineSortOrder=20)
    first = _line(api, delivery, 1, 10, QuotationLineSortOrder=10)
    _line(api, other, 1, 10)
    on_opp = _line(api, opportunity, 2, 2.5, discount=50)
    assert [ln["QuotationLineId"] for ln in api.get(f"/Deliveries/{delivery}/QuotationLines").json] == [first, second]
    assert [ln["QuotationLineId"] for ln in api.get(f"/Deliveries/{delivery}/QuotationLines?Size=1&Page=2").json] \
        == [second]
    assert [ln["QuotationLineId"] for ln in api.get(f"/Opportunities/{opportunity}/QuotationLines").json] == [on_opp]
    assert api.get(f"/Opportunities/{opportunity}").json["OpportunityOrderValue"] == 2.5
    line = api.get(f"/QuotationLines/{first}").json
    assert line["QuotationLineOrganisationId"] == org  # filled from the parent
    # moving a line to another parent recomputes both
    api.put(f"/QuotationLines/{second}", json={**line, "QuotationLineId": second,
                                               "QuotationLineOpportunityId": other})
    assert api.get(f"/Deliveries/{delivery}").json["DeliveryOrderValue"] == 10.0
    assert api.get(f"/Deliveries/{other}").json["DeliveryOrderValue"] == 20.0


def test_line_needs_an_existing_parent(api):
    assert api.post("/QuotationLines", json={"QuotationLinePrice": 1}).status_code == 400
    assert api.post("/QuotationLines", json={"QuotationLineOpportunityId": 12345}).status_code == 400


def test_line_from_catalogue_item_copies_data_and_prices(api):
    org = api.org()
    delivery = api.delivery(org)
    item = api.create("QuotationLines/LinkedData", {
        "QuotationLineLinkedDataItemData1": "10-1001", "QuotationLineLinkedDataItemData2": "Rustfri skrue 5x40",
        "QuotationLineLinkedDataItemData3": "stk", "QuotationLineLinkedDataItemData4": "Beslag",
        "QuotationLineLinkedDataItemPrice": 2.49, "QuotationLineLinkedDataItemCostPrice": 1.1})
    line = _line(api, delivery, 100, 0, QuotationLineLinkedDataId=item)
    got = api.get(f"/QuotationLines/{line}").json
    assert "QuotationLineLinkedDataId" not in got  # write-only (QuotationLineUpdateDto)
    assert [got[f"QuotationLineData{n}"] for n in range(1, 5)] == ["10-1001", "Rustfri skrue 5x40", "stk", "Beslag"]
    assert (got["QuotationLinePrice"], got["QuotationLineCostPrice"]) == (2.49, 1.1)
    d = api.get(f"/Deliveries/{delivery}").json
    assert (d["DeliveryOrderValue"], d["DeliveryOrderGmValue"]) == (249.0, 139.0)
    own_price = _line(api, delivery, 1, 3.0, QuotationLineLinkedDataId=item, QuotationLineData2="Special")
    got = api.get(f"/QuotationLines/{own_price}").json
    assert (got["QuotationLinePrice"], got["QuotationLineData2"], got["QuotationLineData1"]) == \
        (3.0, "Special", "10-1001")
    assert api.post("/QuotationLines", json={"QuotationLineOpportunityId": delivery,
                                             "QuotationLineLinkedDataId": 999}).status_code == 400


def test_seeded_deliveries_have_consistent_totals(api, client):
    client.post("/_sandbox/seed", json={"entity": "Organisations", "count": 5, "seed": 3})
    ids = client.post("/_sandbox/seed", json={"entity": "Deliveries", "count": 5, "seed": 3}).json["created"]
    for ident in ids:
        delivery = api.get(f"/Deliveries/{ident}").json
        lines = api.get(f"/Deliveries/{ident}/QuotationLines").json
        assert lines
        assert (delivery["DeliveryOrderValue"], delivery["DeliveryOrderGmValue"]) == order_totals(lines)
