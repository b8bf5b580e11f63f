"""Placing an order with an agency fee and tranches due by a date (DESIGN 7.2, 7.7)."""

from datetime import date

import pytest

from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    AgencyFeeNotAllowed,
    DomainError,
    FeesTooHigh,
    InvalidDueBy,
    InvalidTerms,
)
from escrow_core.domain.terms import Tranche

from .scenario import SHIP_BY, T0, place_order, when

AGENT_ID = "pty_agent"


def deposit_and(*later: Tranche) -> tuple[Tranche, ...]:
    rest = 125_000 - 25_000 - sum(t.amount for t in later[:-1])
    last = later[-1].model_copy(update={"amount": rest})
    return (Tranche(name="deposit", amount=25_000), *later[:-1], last)


def test_an_agent_placing_for_its_buyer_records_its_fee_in_the_terms() -> None:
    (placed,) = when([], place_order(agency_id=AGENT_ID, agency_fee_bps=150), T0)

    assert isinstance(placed, e.OrderPlaced)
    assert (placed.agency_id, placed.agency_fee_bps) == (AGENT_ID, 150)


def test_a_buyer_placing_its_own_order_cannot_set_an_agency_fee() -> None:
    with pytest.raises(AgencyFeeNotAllowed) as raised:
        when([], place_order(agency_fee_bps=150), T0)
    assert (raised.value.code, raised.value.field) == ("agency_fee_not_allowed", "agency_fee_bps")
    # an agency fee of 0 is no fee: allowed to anyone
    assert when([], place_order(agency_fee_bps=0), T0)


@pytest.mark.parametrize("bps", [-1, 2_001, 10_000])
def test_an_agency_fee_is_0_to_2000_bps(bps: int) -> None:
    with pytest.raises(InvalidTerms) as raised:
        when([], place_order(agency_id=AGENT_ID, agency_fee_bps=bps, fee_bps=0), T0)
    assert raised.value.field == "agency_fee_bps"


def test_both_fees_together_may_not_exceed_the_whole() -> None:
    assert when([], place_order(agency_id=AGENT_ID, agency_fee_bps=2_000, fee_bps=8_000), T0)
    with pytest.raises(FeesTooHigh) as raised:
        when([], place_order(agency_id=AGENT_ID, agency_fee_bps=2_000, fee_bps=8_001), T0)
    assert raised.value.code == "fees_too_high"


def test_a_later_tranche_records_its_due_by() -> None:
    schedule = deposit_and(Tranche(name="balance", amount=1, due_by=date(2025, 3, 20)))
    (placed,) = when([], place_order(payment_schedule=schedule), T0)

    assert isinstance(placed, e.OrderPlaced)
    assert placed.payment_schedule[1].due_by == date(2025, 3, 20)


@pytest.mark.parametrize(
    "schedule",
    [
        (  # the first tranche is due within the pay days, never by a date
            Tranche(name="deposit", amount=25_000, due_by=date(2025, 3, 20)),
            Tranche(name="balance", amount=100_000),
        ),
        deposit_and(Tranche(name="balance", amount=1, due_by=date(2025, 3, 3))),  # placement day
        deposit_and(Tranche(name="balance", amount=1, due_by=date(2025, 3, 1))),  # the past
        deposit_and(Tranche(name="balance", amount=1, due_by=date(2025, 4, 3))),  # after ship_by
    ],
    ids=["first_tranche", "placement_day", "past", "after_ship_by"],
)
def test_due_by_is_after_the_placement_date_and_at_most_ship_by(
    schedule: tuple[Tranche, ...],
) -> None:
    with pytest.raises(DomainError) as raised:
        when([], place_order(payment_schedule=schedule), T0)
    assert type(raised.value) is InvalidDueBy
    assert (raised.value.code, raised.value.field) == ("invalid_due_by", "payment_schedule")


def test_due_by_may_be_ship_by_itself() -> None:
    schedule = deposit_and(Tranche(name="balance", amount=1, due_by=SHIP_BY))
    assert when([], place_order(payment_schedule=schedule), T0)
