"""Imperative requests. Each carries the ``actor`` issuing it; the domain decides what follows."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from escrow_core.domain import terms
from escrow_core.domain.policy import TimerPolicy
from escrow_core.domain.roles import SYSTEM, Actor


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: Actor


class PlaceOrder(Command):
    buyer_id: str
    supplier_id: str
    supplier_trade_assurance: bool
    currency: str
    currency_exponent: int
    items: tuple[terms.LineItem, ...]
    shipping_fee: int = 0
    incoterm: str
    quality_terms: str
    ship_by: date
    inspection_days: int
    payment_schedule: tuple[terms.Tranche, ...] | None = None
    remarks: str = ""
    fee_bps: int = 0
    policy: TimerPolicy = TimerPolicy()
    agency_id: str | None = None  # the agent placing the order for the buyer, if any
    agency_fee_bps: int = 0
    retention: terms.Retention | None = None
    metadata: dict[str, object] = Field(default_factory=dict)  # judged by domain.metadata
    client_reference: str | None = None


class AcceptOrder(Command):
    pass


class RecordPayment(Command):
    amount: int
    method: terms.PaymentMethod
    provider_ref: str


class ShipOrder(Command):
    carrier: str
    tracking_number: str


class ReportDelivery(Command):
    delivered_at: datetime | None = None


class ConfirmReceipt(Command):
    pass


class ExtendDeadline(Command):
    deadline: terms.ExtendableDeadline
    days: int


class CancelOrder(Command):
    reason: str = ""


class PostMessage(Command):
    body: str


class UpdateMetadata(Command):
    """Merge ``metadata`` into the order's (a key set to "" is removed)."""

    metadata: dict[str, object]


class OpenDispute(Command):
    reason: terms.DisputeReason
    description: str = ""
    requested_refund: int
    evidence: tuple[terms.Evidence, ...] = ()


class MakeOffer(Command):
    refund_amount: int
    note: str = ""


class AcceptOffer(Command):
    pass


class EscalateDispute(Command):
    pass


class ResolveDispute(Command):
    refund_amount: int
    note: str = ""


class WithdrawDispute(Command):
    pass


# --- milestones (DESIGN 7.2) -----------------------------------------------------------------
class ReleaseMilestone(Command):
    """The buyer (or its agent) releases part of what is held before receipt."""

    amount: int
    note: str = ""


# --- retention: a claim on the money kept after receipt (DESIGN 7.2) ------------------------
class MakeClaim(Command):
    reason: terms.DisputeReason
    description: str = ""
    requested_refund: int
    evidence: tuple[terms.Evidence, ...] = ()


# --- money out: a payment provider reports what the bank did ------------------------------
class ReportPayoutPaid(Command):
    payout_id: str
    provider_ref: str


class ReportPayoutFailed(Command):
    payout_id: str
    reason: str


class ReportPayoutReturned(Command):
    payout_id: str
    reason: str


class RetryPayout(Command):
    payout_id: str


class ReportRefundSucceeded(Command):
    refund_id: str
    provider_ref: str


class ReportRefundFailed(Command):
    refund_id: str
    reason: str


class RetryRefund(Command):
    refund_id: str


# --- timer commands: fired by the worker as the system ---------------------------------------
class TimerCommand(Command):
    actor: Actor = Field(default=SYSTEM)
    kind: str  # the deadline kind that fires it


class AutoCancelUnaccepted(TimerCommand):
    kind: Literal["accept_by"] = "accept_by"


class AutoCancelUnpaid(TimerCommand):
    kind: Literal["pay_by"] = "pay_by"


class MarkShipmentOverdue(TimerCommand):
    kind: Literal["ship_by"] = "ship_by"


class AutoConfirmReceipt(TimerCommand):
    kind: Literal["inspection_ends"] = "inspection_ends"


class AutoCompleteUndelivered(TimerCommand):
    kind: Literal["auto_complete_at"] = "auto_complete_at"


class AutoEscalateDispute(TimerCommand):
    kind: Literal["auto_escalate_at"] = "auto_escalate_at"


# --- every tranche due (DESIGN 7.2) ----------------------------------------------------------
class MarkPaymentOverdue(TimerCommand):
    kind: Literal["tranche_due"] = "tranche_due"


class AutoCancelOverdue(TimerCommand):
    kind: Literal["unpaid_cancel_at"] = "unpaid_cancel_at"


class EndRetention(TimerCommand):
    kind: Literal["retention_ends"] = "retention_ends"
