"""sync/totals.py: the one place where order value, cost and contribution margin are computed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.uniconta import orders as uniconta_arithmetic
from sandbox.webcrm import totals as webcrm_arithmetic
from sync import totals
from sync.totals import Amounts, dec, line_amounts, margin_percent, money, order_totals, same_money

D = Decimal


def test_line_value_cost_and_margin() -> None:
    line = line_amounts(3, 19.95, 10, 7.5)
    assert line == Amounts(D("53.87"), D("22.50"), D("31.37"))  # 3 × 19.95 × 0.9 = 53.865 → 53.87
    assert line.margin_percent == D("58.23")


def test_rounding_is_half_up_to_ore_away_from_zero() -> None:
    assert money(D("2.345")) == D("2.35")
    assert money(D("-2.345")) == D("-2.35")
    assert money(D("2.344999")) == D("2.34")
    assert line_amounts(1, 0.125).value == D("0.13")
    assert line_amounts(-1, 0.125).value == D("-0.13")


def test_floats_enter_through_their_shortest_repr() -> None:
    # 1.005 is 1.00499999999999989... in binary; webCRM and Uniconta both see "1.005".
    assert line_amounts(1, 1.005).value == D("1.01")
    assert line_amounts(3, 0.1).value == D("0.30")
    assert dec(0.1) == D("0.1")


def test_discounts_zero_prices_and_full_discount() -> None:
    assert line_amounts(2, 100, 25, 30) == Amounts(D("150.00"), D("60.00"), D("90.00"))
    assert line_amounts(5, 0, 0, 12) == Amounts(D("0.00"), D("60.00"), D("-60.00"))
    assert line_amounts(4, 99.99, 100, 50).value == D("0.00")
    assert line_amounts(1, 10, 0.5).value == D("9.95")


def test_credit_lines_with_negative_quantity() -> None:
    credit = line_amounts(-2, 50, 10, 20)
    assert credit == Amounts(D("-90.00"), D("-40.00"), D("-50.00"))
    order = order_totals([line_amounts(2, 50, 10, 20), credit])
    assert order == Amounts(D("0.00"), D("0.00"), D("0.00"))
    assert order.margin_percent == D("0.00")


def test_order_totals_sum_rounded_lines_and_margin_percent() -> None:
    lines = [line_amounts(1, 0.335), line_amounts(1, 0.335), line_amounts(1, 0.335)]
    order = order_totals(lines)
    assert order.value == D("1.02")  # each line rounds to 0.34 first (not round(1.005) = 1.01)
    assert order.margin_percent == D("100.00")
    assert order_totals([]) == Amounts(D("0.00"), D("0.00"), D("0.00"))


def test_margin_percent_is_zero_without_value_and_may_be_negative() -> None:
    assert margin_percent(D("-10"), D("0")) == D("0.00")
    assert margin_percent(D("-10"), D("40")) == D("-25.00")
    assert margin_percent(D("1"), D("3")) == D("33.33")
    assert margin_percent(D("2"), D("3")) == D("66.67")


def test_none_and_empty_are_zero_and_garbage_is_refused() -> None:
    assert line_amounts(None, "", None, None).value == D("0.00")
    assert dec("12.50") == D("12.50")
    for bad in ("abc", True, float("nan"), float("inf"), "Infinity"):
        with pytest.raises(ValueError):
            dec(bad)


def test_large_amounts_keep_every_digit_before_rounding() -> None:
    # 28 significant digits (Decimal's default) would already round inside the product.
    line = line_amounts(999_999_999.999, 123_456_789.123, 0.001)
    exact = D("999999999.999") * D("123456789.123") * (1 - D("0.001") / 100)
    assert line.value == exact.quantize(D("0.01"), rounding="ROUND_HALF_UP")


def test_same_money_and_json_form() -> None:
    assert same_money(10.005, "10.01") and same_money(None, 0) and not same_money(1, 1.02)
    assert not same_money("x", 1)
    assert line_amounts(1, 10, 0, 4).as_floats() == {"value": 10.0, "cost": 4.0, "margin": 6.0,
                                                      "margin_percent": 60.0}


# --- both sandboxes compute the same numbers as we do ------------------------------------------

amounts = st.decimals(min_value=-100_000, max_value=100_000, places=3, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
discounts = st.one_of(st.just(D(0)), st.just(D(100)), st.decimals(min_value=0, max_value=100, places=2))
lines_strategy = st.lists(st.tuples(quantities, amounts, discounts, amounts), max_size=60)


@settings(max_examples=300, deadline=None)
@given(lines_strategy)
def test_equal_to_the_ore_with_webcrm_and_uniconta_arithmetic(lines: list[tuple[D, D, D, D]]) -> None:
    as_json = [tuple(float(x) for x in line) for line in lines]  # what travels: JSON doubles
    ours = order_totals(line_amounts(*line) for line in as_json)

    webcrm_value, webcrm_margin = webcrm_arithmetic.order_totals(
        {"QuotationLineQuantity": q, "QuotationLinePrice": p, "QuotationLineDiscount": d, "QuotationLineCostPrice": c}
        for q, p, d, c in as_json)
    assert (D(repr(webcrm_value)), D(repr(webcrm_margin))) == (ours.value, ours.margin)

    total, margin, ratio = uniconta_arithmetic.order_amounts(
        {"Qty": q, "Price": p, "DiscountPct": d, "CostPrice": c} for q, p, d, c in as_json)
    assert (total, margin, ratio) == (ours.value, ours.margin, ours.margin_percent)
    assert ours.value - ours.cost == ours.margin


@given(st.lists(st.tuples(quantities, amounts, discounts, amounts), min_size=1, max_size=20))
def test_order_is_the_sum_of_its_lines(lines: list[tuple[D, D, D, D]]) -> None:
    parts = [line_amounts(*line) for line in lines]
    order = order_totals(parts)
    assert order.value == sum((p.value for p in parts), D(0))
    assert order.margin == sum((p.margin for p in parts), D(0))
    assert order.value.as_tuple().exponent == -2


def test_module_is_pure() -> None:
    source = Path(totals.__file__).read_text(encoding="utf-8")
    assert "import requests" not in source and "redis" not in source
