"""The order's main line: placed, accepted, shipped, delivered, confirmed; cancelled; messages."""

from datetime import datetime, timedelta

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain import metadata
from escrow_core.domain.errors import (
    AgencyFeeNotAllowed,
    CancellationNotAllowed,
    FeesTooHigh,
    InvalidDeliveryTime,
    InvalidTerms,
    InvalidValue,
    NotFullyHeld,
    NotPermitted,
    PaymentScheduleMismatch,
    SupplierNotTradeAssurance,
)
from escrow_core.domain.order.payments import refund
from escrow_core.domain.order.retention import check_retention, confirmed
from escrow_core.domain.order.rules import check_role, check_status, guard
from escrow_core.domain.order.schedule import check_due_by
from escrow_core.domain.order.state import OrderState, Shipment, Status
from escrow_core.domain.order.timers import fired
from escrow_core.domain.policy import (
    AGENCY_FEE_BPS_MAX,
    FEE_BPS_MAX,
    INSPECTION_DAYS_MAX,
    INSPECTION_DAYS_MIN,
)
from escrow_core.domain.roles import Role
from escrow_core.domain.terms import RefundReason, Terms, Tranche, end_of_day


def place(cmd: c.PlaceOrder, now: datetime) -> list[e.AnyEvent]:
    if cmd.actor.role is not Role.BUYER or cmd.actor.party_id != cmd.buyer_id:
        raise NotPermitted("only the buyer places its own orders")
    kept = metadata.merged({}, cmd.metadata)
    metadata.check_client_reference(cmd.client_reference)
    if not cmd.supplier_trade_assurance:
        raise SupplierNotTradeAssurance(
            "the supplier is not enabled for Trade Assurance", field="supplier_id"
        )
    if cmd.buyer_id == cmd.supplier_id:
        raise InvalidTerms("buyer and supplier must differ", field="supplier_id")
    if not cmd.items:
        raise InvalidTerms("an order needs at least one item", field="items")
    if cmd.shipping_fee < 0:
        raise InvalidTerms("shipping_fee cannot be negative", field="shipping_fee")
    if end_of_day(cmd.ship_by) <= now:
        raise InvalidTerms("ship_by is in the past", field="ship_by")
    if not INSPECTION_DAYS_MIN <= cmd.inspection_days <= INSPECTION_DAYS_MAX:
        raise InvalidTerms(
            f"inspection_days must be {INSPECTION_DAYS_MIN}-{INSPECTION_DAYS_MAX}",
            field="inspection_days",
        )
    if not 0 <= cmd.fee_bps <= FEE_BPS_MAX:
        raise InvalidTerms("fee_bps must be 0-10000", field="fee_bps")
    _check_agency_fee(cmd)
    check_due_by(cmd, now)
    total = sum(item.quantity * item.unit_price for item in cmd.items) + cmd.shipping_fee
    schedule = cmd.payment_schedule or (Tranche(name="full", amount=total),)
    if sum(tranche.amount for tranche in schedule) != total:
        raise PaymentScheduleMismatch(
            f"payment_schedule must sum to the total {total}", field="payment_schedule"
        )
    check_retention(cmd.retention)
    return [
        e.OrderPlaced(
            at=now,
            buyer_id=cmd.buyer_id,
            supplier_id=cmd.supplier_id,
            currency=cmd.currency,
            currency_exponent=cmd.currency_exponent,
            items=cmd.items,
            shipping_fee=cmd.shipping_fee,
            total=total,
            incoterm=cmd.incoterm,
            quality_terms=cmd.quality_terms,
            ship_by=cmd.ship_by,
            inspection_days=cmd.inspection_days,
            payment_schedule=schedule,
            remarks=cmd.remarks,
            fee_bps=cmd.fee_bps,
            policy=cmd.policy,
            agency_id=cmd.agency_id,
            agency_fee_bps=cmd.agency_fee_bps,
            retention=cmd.retention,
            metadata=kept,
            client_reference=cmd.client_reference,
        )
    ]


def _check_agency_fee(cmd: c.PlaceOrder) -> None:
    """An agent placing an order for a buyer it manages may take a fee (DESIGN 7.2)."""
    if cmd.agency_fee_bps == 0:
        return
    if cmd.agency_id is None:
        raise AgencyFeeNotAllowed(
            "only an agent placing the order for its buyer may set agency_fee_bps",
            field="agency_fee_bps",
        )
    if not 0 <= cmd.agency_fee_bps <= AGENCY_FEE_BPS_MAX:
        raise InvalidTerms(f"agency_fee_bps must be 0-{AGENCY_FEE_BPS_MAX}", field="agency_fee_bps")
    if cmd.fee_bps + cmd.agency_fee_bps > FEE_BPS_MAX:
        raise FeesTooHigh(
            f"fee_bps {cmd.fee_bps} and agency_fee_bps {cmd.agency_fee_bps} exceed "
            f"{FEE_BPS_MAX} together",
            field="agency_fee_bps",
        )


def accept(state: OrderState, cmd: c.AcceptOrder, now: datetime) -> list[e.AnyEvent]:
    guard(state, cmd)
    return [e.OrderAccepted(at=now)]


def ship(state: OrderState, cmd: c.ShipOrder, now: datetime) -> list[e.AnyEvent]:
    check_role(state, cmd)
    if state.status in (Status.ACCEPTED, Status.PARTIALLY_PAID):
        raise NotFullyHeld(f"ship only once the total is held ({state.unpaid} still unpaid)")
    check_status(state, cmd)
    return [e.OrderShipped(at=now, carrier=cmd.carrier, tracking_number=cmd.tracking_number)]


def deliver(state: OrderState, cmd: c.ReportDelivery, now: datetime) -> list[e.AnyEvent]:
    guard(state, cmd)
    shipped_at = state.shipped().shipped_at
    delivered_at = cmd.delivered_at or now
    if delivered_at.tzinfo is None:
        raise InvalidDeliveryTime("delivered_at needs a UTC offset", field="delivered_at")
    if not shipped_at <= delivered_at <= now:
        raise InvalidDeliveryTime(
            "delivered_at must lie between shipment and now", field="delivered_at"
        )
    # The supplier gains by a short window, so its report starts the window no earlier than
    # the report itself; the payment provider and an admin report what the carrier says.
    backdating_allowed = cmd.actor.role in (Role.PAYMENTS, Role.ADMIN)
    starts_at = delivered_at if backdating_allowed else max(delivered_at, now)
    return [e.OrderDelivered(at=now, delivered_at=delivered_at, inspection_starts_at=starts_at)]


def confirm(state: OrderState, cmd: c.ConfirmReceipt, now: datetime) -> list[e.AnyEvent]:
    guard(state, cmd)
    return confirmed(state, now)


def cancel(state: OrderState, cmd: c.CancelOrder, now: datetime) -> list[e.AnyEvent]:
    check_role(state, cmd)
    if state.status not in (Status.PLACED, Status.ACCEPTED, Status.PARTIALLY_PAID, Status.HELD):
        raise CancellationNotAllowed(
            f"an order that is {state.status.value} cannot be cancelled"
            + ("; open a dispute instead" if state.shipment else "")
        )
    role = cmd.actor.role
    overdue = state.payment_overdue  # a tranche unpaid past its due time: either side may end it
    if state.funded > 0 and role is Role.BUYER and not (state.shipment_overdue or overdue):
        raise CancellationNotAllowed(
            "once paid, the buyer may cancel only after the shipment or a payment is overdue"
        )
    if state.amounts.released > 0 and role is Role.SUPPLIER and not overdue:
        raise CancellationNotAllowed(
            "once anything is released the supplier cannot cancel on its own"
        )
    return _cancelled(state, cmd.reason, role, now)


def _cancelled(state: OrderState, reason: str, by: Role, now: datetime) -> list[e.AnyEvent]:
    return [
        e.OrderCancelled(at=now, reason=reason, by=by),
        *refund(state.amounts.held, RefundReason.CANCELLATION, now),
    ]


def post_message(state: OrderState, cmd: c.PostMessage, now: datetime) -> list[e.AnyEvent]:
    guard(state, cmd)
    if not cmd.body.strip():
        raise InvalidValue("a message needs a body", field="body")
    return [e.MessagePosted(at=now, by=cmd.actor.role, party_id=cmd.actor.party_id, body=cmd.body)]


# --- timers ----------------------------------------------------------------------------------
def _confirmed_by_the_timer(state: OrderState, now: datetime) -> list[e.AnyEvent]:
    return confirmed(state, now, auto=True)


auto_cancel_unaccepted = fired(
    lambda state, now: _cancelled(state, "not accepted in time", Role.SYSTEM, now)
)
auto_cancel_unpaid = fired(
    lambda state, now: _cancelled(state, "first payment not received in time", Role.SYSTEM, now)
)
mark_shipment_overdue = fired(
    lambda state, now: [e.ShipmentOverdue(at=now, ship_by_at=state.ship_by_at)]
)
auto_confirm = fired(_confirmed_by_the_timer)  # the inspection window ran out
auto_complete = fired(_confirmed_by_the_timer)  # delivery never reported


# --- evolve ----------------------------------------------------------------------------------
_TERMS_FIELDS = tuple(Terms.model_fields)


def placed(event: e.OrderPlaced) -> OrderState:
    terms = Terms(**{name: getattr(event, name) for name in _TERMS_FIELDS})
    return OrderState(
        version=1,
        status=Status.PLACED,
        terms=terms,
        placed_at=event.at,
        updated_at=event.at,
        ship_by_at=end_of_day(event.ship_by),
        metadata=event.metadata,
        client_reference=event.client_reference,
    )


def accepted(state: OrderState, event: e.OrderAccepted) -> OrderState:
    return state.model_copy(update={"status": Status.ACCEPTED, "accepted_at": event.at})


def shipped(state: OrderState, event: e.OrderShipped) -> OrderState:
    shipment = Shipment(
        carrier=event.carrier, tracking_number=event.tracking_number, shipped_at=event.at
    )
    auto_complete_at = event.at + timedelta(days=state.terms.policy.undelivered_complete_days)
    return state.model_copy(
        update={
            "status": Status.SHIPPED,
            "shipment": shipment,
            "auto_complete_at": auto_complete_at,
        }
    )


def delivered(state: OrderState, event: e.OrderDelivered) -> OrderState:
    shipment = state.shipped().model_copy(update={"delivered_at": event.delivered_at})
    ends = event.inspection_starts_at + timedelta(days=state.terms.inspection_days)
    return state.moved_to(Status.DELIVERED, shipment=shipment, inspection_ends_at=ends)


def receipt_confirmed(state: OrderState, event: e.ReceiptConfirmed) -> OrderState:
    return state.moved_to(Status.COMPLETED)


def cancelled(state: OrderState, event: e.OrderCancelled) -> OrderState:
    return state.model_copy(
        update={"status": Status.CANCELLED, "cancellation_reason": event.reason}
    )


def shipment_overdue(state: OrderState, event: e.ShipmentOverdue) -> OrderState:
    return state.model_copy(update={"shipment_overdue": True})


def message_posted(state: OrderState, event: e.MessagePosted) -> OrderState:
    return state
