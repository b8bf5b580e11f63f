"""Given / When / Then for the order domain, with one reference order and its timeline.

    given = HELD                                     # past events
    events = when(given, ShipOrder(...), at=day(6))  # a command at `now`
    assert events == [OrderShipped(...)]             # then: these events
    error = refused(given, cmd, at, NotFullyHeld)    # or: then this named error
    assert error.code == "not_fully_held"

The reference order (amounts in US cents): 10 valves at USD 100.00 plus USD 250.00 shipping, so
the total is 125_000. It is placed at T0, ships by 2025-04-02 (on time until that day ends,
UTC), has a 10-day inspection window and a 2.5% fee (250 bps). The timeline below walks it
through accepted, paid, shipped, delivered and disputed at fixed times.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import DomainError
from escrow_core.domain.order import NewIds, OrderState, decide, fold
from escrow_core.domain.policy import TimerPolicy
from escrow_core.domain.roles import SYSTEM, Actor, Role
from escrow_core.domain.terms import (
    DisputeReason,
    ExtendableDeadline,
    LineItem,
    PaymentMethod,
    RefundReason,
    Tranche,
)

History = Sequence[e.AnyEvent]
# Predictable ids for what a decision creates: po_t1, rf_t1 ...
IDS = NewIds("t")
E = TypeVar("E", bound=DomainError)

# --- who ------------------------------------------------------------------------------------
BUYER_ID = "pty_buyer"
SUPPLIER_ID = "pty_supplier"
BUYER = Actor(role=Role.BUYER, party_id=BUYER_ID)
SUPPLIER = Actor(role=Role.SUPPLIER, party_id=SUPPLIER_ID)
OTHER_BUYER = Actor(role=Role.BUYER, party_id="pty_other_buyer")
OTHER_SUPPLIER = Actor(role=Role.SUPPLIER, party_id="pty_other_supplier")
PAYMENTS = Actor(role=Role.PAYMENTS)
MEDIATOR = Actor(role=Role.MEDIATOR)
ADMIN = Actor(role=Role.ADMIN)
ALL_ACTORS = (BUYER, SUPPLIER, PAYMENTS, MEDIATOR, ADMIN, SYSTEM, OTHER_BUYER, OTHER_SUPPLIER)

# --- the reference terms ----------------------------------------------------------------------
ITEMS = (LineItem(sku="VALVE-20", description="brass valve DN20", quantity=10, unit_price=10_000),)
SHIPPING_FEE = 25_000
TOTAL = 125_000  # 10 * 10_000 + 25_000
FEE_BPS = 250
FEE_ON_TOTAL = 3_125  # 125_000 * 250 / 10_000, exact
INSPECTION_DAYS = 10
SHIP_BY = date(2025, 4, 2)
SHIP_BY_AT = datetime(2025, 4, 3, tzinfo=UTC)  # the end of 2 April, UTC
POLICY = TimerPolicy()  # accept 30, pay 60, negotiation 3, auto-escalate 7, undelivered 60 days

# --- the reference timeline -------------------------------------------------------------------
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def day(days: float, hours: float = 0) -> datetime:
    """A moment ``days`` (+ ``hours``) after the order was placed."""
    return T0 + timedelta(days=days, hours=hours)


ACCEPTED_AT = day(1)
PAID_AT = day(2)
SHIPPED_AT = day(5)
DELIVERED_AT = day(9)
INSPECTION_ENDS_AT = day(19)  # delivered + 10 days
DISPUTE_OPENED_AT = day(12)  # 7 days of inspection left
ESCALATION_ALLOWED_AT = day(15)  # opened + 3
AUTO_ESCALATE_AT = day(19)  # opened + 7


# --- commands ---------------------------------------------------------------------------------
def place_order(**changes: Any) -> c.PlaceOrder:
    fields: dict[str, Any] = {
        "actor": BUYER,
        "buyer_id": BUYER_ID,
        "supplier_id": SUPPLIER_ID,
        "supplier_trade_assurance": True,
        "currency": "USD",
        "currency_exponent": 2,
        "items": ITEMS,
        "shipping_fee": SHIPPING_FEE,
        "incoterm": "FOB",
        "quality_terms": "brass CW617N, pressure-tested to 16 bar",
        "ship_by": SHIP_BY,
        "inspection_days": INSPECTION_DAYS,
        "fee_bps": FEE_BPS,
    }
    return c.PlaceOrder(**{**fields, **changes})


def pay(amount: int, ref: str = "pay_1", actor: Actor = PAYMENTS) -> c.RecordPayment:
    return c.RecordPayment(
        actor=actor, amount=amount, method=PaymentMethod.BANK_TRANSFER, provider_ref=ref
    )


def extend(deadline: ExtendableDeadline, days: int, actor: Actor = BUYER) -> c.ExtendDeadline:
    return c.ExtendDeadline(actor=actor, deadline=deadline, days=days)


def open_dispute(refund: int = 50_000, actor: Actor = BUYER) -> c.OpenDispute:
    return c.OpenDispute(
        actor=actor,
        reason=DisputeReason.QUALITY,
        description="valves leak at 10 bar",
        requested_refund=refund,
    )


# --- events (the Given) -----------------------------------------------------------------------
def order_placed(at: datetime = T0, **changes: Any) -> e.OrderPlaced:
    """The reference ``order.placed``; pass ``items``/``total``/... to vary the terms."""
    fields: dict[str, Any] = {
        "buyer_id": BUYER_ID,
        "supplier_id": SUPPLIER_ID,
        "currency": "USD",
        "currency_exponent": 2,
        "items": ITEMS,
        "shipping_fee": SHIPPING_FEE,
        "total": TOTAL,
        "incoterm": "FOB",
        "quality_terms": "brass CW617N, pressure-tested to 16 bar",
        "ship_by": SHIP_BY,
        "inspection_days": INSPECTION_DAYS,
        "payment_schedule": (Tranche(name="full", amount=changes.get("total", TOTAL)),),
        "remarks": "",
        "fee_bps": FEE_BPS,
        "policy": POLICY,
    }
    return e.OrderPlaced(at=at, **{**fields, **changes})


def order_accepted(at: datetime = ACCEPTED_AT) -> e.OrderAccepted:
    return e.OrderAccepted(at=at)


def paid(amount: int, held_total: int, ref: str = "pay_1", at: datetime = PAID_AT) -> History:
    """A payment as recorded: ``payment.received`` then ``funds.held`` with the new held total."""
    return [
        e.PaymentReceived(
            at=at, amount=amount, method=PaymentMethod.BANK_TRANSFER, provider_ref=ref
        ),
        e.FundsHeld(at=at, amount=amount, held_total=held_total),
    ]


def refund_issued(
    amount: int, reason: RefundReason, at: datetime, split: Sequence[tuple[str, int]] = ()
) -> e.RefundIssued:
    """``refund.issued`` as decided: ``split`` over the payments (default: all through pay_1),
    with the predictable ids of ``IDS``, numbered after ``first``."""
    split = split or [("pay_1", amount)]
    refunds = tuple(
        e.NewRefund(id=IDS.nth("rf", n), payment_provider_ref=ref, amount=part)
        for n, (ref, part) in enumerate(split, start=1)
    )
    return e.RefundIssued(at=at, amount=amount, reason=reason, refunds=refunds)


def funds_released(gross: int, fee: int, at: datetime, first: int = 1) -> e.FundsReleased:
    """``funds.released`` as decided: the net paid out to the supplier by payout ``first``."""
    net = gross - fee
    payouts = (e.NewPayout(id=IDS.nth("po", first), party_id=SUPPLIER_ID, amount=net),)
    return e.FundsReleased(at=at, gross=gross, fee=fee, net=net, payouts=payouts if net else ())


def order_shipped(at: datetime = SHIPPED_AT) -> e.OrderShipped:
    return e.OrderShipped(at=at, carrier="Maersk", tracking_number="MAEU1234567")


def order_delivered(
    at: datetime = DELIVERED_AT, delivered_at: datetime | None = None
) -> e.AnyEvent:
    delivered_at = delivered_at or at
    return e.OrderDelivered(at=at, delivered_at=delivered_at, inspection_starts_at=delivered_at)


def dispute_opened(at: datetime = DISPUTE_OPENED_AT, refund: int = 50_000) -> e.DisputeOpened:
    return e.DisputeOpened(
        at=at,
        reason=DisputeReason.QUALITY,
        description="valves leak at 10 bar",
        requested_refund=refund,
    )


def escalated(at: datetime = ESCALATION_ALLOWED_AT, by: Role = Role.BUYER) -> e.DisputeEscalated:
    return e.DisputeEscalated(at=at, by=by)


PLACED: History = [order_placed()]
ACCEPTED: History = [*PLACED, order_accepted()]
PARTIALLY_PAID: History = [*ACCEPTED, *paid(50_000, held_total=50_000)]
HELD: History = [*ACCEPTED, *paid(TOTAL, held_total=TOTAL)]
OVERDUE: History = [*HELD, e.ShipmentOverdue(at=SHIP_BY_AT, ship_by_at=SHIP_BY_AT)]
SHIPPED: History = [*HELD, order_shipped()]
DELIVERED: History = [*SHIPPED, order_delivered()]
DISPUTED: History = [*DELIVERED, dispute_opened()]
ESCALATED: History = [*DISPUTED, escalated()]
COMPLETED: History = [
    *DELIVERED,
    e.ReceiptConfirmed(at=day(10)),
    e.FundsReleased(at=day(10), gross=TOTAL, fee=FEE_ON_TOTAL, net=TOTAL - FEE_ON_TOTAL),
]
CANCELLED: History = [*ACCEPTED, e.OrderCancelled(at=day(2), reason="changed plans", by=Role.BUYER)]


# --- when / then ------------------------------------------------------------------------------
def state_of(given: History) -> OrderState:
    state = fold(given)
    assert state is not None
    return state


def when(given: History, command: c.Command, at: datetime) -> list[e.AnyEvent]:
    """The events ``command`` causes at ``at`` on the order folded from ``given``."""
    return decide(fold(given), command, at, IDS)


def refused(given: History, command: c.Command, at: datetime, error: type[E]) -> E:
    """Assert that ``command`` is refused with exactly ``error`` (not a parent or sibling)."""
    with pytest.raises(DomainError) as raised:
        when(given, command, at)
    assert type(raised.value) is error, f"expected {error.__name__}, got {raised.value!r}"
    return raised.value


def then_state(given: History, command: c.Command, at: datetime) -> OrderState:
    """The order after ``command`` has been decided and its events folded in."""
    return state_of([*given, *when(given, command, at)])
