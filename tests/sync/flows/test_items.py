"""Item mapping (pure): Uniconta InvItem → webCRM catalogue fields."""

from __future__ import annotations

from dataclasses import replace

from sync.config import ItemFlow
from sync.flows.items import PLACEHOLDER, map_item


def test_maps_configured_fields_and_prices() -> None:
    item = {"Item": " A-1 ", "Name": "Skrue æøå", "Unit": "Piece", "Group": "Jern", "SalesPrice1": 12.345,
            "SalesPrice2": 99, "CostPrice": "7.1"}
    out = map_item(item, ItemFlow())
    assert out == {
        "QuotationLineLinkedDataItemData1": "A-1",
        "QuotationLineLinkedDataItemData2": "Skrue æøå",
        "QuotationLineLinkedDataItemData3": "Piece",
        "QuotationLineLinkedDataItemData4": "Jern",
        "QuotationLineLinkedDataItemPrice": 12.35,
        "QuotationLineLinkedDataItemCostPrice": 7.1,
        "QuotationLineLinkedDataItemItemGroup": "Jern",
    }
    assert map_item(item, replace(ItemFlow(), price_field="SalesPrice2"))["QuotationLineLinkedDataItemPrice"] == 99


def test_empty_values_use_the_placeholder_webcrm_accepts() -> None:
    out = map_item({"Item": "B", "Unit": "None"}, ItemFlow())
    assert out["QuotationLineLinkedDataItemData2"] == PLACEHOLDER
    assert out["QuotationLineLinkedDataItemData3"] == PLACEHOLDER  # ItemUnit.None means no unit
    assert out["QuotationLineLinkedDataItemPrice"] == 0.0


def test_unit_and_group_can_be_left_out() -> None:
    out = map_item({"Item": "C", "Unit": "Piece", "Group": "G"}, replace(ItemFlow(), unit_field="", group_field=""))
    assert "QuotationLineLinkedDataItemData3" not in out and "QuotationLineLinkedDataItemData4" not in out
