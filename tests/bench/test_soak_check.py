"""The soak's checker finds what it is there to find (pure: fabricated reads of both systems, no stack).

A checker that always says "no findings" would make the soak pass for nothing; these cases show that a
differing field, a duplicate, a missing and a stray counterpart are each reported, and that an agreeing
pair and a record kept unsynced on purpose are not.
"""

from __future__ import annotations

import tomllib
from typing import Any

from bench._soak_check import Checker, Systems
from sync.config import parse_connections
from sync.flows.items import map_item

CONFIG = """
[connections.c.webhook]
tokens = ["t"]
[connections.c.webcrm]
base_url = "https://api.webcrm.com"
auth_code = "a"
[connections.c.uniconta]
base_url = "https://odata.uniconta.com"
company_id = 1
username = "u"
password = "p"
"""


class Walk:
    deleted: dict[str, dict[str, int]] = {"item": {"9": 41}}


def conn() -> Any:
    return parse_connections(tomllib.loads(CONFIG), source="test.toml")["c"]


def item(number: str, price: float, **extra: Any) -> dict[str, Any]:
    return {"Item": number, "Name": f"Item {number}", "SalesPrice1": price, "CostPrice": price / 2, "Group": "G",
            "Unit": "None", **extra}


def systems(items: list[dict[str, Any]], catalogue: list[dict[str, Any]]) -> Systems:
    return Systems(orgs={}, persons={}, users={}, active_users=set(), deliveries={}, lines={}, catalogue=catalogue,
                   debtors=[], items={i["Item"]: i for i in items}, orders=[], order_lines={}, employees=[],
                   contacts=[], invoices=[])


def check(items: list[dict[str, Any]], catalogue: list[dict[str, Any]]) -> Checker:
    return Checker(conn(), systems(items, catalogue), Walk()).run()


def row(number: str, price: float, **changes: Any) -> dict[str, Any]:
    return {**map_item(item(number, price), conn().items), **changes}


def test_an_agreeing_pair_and_a_blocked_item_are_no_finding() -> None:
    checker = check([item("1", 10.0), item("2", 5.0, Blocked=True)], [row("1", 10.0)])
    assert checker.findings == []
    assert checker.pairs["items"] == 1
    assert [u.rule for u in checker.unsynced] == ["blocked in Uniconta: not in the catalogue"]


def test_a_differing_price_is_a_disagreement_with_both_values() -> None:
    checker = check([item("1", 10.0)], [row("1", 10.0, QuotationLineLinkedDataItemPrice=12.5)])
    [finding] = checker.findings
    assert (finding.kind, finding.prop, finding.webcrm, finding.uniconta) == \
        ("disagreement", "QuotationLineLinkedDataItemPrice", 12.5, 10.0)
    assert finding.records == ["uniconta:item:1"]


def test_duplicates_missing_and_strays_are_each_reported() -> None:
    checker = check([item("1", 10.0), item("2", 3.0)], [row("1", 10.0), row("1", 10.0), row("9", 1.0)])
    kinds = sorted((f.kind, f.what) for f in checker.findings)
    assert kinds == [
        ("duplicate", "item 1 is 2 times in the catalogue"),
        ("missing", "item 2 is not in the catalogue"),
        ("stray", "catalogue has item number 9, which Uniconta does not have"),
    ]
    stray = next(f for f in checker.findings if f.kind == "stray")
    assert "deleted in Uniconta at op 41" in stray.note
