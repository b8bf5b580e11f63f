"""Money in and out: payments into escrow, releases to the supplier, refunds to the buyer.

Unexpected money is never refused: what the order still owes is held, the rest goes straight
back to the buyer in the same command.
"""

from datetime import datetime, timedelta

from escrow_core.domain import events as e
from escrow_core.domain.commands import RecordPayment
from escrow_core.domain.errors import InvalidValue, ProviderRefConflict
from escrow_core.domain.money import fee_for
from escrow_core.domain.order.rules import check_role
from escrow_core.domain.order.state import TERMINAL, OrderState, Status
from escrow_core.domain.roles import Role
from escrow_core.domain.terms import ExtendableDeadline, RefundReason, end_of_day

# Where a payment is owed; in any other status all of it is unexpected.
PAYABLE = frozenset({Status.ACCEPTED, Status.PARTIALLY_PAID})
# Refunds of money the order never took: they leave ``held`` alone.
UNEXPECTED = frozenset({RefundReason.OVERPAYMENT, RefundReason.ORDER_NOT_PAYABLE})


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
    payable = state.status in PAYABLE
    owed = min(cmd.amount, state.unpaid) if payable else 0
    excess = cmd.amount - owed
    events: list[e.AnyEvent] = [
        e.PaymentReceived(
            at=now, amount=cmd.amount, method=cmd.method, provider_ref=cmd.provider_ref
        ),
        *refund(excess, _unexpected_reason(state), now),
    ]
    if not owed:
        return events
    events.append(e.FundsHeld(at=now, amount=owed, held_total=state.amounts.held + owed))
    fully_held = owed == state.unpaid
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


def _unexpected_reason(state: OrderState) -> RefundReason:
    """An order that cannot take money (not yet accepted, or ended) sends it all back; one
    that is paid up sends back the excess."""
    if state.status is Status.PLACED or state.status in TERMINAL:
        return RefundReason.ORDER_NOT_PAYABLE
    return RefundReason.OVERPAYMENT


def release(state: OrderState, gross: int, now: datetime) -> list[e.AnyEvent]:
    """Pay ``gross`` out to the supplier, keeping the platform fee and the agency fee; nothing
    if zero. The payouts are named when the decision is complete (``decide``).

    Fees are cumulative per order: each release keeps the fee on everything released so far
    less the fees already kept, so the total never depends on how the money was split.
    """
    if gross == 0:
        return []
    terms, a = state.terms, state.amounts
    released = a.released + gross
    fee = fee_for(released, terms.fee_bps) - a.fees
    agency_fee = fee_for(released, terms.agency_fee_bps) - a.agency_fees
    # Two half-even roundings can together take one unit more than this release holds: the
    # agency's part waits for the next release (cumulative, so it catches up).
    agency_fee = max(min(agency_fee, gross - fee), 0)
    net = gross - fee - agency_fee
    return [e.FundsReleased(at=now, gross=gross, fee=fee, agency_fee=agency_fee, net=net)]


def refund(amount: int, reason: RefundReason, now: datetime) -> list[e.AnyEvent]:
    """Return ``amount`` to the buyer; nothing if zero. Its allocation over the payments is
    made when the decision is complete (``decide``)."""
    return [e.RefundIssued(at=now, amount=amount, reason=reason)] if amount else []


# --- evolve ----------------------------------------------------------------------------------
def payment_received(state: OrderState, event: e.PaymentReceived) -> OrderState:
    amounts = state.amounts.model_copy(update={"paid": state.amounts.paid + event.amount})
    payments = (*state.payments, (event.provider_ref, event.amount))
    return state.model_copy(update={"amounts": amounts, "payments": payments})


def funds_held(state: OrderState, event: e.FundsHeld) -> OrderState:
    amounts = state.amounts.model_copy(update={"held": event.held_total})
    after = state.model_copy(update={"amounts": amounts})
    status = Status.HELD if after.unpaid == 0 else Status.PARTIALLY_PAID
    return after.model_copy(update={"status": status})


def funds_released(state: OrderState, event: e.FundsReleased) -> OrderState:
    a = state.amounts
    untracked = event.net if event.payouts is None else 0  # paid out before payouts existed
    amounts = a.model_copy(
        update={
            "held": a.held - event.gross,
            "released": a.released + event.gross,
            "fees": a.fees + event.fee,
            "agency_fees": a.agency_fees + event.agency_fee,
            "paid_out": a.paid_out + untracked,
        }
    )
    return state.model_copy(update={"amounts": amounts})


def refund_issued(state: OrderState, event: e.RefundIssued) -> OrderState:
    a = state.amounts
    unexpected = event.reason in UNEXPECTED
    untracked = event.amount if event.refunds is None else 0  # refunded before refunds existed
    amounts = a.model_copy(
        update={
            "held": a.held if unexpected else a.held - event.amount,
            "refunded": a.refunded + event.amount,
            "refunds_completed": a.refunds_completed + untracked,
        }
    )
    return state.model_copy(
        update={
            "amounts": amounts,
            "unexpected": state.unexpected + (event.amount if unexpected else 0),
        }
    )
