"""Money in and out: payments into escrow, releases to the supplier, refunds to the buyer."""

from datetime import datetime, timedelta

from escrow_core.domain import events as e
from escrow_core.domain.commands import RecordPayment
from escrow_core.domain.errors import InvalidValue, Overpayment, ProviderRefConflict
from escrow_core.domain.money import fee_for
from escrow_core.domain.order.rules import check_role, check_status
from escrow_core.domain.order.state import Amounts, OrderState, Status
from escrow_core.domain.roles import Role
from escrow_core.domain.terms import ExtendableDeadline, end_of_day


def record_payment(state: OrderState, cmd: RecordPayment, now: datetime) -> list[e.AnyEvent]:
    check_role(state, cmd)
    if cmd.amount <= 0:
        raise InvalidValue("a payment must be positive", field="amount")
    seen = state.payment_amount(cmd.provider_ref)
    if seen == cmd.amount:
        return []  # the provider retried: already recorded
    if seen is not None:
        raise ProviderRefConflict(
            f"provider_ref {cmd.provider_ref!r} was already recorded with amount {seen}"
        )
    check_status(state, cmd)
    if cmd.amount > state.unpaid:
        raise Overpayment(
            f"payment of {cmd.amount} exceeds the unpaid {state.unpaid}", field="amount"
        )
    held_total = state.amounts.held + cmd.amount
    events: list[e.AnyEvent] = [
        e.PaymentReceived(
            at=now, amount=cmd.amount, method=cmd.method, provider_ref=cmd.provider_ref
        ),
        e.FundsHeld(at=now, amount=cmd.amount, held_total=held_total),
    ]
    fully_held = cmd.amount == state.unpaid
    if fully_held and now >= state.ship_by_at and state.accepted_at is not None:
        # Lateness is the supplier's only if the money came in time: from the moment it did,
        # the supplier gets the lead time the contract gave it (the terms' ship-by minus
        # acceptance; a buyer's extension is not lead time), never less than none.
        lead_time = max(end_of_day(state.terms.ship_by) - state.accepted_at, timedelta(0))
        events.append(
            e.DeadlineExtended(
                at=now, deadline=ExtendableDeadline.SHIP_BY, by=Role.SYSTEM, new_at=now + lead_time
            )
        )
    return events


def release(state: OrderState, gross: int, now: datetime) -> list[e.AnyEvent]:
    """Pay ``gross`` out to the supplier, keeping the platform fee; nothing if zero."""
    if gross == 0:
        return []
    fee = fee_for(gross, state.terms.fee_bps)
    return [e.FundsReleased(at=now, gross=gross, fee=fee, net=gross - fee)]


def refund(amount: int, now: datetime) -> list[e.AnyEvent]:
    """Return ``amount`` to the buyer; nothing if zero."""
    return [e.RefundIssued(at=now, amount=amount)] if amount else []


# --- evolve ----------------------------------------------------------------------------------
def payment_received(state: OrderState, event: e.PaymentReceived) -> OrderState:
    amounts = state.amounts.model_copy(update={"paid": state.amounts.paid + event.amount})
    payments = (*state.payments, (event.provider_ref, event.amount))
    return state.model_copy(update={"amounts": amounts, "payments": payments})


def funds_held(state: OrderState, event: e.FundsHeld) -> OrderState:
    amounts = state.amounts.model_copy(update={"held": event.held_total})
    status = Status.HELD if amounts.paid == state.terms.total else Status.PARTIALLY_PAID
    return state.model_copy(update={"amounts": amounts, "status": status})


def funds_released(state: OrderState, event: e.FundsReleased) -> OrderState:
    a = state.amounts
    amounts = Amounts(
        paid=a.paid,
        held=a.held - event.gross,
        released=a.released + event.gross,
        refunded=a.refunded,
        fees=a.fees + event.fee,
    )
    return state.model_copy(update={"amounts": amounts})


def refund_issued(state: OrderState, event: e.RefundIssued) -> OrderState:
    a = state.amounts
    amounts = a.model_copy(
        update={"held": a.held - event.amount, "refunded": a.refunded + event.amount}
    )
    return state.model_copy(update={"amounts": amounts})
