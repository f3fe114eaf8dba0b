"""Order arithmetic, in Decimal, rounded half-up to 2 decimals (sandbox contract).

line Total  = round(Qty x Price x (1 - DiscountPct/100), 2)
line Margin = Total - round(Qty x CostPrice, 2)
order Total / Margin = sums of the lines; MarginRatio = Margin / Total x 100 (0 when Total is 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
# Room for the largest products of accepted values (|value| <= 1e15, see entities.MAX_NUMBER).
_CONTEXT = Context(prec=80)


def dec(value: Any) -> Decimal:
    """A stored number -> Decimal through its shortest repr, so 0.1 stays 0.1."""
    if value is None:
        return Decimal(0)
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_amounts(qty: Any, price: Any, discount_pct: Any, cost_price: Any) -> tuple[Decimal, Decimal]:
    """(Total, Margin) of one order line."""
    with localcontext(_CONTEXT):
        return _line_amounts(qty, price, discount_pct, cost_price)


def _line_amounts(qty: Any, price: Any, discount_pct: Any, cost_price: Any) -> tuple[Decimal, Decimal]:
    total = money(dec(qty) * dec(price) * (1 - dec(discount_pct) / HUNDRED))
    margin = total - money(dec(qty) * dec(cost_price))
    return total, margin


def order_amounts(lines: Iterable[dict]) -> tuple[Decimal, Decimal, Decimal]:
    """(Total, Margin, MarginRatio) of an order from its stored lines."""
    with localcontext(_CONTEXT):
        return _order_amounts(lines)


def _order_amounts(lines: Iterable[dict]) -> tuple[Decimal, Decimal, Decimal]:
    total = Decimal(0)
    margin = Decimal(0)
    for line in lines:
        line_total, line_margin = line_amounts(line.get("Qty"), line.get("Price"), line.get("DiscountPct"),
                                               line.get("CostPrice"))
        total += line_total
        margin += line_margin
    ratio = money(margin / total * HUNDRED) if total else Decimal(0)
    return money(total), money(margin), ratio

