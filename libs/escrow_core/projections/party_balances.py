"""``party_balances``: held / released / refunded per party and currency.

An append-only ledger of signed changes, summed on read: a busy buyer with many orders in
flight never serialises its commands on one hot balance row. Pure: the adapters write and sum.

A balance sums many orders, so it is kept in ISO 4217's minor units: an order priced under a
coarser exponent (IQD at 0, before ``order.placed`` schema 2) is scaled up, which is exact.
"""

from collections.abc import Iterable

from escrow_core import currency
from escrow_core.domain import events as e
from escrow_core.domain.order import OrderState
from escrow_core.store import BalanceChange, BalanceTotals

# The events ``changes`` matches below (event classes are not subclassed).
_MOVING_BALANCES = frozenset({e.FundsHeld, e.FundsReleased, e.RefundIssued})


def changes(
    order_id: str,
    order: OrderState,
    event: e.Event,
    event_version: int,
    position: int | None = None,
) -> list[BalanceChange]:
    """The change ``event`` makes to each party of ``order`` (none if it moves no money)."""
    if type(event) not in _MOVING_BALANCES:
        return []  # most events: one set lookup, not three class patterns (a rebuild's 6 %)
    match event:
        case e.FundsHeld(amount=amount):
            moved = {"held": amount}
        case e.FundsReleased(gross=gross, fee=fee):
            moved = {"held": -gross, "released": gross, "fees": fee}
        case e.RefundIssued(amount=amount):
            moved = {"held": -amount, "refunded": amount}
        case _:
            return []
    scale = to_iso_minor_units(order)
    return [
        BalanceChange(
            party_id=party_id,
            currency=order.terms.currency,
            order_id=order_id,
            event_version=event_version,
            position=position,
            **{column: amount * scale for column, amount in moved.items()},
        )
        for party_id in order.party_ids
    ]


def to_iso_minor_units(order: OrderState) -> int:
    """What one of the order's minor units is in ISO 4217's (1 but for an order priced under a
    coarser exponent; a currency ISO no longer lists keeps the order's own)."""
    code, priced_under = order.terms.currency, order.terms.currency_exponent
    finer_by = currency.exponent(code) - priced_under if currency.is_currency(code) else 0
    return int(10 ** max(finer_by, 0))


def totals(entries: Iterable[BalanceChange]) -> dict[tuple[str, str], BalanceTotals]:
    """Sum changes per (party, currency), as reading the table would."""
    summed: dict[tuple[str, str], BalanceTotals] = {}
    for change in entries:
        key = (change.party_id, change.currency)
        before = summed.get(key) or BalanceTotals(change.party_id, change.currency, 0, 0, 0, 0)
        summed[key] = BalanceTotals(
            change.party_id,
            change.currency,
            before.held + change.held,
            before.released + change.released,
            before.refunded + change.refunded,
            before.fees + change.fees,
        )
    return summed
