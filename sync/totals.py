"""Order arithmetic, in one place: line value, cost, contribution margin (dækningsbidrag) and margin %.

Both systems compute an order the same way (docs/sandbox-webcrm.md "Order totals",
docs/sandbox-uniconta.md "Order arithmetic"), and so does the sync:

    line value  = round(qty × unit price × (1 − discount % / 100), 2)
    line cost   = round(qty × cost price, 2)
    line margin = line value − line cost
    order value / cost / margin = the sums over the lines
    margin %    = round(margin / value × 100, 2); 0 when the value is 0

Decimal throughout, rounded half-up to øre ("half away from zero": −2.345 → −2.35, as
Decimal's ROUND_HALF_UP does). Floats enter through their shortest repr, so 0.1 stays 0.1
rather than becoming 0.1000000000000000055…. Pure: no I/O, unit-tested in tests/sync/test_totals.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from typing import Any

ORE = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal(0)
# Enough digits for the product of any two amounts either API accepts (|x| <= 1e15): the
# default 28 digits would round quietly before the quantize to øre.
_CONTEXT = Context(prec=80)


def dec(value: Any) -> Decimal:
    """A number from JSON (int, float, numeric string, None) as Decimal; None and "" are 0.

    Raises ValueError for anything that is not a finite number.
    """
    if value is None or value == "":
        return ZERO
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        result = value
    else:
        try:
            result = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def money(value: Decimal) -> Decimal:
    """Rounded half-up to øre (2 decimals)."""
    with localcontext(_CONTEXT):
        return value.quantize(ORE, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Amounts:
    """Value, cost and margin (in amount and percent) of one line or a whole order, in øre."""

    value: Decimal
    cost: Decimal
    margin: Decimal

    @property
    def margin_percent(self) -> Decimal:
        return margin_percent(self.margin, self.value)

    def as_floats(self) -> dict[str, float]:
        """For journals and JSON: value, cost, margin, margin_percent."""
        return {"value": float(self.value), "cost": float(self.cost), "margin": float(self.margin),
                "margin_percent": float(self.margin_percent)}


def margin_percent(margin: Decimal, value: Decimal) -> Decimal:
    """Contribution margin in percent of the value, 2 decimals; 0 when the value is 0."""
    if not value:
        return money(ZERO)
    with localcontext(_CONTEXT):
        return money(margin / value * HUNDRED)


def line_amounts(qty: Any, price: Any, discount_pct: Any = 0, cost_price: Any = 0) -> Amounts:
    """One line: quantity, unit price, discount in percent, unit cost price."""
    q, p, d, c = dec(qty), dec(price), dec(discount_pct), dec(cost_price)
    with localcontext(_CONTEXT):
        value = money(q * p * (1 - d / HUNDRED))
        cost = money(q * c)
        return Amounts(value, cost, value - cost)


def order_totals(lines: Iterable[Amounts]) -> Amounts:
    """The sums of the lines' amounts."""
    value = cost = margin = ZERO
    for line in lines:
        value += line.value
        cost += line.cost
        margin += line.margin
    return Amounts(money(value), money(cost), money(margin))


def same_money(a: Any, b: Any) -> bool:
    """Whether two amounts are equal to the øre (floats from JSON, Decimals, None as 0)."""
    try:
        return money(dec(a)) == money(dec(b))
    except ValueError:
        return False
