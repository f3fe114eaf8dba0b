"""Pure parts of the order flow: webCRM delivery and quotation lines → Uniconta order projection,
and the by-link reconciliation plan of the order's lines. No I/O: unit-tested with plain dicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync import totals
from sync.config import OrderFlow

PLACEHOLDER = "-"  # what the catalogue writes into empty Data fields (items flow, reference §6)
ERP_STATUS = "DeliveryErpStatus"
ERP_ID = "DeliveryErpId"
ERP_SYNC_TIME = "DeliveryErpSyncDateTime"
SYNCHRONIZED = "Synchronized"
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")

# Uniconta max lengths (docs/sandbox-uniconta.md, Properties): longer text is cut, not refused.
TEXT_MAX = 500
NOTE_MAX = 1000
REMARK_MAX = 1000
REF_MAX = 60
ITEM_MAX = 40
# The order fields this flow owns; everything else on the Uniconta order is left alone.
LINE_FIELDS = ("Item", "Text", "Qty", "Price", "DiscountPct", "CostPrice", "Note")
NUMBER_FIELDS = frozenset({"Qty", "Price", "DiscountPct", "CostPrice"})


def text(value: Any) -> str:
    """A webCRM string field, trimmed; None, "" and the catalogue's "-" placeholder are empty."""
    result = "" if value is None else str(value).strip()
    return "" if result == PLACEHOLDER else result


def _cut(value: str, limit: int) -> str | None:
    return value[:limit] or None


def is_ready(delivery: Mapping[str, Any], cfg: OrderFlow) -> bool:
    """Whether the delivery is marked for the ERP (`ready_field` holds one of `ready_values`)."""
    return text(delivery.get(cfg.ready_field)) in cfg.ready_values


def was_sent(delivery: Mapping[str, Any]) -> bool:
    """Whether a Uniconta order was made for this delivery once: we write its number to DeliveryErpId."""
    return bool(text(delivery.get(ERP_ID)))


def item_number(line: Mapping[str, Any], cfg: OrderFlow) -> str | None:
    """The Uniconta item number on a quotation line, or None for a text line."""
    return text(line.get(cfg.item_number_field)) or None


def line_sort_key(line: Mapping[str, Any]) -> tuple[int, int]:
    return int(line.get("QuotationLineSortOrder") or 0), int(line.get("QuotationLineId") or 0)


def webcrm_line_amounts(line: Mapping[str, Any]) -> totals.Amounts:
    return totals.line_amounts(line.get("QuotationLineQuantity"), line.get("QuotationLinePrice"),
                               line.get("QuotationLineDiscount"), line.get("QuotationLineCostPrice"))


def webcrm_totals(lines: Iterable[Mapping[str, Any]]) -> totals.Amounts:
    """What webCRM shows for a delivery with these lines (its DeliveryOrderValue / DeliveryOrderGmValue)."""
    return totals.order_totals(webcrm_line_amounts(line) for line in lines)


def uniconta_totals(lines: Iterable[Mapping[str, Any]]) -> totals.Amounts:
    """What Uniconta computes for an order with these (mapped or stored) lines."""
    return totals.order_totals(totals.line_amounts(line.get("Qty"), line.get("Price"), line.get("DiscountPct"),
                                                   line.get("CostPrice")) for line in lines)


def _number(value: Any) -> float:
    """A JSON number for Uniconta, exactly as webCRM gave it (Decimal through its shortest repr)."""
    return float(totals.dec(value))


def map_line(line: Mapping[str, Any], cfg: OrderFlow) -> dict[str, Any]:
    """The Uniconta order line for a quotation line (without OrderNumber / LineNumber).

    Lines without an item number are text lines: no `Item`, but their text and price.
    The text is the line's memo, else its name field (`line_text_field`).
    """
    item = item_number(line, cfg)
    memo = text(line.get("QuotationLineMemo")) or (text(line.get(cfg.line_text_field)) if cfg.line_text_field
                                                    else "")
    return {
        cfg.uniconta_line_link_field: str(line["QuotationLineId"]),
        "Item": item,
        "Text": _cut(memo, TEXT_MAX),
        "Qty": _number(line.get("QuotationLineQuantity")),
        "Price": _number(line.get("QuotationLinePrice")),
        "DiscountPct": _number(line.get("QuotationLineDiscount")),
        "CostPrice": _number(line.get("QuotationLineCostPrice")),
        "Note": _cut(text(line.get("QuotationLineComment")), NOTE_MAX),
    }


def map_header(delivery: Mapping[str, Any], cfg: OrderFlow, *, account: str, currency: str | None,
               employee: str | None) -> dict[str, Any]:
    """The order header fields this flow owns (plus the delivery link).

    `Employee` is set only when the responsible user is linked to an employee; otherwise the
    order's salesperson is left as it is (empty on a new order).
    """
    header: dict[str, Any] = {
        cfg.uniconta_link_field: str(delivery["DeliveryId"]),
        "Account": account,
        "Currency": currency,
        "OurRef": _cut(text(delivery.get("DeliveryNumber")), REF_MAX),
        "Remark": _cut(text(delivery.get("DeliveryDescription")), REMARK_MAX),
    }
    if employee:
        header["Employee"] = employee
    return header


def currency_code(value: Any) -> str | None:
    """An ISO currency code, or None when the field holds none (webCRM's sample value "00", empty)."""
    code = text(value).upper()
    return code if _CURRENCY.match(code) else None


def currency_problem(delivery: Mapping[str, Any], debtor: Mapping[str, Any], cfg: OrderFlow) -> str | None:
    """Why the delivery's currency and the debtor's disagree, or None when they agree.

    An empty currency on either side means the company currency (`company_currency`): Uniconta's
    null currency on a debtor is the company's, and a delivery without one is priced in it.
    """
    company = cfg.company_currency.upper()
    ours = currency_code(delivery.get("DeliveryCurrencyName")) or company
    theirs = currency_code(debtor.get("Currency")) or company
    if ours == theirs:
        return None
    return (f"the delivery's currency {ours} differs from debtor {debtor.get('Account')}'s currency {theirs}; "
            "change one of them")


def order_currency(debtor: Mapping[str, Any]) -> str | None:
    """The currency the order gets: the debtor's (None = the company currency)."""
    return currency_code(debtor.get("Currency"))


def same_value(current: Any, wanted: Any, *, number: bool = False) -> bool:
    """Uniconta's value equals the projection's: missing = null = "" and numbers compared as Decimal."""
    if number:
        try:
            return totals.dec(current) == totals.dec(wanted)
        except ValueError:
            return False
    a = "" if current is None else str(current).strip()
    b = "" if wanted is None else str(wanted).strip()
    return a == b


def changed_fields(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """The projection's keys whose value differs on the Uniconta record."""
    return [k for k, v in wanted.items() if not same_value(current.get(k), v, number=k in NUMBER_FIELDS)]


@dataclass
class LinePlan:
    """What to do with the Uniconta lines of one order, matched by link field, never by position."""

    insert: list[dict[str, Any]] = field(default_factory=list)
    update: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)  # (current, wanted)
    delete: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    unlinked: list[dict[str, Any]] = field(default_factory=list)  # lines a person added in Uniconta

    @property
    def writes(self) -> int:
        return len(self.insert) + len(self.update) + len(self.delete)

    def summary(self) -> dict[str, int]:
        return {"added": len(self.insert), "changed": len(self.update), "removed": len(self.delete),
                "unchanged": self.unchanged, "not_from_webcrm": len(self.unlinked)}


def plan_lines(wanted: list[dict[str, Any]], existing: Iterable[Mapping[str, Any]], link_field: str) -> LinePlan:
    """Add the new, update the changed, delete the removed (and duplicates of one link).

    `wanted` are mapped lines in webCRM order; `existing` the order's lines as read from Uniconta.
    Lines without a link were added in Uniconta by a person: they are left alone and reported.
    """
    plan = LinePlan()
    by_link: dict[str, dict[str, Any]] = {}
    for line in sorted(existing, key=lambda r: (int(r.get("LineNumber") or 0), int(r.get("RowId") or 0))):
        link = text(line.get(link_field))
        if not link:
            plan.unlinked.append(dict(line))
        elif link in by_link:
            plan.delete.append(dict(line))  # a second line for one webCRM line: never expected, repaired
        else:
            by_link[link] = dict(line)
    for line in wanted:
        current = by_link.pop(str(line[link_field]), None)
        if current is None:
            plan.insert.append(line)
        elif changed_fields(current, _compared(line)):
            plan.update.append((current, line))
        else:
            plan.unchanged += 1
    plan.delete.extend(by_link.values())
    return plan


def _compared(line: Mapping[str, Any]) -> dict[str, Any]:
    """The line fields to compare. An item line sent with cost price 0 gets the item's cost price
    in Uniconta: that is not a change to undo on every sync."""
    fields = {k: line[k] for k in LINE_FIELDS}
    if fields.get("Item") and totals.dec(fields.get("CostPrice")) == 0:
        del fields["CostPrice"]
    return fields


def cost_price_warnings(wanted: Iterable[Mapping[str, Any]], items: Mapping[str, Mapping[str, Any]]
                        ) -> list[dict[str, Any]]:
    """Item lines with cost price 0, where Uniconta fills in the item's cost price (so margins differ)."""
    out = []
    for line in wanted:
        item = items.get(str(line.get("Item") or ""))
        if item is None or totals.dec(line.get("CostPrice")) != 0:
            continue
        item_cost = totals.dec(item.get("CostPrice"))
        if item_cost:
            out.append({"item": line["Item"], "item_cost_price": float(item_cost),
                        "margin_difference": float(totals.money(totals.dec(line.get("Qty")) * item_cost))})
    return out


def input_projection(delivery: Mapping[str, Any], lines: Iterable[Mapping[str, Any]], cfg: OrderFlow,
                     employee: str | None) -> dict[str, Any]:
    """Everything from webCRM that decides the Uniconta order (for the fingerprint shortcut)."""
    return {
        "organisation": int(delivery.get("DeliveryOrganisationId") or 0),
        "currency": currency_code(delivery.get("DeliveryCurrencyName")),
        "employee": employee,
        "header": map_header(delivery, cfg, account="", currency=None, employee=employee),
        "lines": {str(line["QuotationLineId"]): map_line(line, cfg) for line in lines},
        "config": repr(cfg),
    }


def describe(amounts: totals.Amounts) -> str:
    return (f"value {amounts.value}, cost {amounts.cost}, margin {amounts.margin} "
            f"({amounts.margin_percent} %)")

