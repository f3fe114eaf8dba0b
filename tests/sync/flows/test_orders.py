"""The order flow's pure parts: mapping a delivery and its lines, the by-link line plan, currencies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sync.config import OrderFlow, parse_connections
from sync.flows import orders_map as m

CFG = OrderFlow()
LINK = CFG.uniconta_line_link_field


def line(line_id: int, *, item: str = "", qty: float = 1, price: float = 10, discount: float = 0, cost: float = 0,
         memo: str = "", name: str = "", comment: str = "", sort: int = 0) -> dict[str, Any]:
    return {"QuotationLineId": line_id, "QuotationLineOpportunityId": 7, "QuotationLineData1": item,
            "QuotationLineData2": name, "QuotationLineQuantity": qty, "QuotationLinePrice": price,
            "QuotationLineDiscount": discount, "QuotationLineCostPrice": cost, "QuotationLineMemo": memo,
            "QuotationLineComment": comment, "QuotationLineSortOrder": sort}


def delivery(**fields: Any) -> dict[str, Any]:
    return {"DeliveryId": 7, "DeliveryOrganisationId": 3, "DeliveryNumber": "D-7", "DeliveryDescription": "Tilbud",
            "DeliveryErpStatus": "ReadyForSynchronization", "DeliveryErpId": "", "DeliveryCurrencyName": "",
            "DeliveryResponsible": 0, **fields}


# --- lines ---------------------------------------------------------------------------------------


def test_item_line_maps_item_quantity_price_discount_cost_text_and_link() -> None:
    mapped = m.map_line(line(11, item=" V-100 ", qty=2.5, price=19.95, discount=10, cost=7.25, memo="Skrue",
                             comment="Levering fredag"), CFG)
    assert mapped == {LINK: "11", "Item": "V-100", "Text": "Skrue", "Qty": 2.5, "Price": 19.95, "DiscountPct": 10.0,
                      "CostPrice": 7.25, "Note": "Levering fredag"}


def test_line_without_item_number_is_a_text_line_with_its_price() -> None:
    mapped = m.map_line(line(12, price=250, memo="Montage"), CFG)
    assert mapped["Item"] is None and mapped["Text"] == "Montage" and mapped["Price"] == 250.0


def test_catalogue_placeholder_is_no_item_and_name_is_the_text_fallback() -> None:
    mapped = m.map_line(line(13, item="-", name="Fragt"), CFG)
    assert mapped["Item"] is None and mapped["Text"] == "Fragt"
    assert m.map_line(line(13, item="-", name="-"), CFG)["Text"] is None
    assert m.map_line(line(13, name="Fragt"), OrderFlow(line_text_field=""))["Text"] is None


def test_configured_item_number_field_is_used() -> None:
    cfg = OrderFlow(item_number_field="QuotationLineData4")
    assert m.item_number({**line(1, item="X"), "QuotationLineData4": "U-4"}, cfg) == "U-4"
    assert m.item_number(line(1, item="X"), cfg) is None


def test_long_texts_are_cut_to_uniconta_lengths() -> None:
    mapped = m.map_line(line(14, memo="x" * 600, comment="y" * 2000), CFG)
    assert len(mapped["Text"]) == 500 and len(mapped["Note"]) == 1000


def test_lines_sort_by_sort_order_then_id() -> None:
    lines = [line(3, sort=1), line(1, sort=2), line(2, sort=1)]
    assert [x["QuotationLineId"] for x in sorted(lines, key=m.line_sort_key)] == [2, 3, 1]


# --- header ----------------------------------------------------------------------------------------


def test_header_maps_account_currency_salesperson_references_and_link() -> None:
    header = m.map_header(delivery(), CFG, account="10001", currency="EUR", employee="AJ")
    assert header == {"WebcrmDeliveryId": "7", "Account": "10001", "Currency": "EUR", "Employee": "AJ",
                      "OurRef": "D-7", "Remark": "Tilbud"}


def test_header_leaves_salesperson_alone_without_a_user_link() -> None:
    assert "Employee" not in m.map_header(delivery(), CFG, account="1", currency=None, employee=None)


def test_ready_and_sent() -> None:
    assert m.is_ready(delivery(), CFG)
    assert not m.is_ready(delivery(DeliveryErpStatus="NotReadyForSynchronization"), CFG)
    custom = OrderFlow(ready_field="DeliveryStatus", ready_values=("Completed", "Planned"))
    assert m.is_ready(delivery(DeliveryStatus="Planned"), custom)
    assert not m.is_ready(delivery(DeliveryStatus="New"), custom)
    assert not m.was_sent(delivery()) and m.was_sent(delivery(DeliveryErpId="12"))


# --- currency --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs", "agree"), [
    ("", None, True), ("DKK", None, True), ("00", None, True), ("dkk", "DKK", True), ("EUR", "EUR", True),
    ("EUR", None, False), ("", "EUR", False), ("SEK", "NOK", False),
])
def test_currency_must_agree_with_the_debtor(ours: str, theirs: str | None, agree: bool) -> None:
    problem = m.currency_problem(delivery(DeliveryCurrencyName=ours), {"Account": "1", "Currency": theirs}, CFG)
    assert (problem is None) is agree
    if not agree:
        assert "currency" in problem and "debtor 1" in problem


def test_order_gets_the_debtors_currency() -> None:
    assert m.order_currency({"Currency": "EUR"}) == "EUR"
    assert m.order_currency({}) is None


# --- line plan -------------------------------------------------------------------------------------


def stored(row_id: int, link: str | None, number: int, **fields: Any) -> dict[str, Any]:
    base = {"RowId": row_id, "OrderNumber": 1, "LineNumber": number, "Qty": 1.0, "Price": 10.0, "DiscountPct": 0.0,
            "CostPrice": 0.0, "Text": None}
    if link is not None:
        base[LINK] = link
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}  # Uniconta leaves nulls out


def test_plan_adds_new_updates_changed_deletes_removed_by_link() -> None:
    wanted = [m.map_line(line(1), CFG), m.map_line(line(2, price=12), CFG), m.map_line(line(4), CFG)]
    existing = [stored(101, "1", 1), stored(102, "2", 2), stored(103, "3", 3)]
    plan = m.plan_lines(wanted, existing, LINK)
    assert [x[LINK] for x in plan.insert] == ["4"]
    assert [(cur["RowId"], new["Price"]) for cur, new in plan.update] == [(102, 12.0)]
    assert [x["RowId"] for x in plan.delete] == [103]
    assert plan.unchanged == 1 and plan.writes == 3


def test_reordered_lines_change_nothing() -> None:
    wanted = [m.map_line(line(2), CFG), m.map_line(line(1), CFG)]
    plan = m.plan_lines(wanted, [stored(101, "1", 1), stored(102, "2", 2)], LINK)
    assert plan.writes == 0 and plan.unchanged == 2


def test_numbers_compare_as_decimals_and_missing_means_null() -> None:
    wanted = [m.map_line(line(1, price=0.1, memo=""), CFG)]
    plan = m.plan_lines(wanted, [stored(101, "1", 1, Price=0.1000)], LINK)
    assert plan.writes == 0


def test_duplicate_lines_of_one_link_are_removed_and_unlinked_lines_kept() -> None:
    wanted = [m.map_line(line(1), CFG)]
    existing = [stored(101, "1", 1), stored(105, "1", 5), stored(106, None, 6)]
    plan = m.plan_lines(wanted, existing, LINK)
    assert [x["RowId"] for x in plan.delete] == [105]
    assert [x["RowId"] for x in plan.unlinked] == [106]
    assert plan.summary() == {"added": 0, "changed": 0, "removed": 1, "unchanged": 1, "not_from_webcrm": 1}


def test_cost_price_uniconta_filled_in_from_the_item_is_not_a_change() -> None:
    wanted = [m.map_line(line(1, item="V-1", cost=0), CFG)]
    assert m.plan_lines(wanted, [stored(101, "1", 1, Item="V-1", CostPrice=4.5)], LINK).writes == 0
    wanted = [m.map_line(line(1, cost=0), CFG)]  # a text line has no item to take a cost from
    assert m.plan_lines(wanted, [stored(101, "1", 1, CostPrice=4.5)], LINK).writes == 1


def test_item_line_becoming_a_text_line_is_an_update() -> None:
    wanted = [m.map_line(line(1, memo="Tekst"), CFG)]
    plan = m.plan_lines(wanted, [stored(101, "1", 1, Item="V-1", Text="Tekst")], LINK)
    assert len(plan.update) == 1 and plan.update[0][1]["Item"] is None


# --- totals on the lines we send --------------------------------------------------------------------


def test_totals_of_mapped_lines_equal_the_totals_webcrm_shows() -> None:
    lines = [line(1, item="A", qty=3, price=19.95, discount=10, cost=7.5), line(2, qty=-1, price=50, cost=20),
             line(3, price=0, cost=4), line(4, qty=2, price=99.99, discount=100, cost=1)]
    webcrm = m.webcrm_totals(lines)
    uniconta = m.uniconta_totals(m.map_line(x, CFG) for x in lines)
    assert webcrm == uniconta
    assert webcrm.value == Decimal("3.87") and webcrm.margin == Decimal("-4.63")


def test_cost_price_warning_for_item_lines_without_cost() -> None:
    wanted = [m.map_line(line(1, item="A", qty=2, cost=0), CFG), m.map_line(line(2, item="B", cost=3), CFG)]
    items = {"A": {"Item": "A", "CostPrice": 1.5}, "B": {"Item": "B", "CostPrice": 9}}
    assert m.cost_price_warnings(wanted, items) == [{"item": "A", "item_cost_price": 1.5, "margin_difference": 3.0}]


def test_input_projection_ignores_what_the_flow_writes_back() -> None:
    before = m.input_projection(delivery(), [line(1)], CFG, None)
    after = m.input_projection(delivery(DeliveryErpId="5", DeliveryErpStatus="Synchronized",
                                        DeliveryCustom15="Uniconta order 5"), [line(1)], CFG, None)
    assert before == after
    assert m.input_projection(delivery(), [line(1, price=11)], CFG, None) != before
    assert m.input_projection(delivery(), [line(1)], CFG, "AJ") != before


# --- configuration ---------------------------------------------------------------------------------


def _conn(orders: dict[str, Any]) -> Any:
    doc = {"connections": {"c": {"webhook": {"tokens": ["t"]},
                                 "webcrm": {"base_url": "http://w", "auth_code": "a"},
                                 "uniconta": {"base_url": "http://u", "company_id": 1, "username": "u",
                                              "password": "p"},
                                 "orders": orders}}}
    return parse_connections(doc, source="test")["c"].orders


def test_order_settings_load_and_validate() -> None:
    cfg = _conn({"status_field": "DeliveryCustom3", "company_currency": "EUR", "line_text_field": ""})
    assert cfg.status_field == "DeliveryCustom3" and cfg.company_currency == "EUR" and cfg.line_text_field == ""
    assert _conn({}).status_field == "DeliveryCustom15"
    for bad in ({"status_field": "DeliveryErpStatus"}, {"status_field": "OrganisationCustom1"},
                {"company_currency": "kroner"}, {"ready_field": "DeliveryCustom1", "status_field": "DeliveryCustom1"}):
        with pytest.raises(Exception, match="orders"):
            _conn(bad)
