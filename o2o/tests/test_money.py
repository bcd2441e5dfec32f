"""The one rule for amounts from outside (``money_parse``) and the allocation to the fen."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2o.money import MAX_AMOUNT, allocate, money_parse


@pytest.mark.parametrize("value, expected", [
    ("12.30", Decimal("12.30")), (" 7 ", Decimal("7.00")), (5, Decimal("5.00")), (Decimal("0.01"), Decimal("0.01")),
    ("0", Decimal("0.00")), ("9999999999.99", MAX_AMOUNT),
])
def test_amounts_in_whole_fen_are_read(value, expected):
    assert money_parse(value) == expected


@pytest.mark.parametrize("value", [
    "12.345", "1e2.5", "abc", "", "NaN", "Infinity", "-1", "10000000000.00", 1.5, True, None, [], "1,280.00",
])
def test_everything_else_is_refused_never_rounded(value):
    with pytest.raises(ValueError):
        money_parse(value)


def test_options_say_what_an_amount_may_be():
    assert money_parse("¥1,280.00", symbols=True) == Decimal("1280.00")
    assert money_parse("-3.10", signed=True) == Decimal("-3.10")
    with pytest.raises(ValueError):
        money_parse("0.00", positive=True)
    with pytest.raises(ValueError):
        money_parse("12.50", maximum=Decimal("10.00"))


@given(st.decimals(min_value=Decimal("0.00"), max_value=Decimal("99999.99"), places=2),
       st.lists(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2), min_size=1,
                max_size=12))
def test_allocation_adds_up_to_the_fen(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total and all(p >= 0 for p in parts)
