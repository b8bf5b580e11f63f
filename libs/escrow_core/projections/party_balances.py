"""``party_balances``: held / released / refunded per party and currency.

An append-only ledger of signed changes, summed on read: a busy buyer with many orders in
flight never serialises its commands on one hot balance row. Pure: the adapters write and sum.
"""

from collections.abc import Iterable

from escrow_core.domain import events as e
from escrow_core.domain.order import OrderState
from escrow_core.store import BalanceChange, BalanceTotals


def changes(
    order_id: str,
    order: OrderState,
    event: e.Event,
    event_version: int,
    position: int | None = None,
) -> list[BalanceChange]:
    """The change ``event`` makes to each party of ``order`` (none if it moves no money)."""
    match event:
        case e.FundsHeld(amount=amount):
            moved = {"held": amount}
        case e.FundsReleased(gross=gross, fee=fee):
            moved = {"held": -gross, "released": gross, "fees": fee}
        case e.RefundIssued(amount=amount):
            moved = {"held": -amount, "refunded": amount}
        case _:
            return []
    return [
        BalanceChange(
            party_id=party_id,
            currency=order.terms.currency,
            order_id=order_id,
            event_version=event_version,
            position=position,
            **moved,
        )
        for party_id in order.party_ids
    ]


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
