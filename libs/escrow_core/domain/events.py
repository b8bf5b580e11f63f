"""Past-tense facts. The ``type`` string is stable and public (stored, fed, sent by webhook)."""

from datetime import date, datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from escrow_core.domain.policy import TimerPolicy
from escrow_core.domain.roles import Role, Side
from escrow_core.domain.terms import (
    DisputeKind,
    DisputeReason,
    Evidence,
    ExtendableDeadline,
    LineItem,
    PaymentMethod,
    RefundReason,
    Retention,
    Tranche,
)


class Event(BaseModel):
    """Every event records ``at``, the service clock when it happened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime


class OrderPlaced(Event):
    """Schema 2: records ``currency_exponent``, the minor units every amount of the order is in
    (ISO 4217's; an order placed before keeps the exponent it was priced under). Schema 3: the
    agency's fee and the retention, the buyer's ``metadata`` and ``client_reference`` (buyer
    side only, DESIGN 7.6); a v2 event has none of them. Tranches may carry ``due_by``."""

    type: Literal["order.placed"] = "order.placed"
    buyer_id: str
    supplier_id: str
    currency: str
    currency_exponent: int
    items: tuple[LineItem, ...]
    shipping_fee: int
    total: int
    incoterm: str
    quality_terms: str
    ship_by: date
    inspection_days: int
    payment_schedule: tuple[Tranche, ...]
    remarks: str
    fee_bps: int
    policy: TimerPolicy
    agency_id: str | None = None
    agency_fee_bps: int = 0
    retention: Retention | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    client_reference: str | None = None


class OrderAccepted(Event):
    type: Literal["order.accepted"] = "order.accepted"


class PaymentReceived(Event):
    type: Literal["payment.received"] = "payment.received"
    amount: int
    method: PaymentMethod
    provider_ref: str


class FundsHeld(Event):
    type: Literal["funds.held"] = "funds.held"
    amount: int
    held_total: int


class OrderShipped(Event):
    type: Literal["order.shipped"] = "order.shipped"
    carrier: str
    tracking_number: str


class OrderDelivered(Event):
    """Schema 2: the inspection window starts at ``inspection_starts_at`` (for a supplier's
    report the later of ``delivered_at`` and the report; payments and admin may backdate)."""

    type: Literal["order.delivered"] = "order.delivered"
    delivered_at: datetime
    inspection_starts_at: datetime


class ReceiptConfirmed(Event):
    type: Literal["receipt.confirmed"] = "receipt.confirmed"
    auto: bool = False


class NewPayout(BaseModel):
    """A payout a release creates: the net to the supplier, or the agency fee to the agent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    party_id: str
    amount: int


class NewRefund(BaseModel):
    """The part of a refund that goes back through one payment (its ``provider_ref``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    payment_provider_ref: str
    amount: int


class FundsReleased(Event):
    """Schema 2: names the payouts it creates. A v1 event is upcast with ``payouts`` None: its
    money was paid out before payouts were tracked, and the ledger posts it so."""

    type: Literal["funds.released"] = "funds.released"
    gross: int
    fee: int
    agency_fee: int = 0
    net: int
    payouts: tuple[NewPayout, ...] | None = ()


class DisputeOpened(Event):
    """Schema 2: ``kind`` says whether it disputes the order or claims on the money retained
    after receipt (every v1 event is a dispute)."""

    type: Literal["dispute.opened"] = "dispute.opened"
    kind: DisputeKind = DisputeKind.DISPUTE
    reason: DisputeReason
    description: str
    requested_refund: int
    evidence: tuple[Evidence, ...] = ()


class DisputeOfferMade(Event):
    type: Literal["dispute.offer_made"] = "dispute.offer_made"
    by: Side
    refund_amount: int
    note: str = ""


class DisputeOfferAccepted(Event):
    type: Literal["dispute.offer_accepted"] = "dispute.offer_accepted"
    by: Side
    refund_amount: int


class DisputeEscalated(Event):
    type: Literal["dispute.escalated"] = "dispute.escalated"
    by: Role


class DisputeResolved(Event):
    type: Literal["dispute.resolved"] = "dispute.resolved"
    refund_amount: int
    release_amount: int
    note: str = ""
    by: Role


class DisputeWithdrawn(Event):
    type: Literal["dispute.withdrawn"] = "dispute.withdrawn"


class RefundIssued(Event):
    """Schema 2: says why, and how the amount goes back over the order's payments (newest
    first). A v1 event is upcast with ``reason`` and ``refunds`` None (refunded before refunds
    were tracked)."""

    type: Literal["refund.issued"] = "refund.issued"
    amount: int
    reason: RefundReason | None
    refunds: tuple[NewRefund, ...] | None = ()


class PayoutPaid(Event):
    type: Literal["payout.paid"] = "payout.paid"
    payout_id: str
    provider_ref: str


class PayoutFailed(Event):
    type: Literal["payout.failed"] = "payout.failed"
    payout_id: str
    reason: str


class PayoutReturned(Event):
    type: Literal["payout.returned"] = "payout.returned"
    payout_id: str
    reason: str


class PayoutRetried(Event):
    type: Literal["payout.retried"] = "payout.retried"
    payout_id: str


class RefundSucceeded(Event):
    type: Literal["refund.succeeded"] = "refund.succeeded"
    refund_id: str
    provider_ref: str


class RefundFailed(Event):
    type: Literal["refund.failed"] = "refund.failed"
    refund_id: str
    reason: str


class RefundRetried(Event):
    type: Literal["refund.retried"] = "refund.retried"
    refund_id: str


class MilestoneReleased(Event):
    """Part of what is held released before receipt; a ``funds.released`` follows."""

    type: Literal["milestone.released"] = "milestone.released"
    amount: int
    note: str = ""
    by: Role


class PaymentOverdue(Event):
    """A tranche after the first was not paid by the end of its due day (``tranche`` is its
    1-based position in the payment schedule)."""

    type: Literal["payment.overdue"] = "payment.overdue"
    tranche: int
    due_at: datetime


class OrderCancelled(Event):
    type: Literal["order.cancelled"] = "order.cancelled"
    reason: str
    by: Role


class ShipmentOverdue(Event):
    type: Literal["shipment.overdue"] = "shipment.overdue"
    ship_by_at: datetime


class DeadlineExtended(Event):
    type: Literal["deadline.extended"] = "deadline.extended"
    deadline: ExtendableDeadline
    by: Role
    days: int | None = None
    new_at: datetime


class MessagePosted(Event):
    type: Literal["message.posted"] = "message.posted"
    by: Role
    party_id: str | None = None
    body: str


class OrderMetadataUpdated(Event):
    """The buyer's bookkeeping changed: ``metadata`` is the whole of it after the change."""

    type: Literal["order.metadata_updated"] = "order.metadata_updated"
    metadata: dict[str, str]


class FundsRetained(Event):
    """Confirmation kept ``amount`` (the retention) in escrow until ``retention_ends``."""

    type: Literal["funds.retained"] = "funds.retained"
    amount: int
    retention_ends: datetime


class RetentionEnded(Event):
    """The retention window closed with no claim open; ``funds.released`` follows."""

    type: Literal["retention.ended"] = "retention.ended"


AnyEvent = Annotated[
    OrderPlaced
    | OrderAccepted
    | PaymentReceived
    | FundsHeld
    | OrderShipped
    | OrderDelivered
    | ReceiptConfirmed
    | FundsReleased
    | DisputeOpened
    | DisputeOfferMade
    | DisputeOfferAccepted
    | DisputeEscalated
    | DisputeResolved
    | DisputeWithdrawn
    | RefundIssued
    | OrderCancelled
    | ShipmentOverdue
    | DeadlineExtended
    | MessagePosted
    | PayoutPaid
    | PayoutFailed
    | PayoutReturned
    | PayoutRetried
    | RefundSucceeded
    | RefundFailed
    | RefundRetried
    | MilestoneReleased
    | PaymentOverdue
    | OrderMetadataUpdated
    | FundsRetained
    | RetentionEnded,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
_EVENT_CLASSES: tuple[type[Event], ...] = get_args(get_args(AnyEvent)[0])
# In the order of ``AnyEvent``, which the OpenAPI document follows too.
EVENT_TYPES: tuple[str, ...] = tuple(cls.model_fields["type"].default for cls in _EVENT_CLASSES)
# One adapter per type: the stored type picks the class, so reading skips the union's
# discriminator and the copy of the data that would carry the type into it (a fifth of a
# decode, on every event a rebuild or the feed reads).
_ADAPTERS: dict[str, TypeAdapter[Event]] = {
    event_type: TypeAdapter(cls)
    for event_type, cls in zip(EVENT_TYPES, _EVENT_CLASSES, strict=True)
}


# Event types whose data changed shape, by their current schema version (the rest are at 1).
# Each step up has an upcaster in ``domain.upcasts``, so old stored data still reads.
SCHEMA_VERSIONS: dict[str, int] = {
    "order.placed": 3,
    "order.delivered": 2,
    "dispute.opened": 2,
    "funds.released": 2,
    "refund.issued": 2,
}


def schema_version(event_type: str) -> int:
    """The schema version an event of ``event_type`` is written with now."""
    return SCHEMA_VERSIONS.get(event_type, 1)


def event_from_data(event_type: str, data: dict[str, object]) -> AnyEvent:
    """Rebuild a domain event from its stored type and JSON data."""
    adapter = _ADAPTERS.get(event_type)
    if adapter is None or "type" in data:  # the union names what is wrong
        return EVENT_ADAPTER.validate_python({**data, "type": event_type})
    return adapter.validate_python(data)  # type: ignore[return-value]


def event_to_data(event: Event) -> dict[str, object]:
    """The JSON-ready data stored for an event (its type is kept apart)."""
    return event.model_dump(mode="json", exclude={"type"})
