"""``money_out``: each payout and refund as it stands, for finding one by id and listing them
across orders. Pure: the adapters write the rows."""

from collections.abc import Iterable

from escrow_core.domain import events as e
from escrow_core.domain.order import OrderState, Payout, Refund
from escrow_core.store import MoneyOutRow

PAYOUT, REFUND = "payout", "refund"


def touched(events: Iterable[e.Event]) -> set[str]:
    """The ids of the payouts and refunds ``events`` create or change."""
    ids: set[str] = set()
    for event in events:
        match event:
            case e.FundsReleased(payouts=payouts):
                ids.update(p.id for p in payouts or ())
            case e.RefundIssued(refunds=refunds):
                ids.update(r.id for r in refunds or ())
            case e.PayoutPaid() | e.PayoutFailed() | e.PayoutReturned() | e.PayoutRetried():
                ids.add(event.payout_id)
            case e.RefundSucceeded() | e.RefundFailed() | e.RefundRetried():
                ids.add(event.refund_id)
    return ids


def rows_for(order_id: str, order: OrderState, ids: set[str]) -> list[MoneyOutRow]:
    """The rows of the payouts and refunds ``ids`` as they stand in ``order``."""
    if not ids:
        return []
    return [
        *(_payout_row(order_id, order, p) for p in order.payouts if p.id in ids),
        *(_refund_row(order_id, order, r) for r in order.refunds if r.id in ids),
    ]


def _payout_row(order_id: str, order: OrderState, payout: Payout) -> MoneyOutRow:
    return MoneyOutRow(
        id=payout.id,
        kind=PAYOUT,
        order_id=order_id,
        party_id=payout.party_id,
        currency=order.terms.currency,
        amount=payout.amount,
        status=payout.status.value,
        provider_ref=payout.provider_ref,
        failure_reason=payout.failure_reason,
        payment_provider_ref=None,
        created_at=payout.created_at,
        updated_at=payout.updated_at,
    )


def _refund_row(order_id: str, order: OrderState, refund: Refund) -> MoneyOutRow:
    return MoneyOutRow(
        id=refund.id,
        kind=REFUND,
        order_id=order_id,
        party_id=order.terms.buyer_id,
        currency=order.terms.currency,
        amount=refund.amount,
        status=refund.status.value,
        provider_ref=refund.provider_ref,
        failure_reason=refund.failure_reason,
        payment_provider_ref=refund.payment_provider_ref,
        created_at=refund.created_at,
        updated_at=refund.updated_at,
    )
