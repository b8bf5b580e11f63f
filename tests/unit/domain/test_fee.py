"""The platform fee: round_half_even(gross * fee_bps / 10000) in minor units (DESIGN 3, Fee)."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escrow_core.domain import commands as c
from escrow_core.domain.money import fee_for
from escrow_core.domain.terms import LineItem, Tranche

from .scenario import (
    ACCEPTED_AT,
    BUYER,
    PAID_AT,
    History,
    day,
    funds_released,
    order_accepted,
    order_placed,
    order_shipped,
    paid,
    when,
)


@pytest.mark.parametrize(
    ("gross", "fee_bps", "fee"),
    [
        # 50 bps of 100 is 0.5 minor units, 2.5 of 500, 1.5 of 300, 3.5 of 700: exact halves
        (100, 50, 0),  # 0.5 -> 0, the even neighbour (half-up would say 1)
        (300, 50, 2),  # 1.5 -> 2
        (500, 50, 2),  # 2.5 -> 2 (half-up would say 3)
        (700, 50, 4),  # 3.5 -> 4
        (1_000_500, 5, 500),  # 500.25 -> 500
        (25, 2_000, 5),  # 5.0 exactly
        (125_000, 250, 3_125),  # 3125.0 exactly
        (101, 50, 1),  # 0.505 -> 1: above the half rounds up
        (99, 50, 0),  # 0.495 -> 0: below the half rounds down
        (1_234, 0, 0),  # no fee
        (1_234, 10_000, 1_234),  # the whole amount
        (0, 250, 0),
    ],
)
def test_fee_for_rounds_half_to_even(gross: int, fee_bps: int, fee: int) -> None:
    assert fee_for(gross, fee_bps) == fee


def test_fee_for_is_exact_beyond_float_precision() -> None:
    gross = 2**53 + 1  # not representable as a float
    assert fee_for(gross, 10_000) == gross
    assert fee_for(gross * 10, 1_000) == gross


@given(gross=st.integers(0, 10**15), fee_bps=st.integers(0, 10_000))
def test_fee_for_matches_exact_rational_half_even_rounding(gross: int, fee_bps: int) -> None:
    # Python rounds a Fraction half to even: an independent oracle for the integer arithmetic.
    expected = round(Fraction(gross * fee_bps, 10_000))
    fee = fee_for(gross, fee_bps)
    assert fee == expected
    assert 0 <= fee <= gross


def _shipped_order_of(total: int, fee_bps: int) -> History:
    """An order of one item worth ``total``, paid in full and shipped."""
    return [
        order_placed(
            items=(LineItem(sku="X", quantity=1, unit_price=total),),
            shipping_fee=0,
            total=total,
            payment_schedule=(Tranche(name="full", amount=total),),
            fee_bps=fee_bps,
        ),
        order_accepted(ACCEPTED_AT),
        *paid(total, held_total=total, at=PAID_AT),
        order_shipped(),
    ]


@pytest.mark.parametrize(
    ("total", "fee", "net"),
    [(300, 2, 298), (500, 2, 498)],  # fees of 1.5 and 2.5 minor units
)
def test_a_release_keeps_the_half_even_fee_from_the_suppliers_share(
    total: int, fee: int, net: int
) -> None:
    given = _shipped_order_of(total, fee_bps=50)

    events = when(given, c.ConfirmReceipt(actor=BUYER), day(10))

    assert events[-1] == funds_released(total, fee, day(10))


def test_the_fee_in_force_when_the_order_was_placed_applies() -> None:
    # The order's own fee_bps (captured in order.placed) decides, whatever the setting is now.
    given = _shipped_order_of(10_000, fee_bps=125)
    released = when(given, c.ConfirmReceipt(actor=BUYER), day(10))[-1]
    assert released == funds_released(10_000, 125, day(10))
