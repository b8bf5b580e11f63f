"""Order commands' bodies and the Order shape of DESIGN section 4."""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt, StrictStr, model_validator

from escrow_api.schemas.common import (
    MAX_AMOUNT,
    Amount,
    Currency,
    IsoDate,
    IsoDateTime,
    LongText,
    OptionalText,
    PartyId,
    RefundAmount,
    RequestBody,
    ShortText,
)
from escrow_api.schemas.enums import OrderActionName
from escrow_api.schemas.money_out import OrderPayout, OrderRefund
from escrow_api.schemas.parties import MetadataChange
from escrow_core.domain.metadata import MAX_CLIENT_REFERENCE_LENGTH
from escrow_core.domain.order import DisputeStatus, Status
from escrow_core.domain.roles import Role, Side
from escrow_core.domain.terms import (
    DeadlineKind,
    DisputeKind,
    DisputeReason,
    ExtendableDeadline,
    PaymentMethod,
)

ClientReference = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=MAX_CLIENT_REFERENCE_LENGTH,
        description="The buyer's own reference (a PO number): unique per buyer, a second order "
        "with it is 409 duplicate_client_reference naming the first.",
        examples=["PO-2027-0042"],
    ),
]


class Incoterm(StrEnum):
    """Incoterms 2020."""

    EXW = "EXW"
    FCA = "FCA"
    CPT = "CPT"
    CIP = "CIP"
    DAP = "DAP"
    DPU = "DPU"
    DDP = "DDP"
    FAS = "FAS"
    FOB = "FOB"
    CFR = "CFR"
    CIF = "CIF"


class LineItemIn(RequestBody):
    sku: ShortText
    description: OptionalText = ""
    quantity: Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
    unit_price: Amount


class TrancheIn(RequestBody):
    name: ShortText
    amount: Amount
    due_by: IsoDate | None = Field(
        default=None,
        description="A tranche after the first only: due by the end of this day (UTC), after "
        "the placement date and at most ship_by (else 422 invalid_due_by); default ship_by.",
    )


class RetentionIn(RequestBody):
    """A share of the total kept in escrow after confirmation, claimable until ``days`` later
    (percent 1-30, days 1-90; else 422 ``invalid_retention``)."""

    percent: Annotated[int, Field(strict=True)]
    days: Annotated[int, Field(strict=True)]


class PlaceOrderRequest(RequestBody):
    supplier_id: PartyId
    currency: Currency
    items: Annotated[list[LineItemIn], Field(min_length=1, max_length=100)]
    shipping_fee: Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT)] = 0
    incoterm: Incoterm
    quality_terms: LongText
    ship_by: IsoDate
    inspection_days: Annotated[int, Field(strict=True, ge=1, le=30)] | None = None
    payment_schedule: Annotated[list[TrancheIn], Field(min_length=1, max_length=10)] | None = None
    remarks: OptionalText = ""
    agency_fee_bps: StrictInt = Field(
        default=0,
        description="An agent placing the order for a buyer it manages (Escrow-On-Behalf-Of) "
        "may take 0-2000 bps of each release (else 422 invalid_terms); a buyer placing its own "
        "order cannot (422 agency_fee_not_allowed); with the platform's fee at most 10000 "
        "(else 422 fees_too_high).",
    )
    metadata: MetadataChange = Field(default_factory=dict)
    client_reference: ClientReference | None = None
    retention: RetentionIn | None = None

    @model_validator(mode="after")
    def _total_in_bounds(self) -> "PlaceOrderRequest":
        total = sum(i.quantity * i.unit_price for i in self.items) + self.shipping_fee
        if total > MAX_AMOUNT:
            raise ValueError(f"the order total may not exceed {MAX_AMOUNT}")
        return self

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "supplier_id": "pty_3kTMd9cQx7b2Lp0aW4yZ1uV8",
                    "currency": "USD",
                    "items": [
                        {
                            "sku": "LED-40W",
                            "description": "LED panel",
                            "quantity": 500,
                            "unit_price": 1250,
                        }
                    ],
                    "shipping_fee": 35000,
                    "incoterm": "FOB",
                    "quality_terms": "IP65, 3-year warranty, AQL 2.5 inspection",
                    "ship_by": "2027-03-31",
                    "inspection_days": 10,
                    "payment_schedule": [
                        {"name": "deposit", "amount": 198000},
                        {"name": "balance", "amount": 462000},
                    ],
                }
            ]
        }
    }


class RecordPaymentRequest(RequestBody):
    amount: Amount
    method: PaymentMethod
    provider_ref: ShortText

    model_config = {
        "json_schema_extra": {
            "examples": [{"amount": 198000, "method": "bank_transfer", "provider_ref": "wire_8812"}]
        }
    }


class ShipRequest(RequestBody):
    carrier: ShortText
    tracking_number: ShortText

    model_config = {
        "json_schema_extra": {"examples": [{"carrier": "DHL", "tracking_number": "JD0146000012"}]}
    }


class UpdateOrderMetadataRequest(RequestBody):
    """Merged into the order's metadata; the limits apply to the result."""

    metadata: MetadataChange

    model_config = {
        "json_schema_extra": {"examples": [{"metadata": {"cost_center": "B-12", "erp_id": ""}}]}
    }


class DeliverRequest(RequestBody):
    delivered_at: IsoDateTime | None = None

    model_config = {"json_schema_extra": {"examples": [{"delivered_at": "2027-04-20T09:30:00Z"}]}}


class ExtendRequest(RequestBody):
    deadline: ExtendableDeadline
    days: Annotated[int, Field(strict=True, ge=1, le=90)]

    model_config = {"json_schema_extra": {"examples": [{"deadline": "inspection", "days": 5}]}}


class CancelRequest(RequestBody):
    reason: OptionalText = ""

    model_config = {"json_schema_extra": {"examples": [{"reason": "supplier out of stock"}]}}


class MessageRequest(RequestBody):
    body: LongText

    model_config = {
        "json_schema_extra": {"examples": [{"body": "Photos of the damaged cartons attached."}]}
    }


class EvidenceIn(RequestBody):
    description: LongText
    url: (
        Annotated[StrictStr, Field(max_length=2048, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")]
        | None
    ) = None
    sha256: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


class OpenDisputeRequest(RequestBody):
    reason: DisputeReason
    description: OptionalText = ""
    requested_refund: RefundAmount
    evidence: Annotated[list[EvidenceIn], Field(max_length=20)] = []

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "reason": "quality",
                    "description": "30% of the panels flicker",
                    "requested_refund": 198000,
                    "evidence": [
                        {
                            "description": "inspection report",
                            "url": "https://example.com/report.pdf",
                        }
                    ],
                }
            ]
        }
    }


class ClaimRequest(OpenDisputeRequest):
    """A claim on the retained money: requested_refund at most what is retained."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "reason": "quality",
                    "description": "12 panels failed within a month",
                    "requested_refund": 15000,
                    "evidence": [],
                }
            ]
        }
    }


class OfferRequest(RequestBody):
    refund_amount: RefundAmount
    note: OptionalText = ""

    model_config = {
        "json_schema_extra": {"examples": [{"refund_amount": 120000, "note": "half the batch"}]}
    }


class ResolveRequest(OfferRequest):
    pass


class ReleaseRequest(RequestBody):
    amount: Amount = Field(description="At most what is held (else 422 release_exceeds_held).")
    note: OptionalText = ""

    model_config = {"json_schema_extra": {"examples": [{"amount": 30000, "note": "deposit"}]}}


# --- the Order shape --------------------------------------------------------------------
class LineItemOut(BaseModel):
    sku: str
    description: str
    quantity: int
    unit_price: int


class TrancheOut(BaseModel):
    name: str
    amount: int
    due_by: date | None


class AmountsOut(BaseModel):
    total: int
    paid: int
    held: int
    released: int
    refunded: int
    fees: int
    agency_fees: int
    retained: int = Field(description="Part of held.")
    paid_out: int = Field(description="Payouts paid (to the supplier and agent).")
    refunds_completed: int = Field(description="Refunds the provider reported succeeded.")


class ShipmentOut(BaseModel):
    carrier: str
    tracking_number: str
    shipped_at: datetime
    delivered_at: datetime | None


class OfferOut(BaseModel):
    by: Side
    refund_amount: int


class ResolutionOut(BaseModel):
    refund_amount: int
    release_amount: int
    note: str
    by: Role
    resolved_at: datetime


class EvidenceOut(BaseModel):
    description: str
    url: str | None
    sha256: str | None


class DisputeOut(BaseModel):
    kind: DisputeKind = Field(
        description="A dispute before receipt, or a claim on the money retained after it."
    )
    status: DisputeStatus
    reason: DisputeReason
    description: str
    requested_refund: int
    evidence: list[EvidenceOut]
    open_offer: OfferOut | None
    opened_at: datetime
    escalated_at: datetime | None
    resolution: ResolutionOut | None


class RetentionOut(BaseModel):
    percent: int
    days: int


class DeadlineOut(BaseModel):
    kind: DeadlineKind
    at: datetime


class Order(BaseModel):
    """An order as it stands; amounts are integers in the order currency's minor unit."""

    id: str
    version: int
    status: Status
    buyer_id: str
    supplier_id: str
    currency: str
    currency_exponent: int = Field(
        description="The minor units every amount of the order is in, recorded when it was "
        "placed: ISO 4217's (IQD 3, JPY 0); an order placed before 1.1 keeps the exponent it "
        "was priced under."
    )
    items: list[LineItemOut]
    shipping_fee: int
    total: int
    incoterm: Incoterm
    quality_terms: str
    ship_by: date
    inspection_days: int
    payment_schedule: list[TrancheOut]
    remarks: str
    fee_bps: int
    agency_id: str | None = Field(
        default=None, description="The agent that placed the order and earns agency_fee_bps."
    )
    agency_fee_bps: int = 0
    retention: RetentionOut | None = Field(
        description="The share of the total kept after confirmation, and for how long."
    )
    amounts: AmountsOut
    shipment: ShipmentOut | None
    shipment_overdue: bool
    dispute: DisputeOut | None
    cancellation_reason: str | None
    deadlines: list[DeadlineOut]
    next_deadline_at: datetime | None
    allowed_actions: list[OrderActionName]
    created_at: datetime
    updated_at: datetime
    payouts: list[OrderPayout] = Field(
        default_factory=list,
        description="Omitted for the buyer side (but an agent's own agency-fee payouts).",
    )
    refunds: list[OrderRefund] = Field(
        default_factory=list, description="Omitted for the supplier side."
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="The buyer's bookkeeping: omitted for the supplier side (DESIGN 7.6).",
    )
    client_reference: str | None = Field(
        default=None,
        description="The buyer's own reference, unique per buyer: omitted for the supplier side.",
    )
