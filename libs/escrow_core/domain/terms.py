"""The written contract captured at ``order.placed``."""

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from escrow_core.domain.policy import TimerPolicy


def end_of_day(day: date) -> datetime:
    """``ship_by`` is a date: the order is on time until that day ends, UTC."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LineItem(_Frozen):
    sku: str
    description: str = ""
    quantity: int = Field(gt=0)
    unit_price: int = Field(gt=0)


class Tranche(_Frozen):
    """One instalment of the payment schedule. A tranche after the first may be ``due_by`` a
    date (default: the terms' ``ship_by``); the first is due within the policy's pay days."""

    name: str
    amount: int = Field(gt=0)
    due_by: date | None = None


class Retention(_Frozen):
    """The share of the total kept in escrow after confirmation, for ``days``, against latent
    defects (bounds are judged by ``decide``, which names the error)."""

    percent: int
    days: int


class Terms(_Frozen):
    """What buyer and supplier agreed; ``total`` is computed, never taken from the client."""

    buyer_id: str
    supplier_id: str
    currency: str
    currency_exponent: int = Field(ge=0)  # the amounts' minor units, as priced
    items: tuple[LineItem, ...]
    shipping_fee: int = Field(ge=0)
    total: int = Field(gt=0)
    incoterm: str
    quality_terms: str
    ship_by: date
    inspection_days: int
    payment_schedule: tuple[Tranche, ...]
    remarks: str = ""
    fee_bps: int = Field(ge=0)
    policy: TimerPolicy
    agency_id: str | None = None  # the agent that placed the order and earns agency_fee_bps
    agency_fee_bps: int = Field(default=0, ge=0)
    retention: Retention | None = None


class PaymentMethod(StrEnum):
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"
    WALLET = "wallet"


class RefundReason(StrEnum):
    """Why money went back to the buyer (``refund.issued`` schema 2; v1 events have none)."""

    CANCELLATION = "cancellation"
    DISPUTE = "dispute"
    OVERPAYMENT = "overpayment"
    ORDER_NOT_PAYABLE = "order_not_payable"


class DisputeReason(StrEnum):
    QUALITY = "quality"
    LATE_SHIPMENT = "late_shipment"
    NOT_RECEIVED = "not_received"
    QUANTITY = "quantity"
    OTHER = "other"


class Evidence(_Frozen):
    description: str
    url: str | None = None
    sha256: str | None = None


class DeadlineKind(StrEnum):
    ACCEPT_BY = "accept_by"
    PAY_BY = "pay_by"
    SHIP_BY = "ship_by"
    INSPECTION_ENDS = "inspection_ends"
    AUTO_COMPLETE_AT = "auto_complete_at"
    ESCALATION_ALLOWED_AT = "escalation_allowed_at"
    AUTO_ESCALATE_AT = "auto_escalate_at"
    TRANCHE_DUE = "tranche_due"
    UNPAID_CANCEL_AT = "unpaid_cancel_at"
    RETENTION_ENDS = "retention_ends"


class DisputeKind(StrEnum):
    """A dispute before receipt, or a claim on the money retained after it."""

    DISPUTE = "dispute"
    CLAIM = "claim"


class ExtendableDeadline(StrEnum):
    SHIP_BY = "ship_by"
    INSPECTION = "inspection"
