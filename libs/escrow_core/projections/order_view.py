"""``order_view``: each order's current state, kept inline with every command.

The row doubles as the aggregate's snapshot: the command service loads it instead of
re-reading the stream. The state is the domain's ``evolve``; the row adds the columns lists
filter on. Pure: the store's adapters write and read the row.
"""

from typing import Any

from escrow_core.domain.legacy_exponents import legacy_cldr_exponent
from escrow_core.domain.order import OrderState, next_timer_at
from escrow_core.store import OrderRow


def to_document(state: OrderState) -> dict[str, Any]:
    return state.model_dump(mode="json")


def from_document(document: dict[str, Any]) -> OrderState:
    return OrderState.model_validate(upcast_document(document))


def upcast_document(document: dict[str, Any]) -> dict[str, Any]:
    """An old snapshot reads as a replay of its stream would."""
    return _bookkeeping_kept(_money_out_tracked(_exponent_recorded(document)))


def _exponent_recorded(document: dict[str, Any]) -> dict[str, Any]:
    """A snapshot written before ``order.placed`` schema 2 lacks the terms' exponent: it gets the
    one its ``order.placed`` is upcast with."""
    terms = document.get("terms")
    if not isinstance(terms, dict) or "currency_exponent" in terms:
        return document
    exponent = legacy_cldr_exponent(terms["currency"])
    return {**document, "terms": {**terms, "currency_exponent": exponent}}


def _bookkeeping_kept(document: dict[str, Any]) -> dict[str, Any]:
    """A snapshot written before ``order.placed`` schema 3 has no metadata and no client
    reference, as the upcast ``order.placed`` has not."""
    if "metadata" in document or "terms" not in document:
        return document
    return {**document, "metadata": {}, "client_reference": None}


def _money_out_tracked(document: dict[str, Any]) -> dict[str, Any]:
    """A snapshot written before payouts and refunds were tracked has only schema 1 releases
    and refunds behind it, which a replay counts as paid out and refunded, untracked."""
    amounts = document.get("amounts")
    if not isinstance(amounts, dict) or "paid_out" in amounts:
        return document
    untracked = {
        "paid_out": amounts.get("released", 0) - amounts.get("fees", 0),
        "refunds_completed": amounts.get("refunded", 0),
    }
    return {**document, "amounts": {**amounts, **untracked}}


def row_for(order_id: str, state: OrderState) -> OrderRow:
    dispute = state.dispute if state.dispute is not None and state.dispute.active else None
    return OrderRow(
        order_id=order_id,
        version=state.version,
        status=state.status.value,
        buyer_id=state.terms.buyer_id,
        supplier_id=state.terms.supplier_id,
        currency=state.terms.currency,
        total=state.terms.total,
        next_timer_at=next_timer_at(state),
        dispute_status=dispute.status.value if dispute else None,
        dispute_opened_at=dispute.opened_at if dispute else None,
        created_at=state.placed_at,
        updated_at=state.updated_at,
        state=to_document(state),
        client_reference=state.client_reference,
        metadata=dict(state.metadata),
    )
