"""Order arithmetic of deliveries and opportunities (Decimal, half-up to 2 decimals).

line value  = round(quantity x price x (1 - discount/100), 2)          (discount is a percent)
line margin = line value - round(quantity x cost price, 2)
order value = sum of line values;  order GM value = sum of line margins

ROUND_HALF_UP is Decimal's "half away from zero": -2.345 -> -2.35. Floats are converted through
their shortest repr (Decimal(str(x))) so 0.1 stays 0.1.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def dec(value: float | int | str | Decimal) -> Decimal:
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def round2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_value(quantity: float, price: float, discount: float) -> Decimal:
    return round2(dec(quantity) * dec(price) * (1 - dec(discount) / HUNDRED))


def line_margin(quantity: float, price: float, discount: float, cost: float) -> Decimal:
    return line_value(quantity, price, discount) - round2(dec(quantity) * dec(cost))


def quotation_line_amounts(line: dict) -> tuple[Decimal, Decimal]:
    """(value, margin) of a stored QuotationLineDto."""
    qty = line.get("QuotationLineQuantity", 0) or 0
    price = line.get("QuotationLinePrice", 0) or 0
    discount = line.get("QuotationLineDiscount", 0) or 0
    cost = line.get("QuotationLineCostPrice", 0) or 0
    value = line_value(qty, price, discount)
    return value, value - round2(dec(qty) * dec(cost))


def order_totals(lines: Iterable[dict]) -> tuple[float, float]:
    """(OrderValue, OrderGmValue) of a delivery/opportunity from its quotation lines, as JSON floats."""
    value = Decimal(0)
    margin = Decimal(0)
    for line in lines:
        v, m = quotation_line_amounts(line)
        value += v
        margin += m
    return float(round2(value)), float(round2(margin))
