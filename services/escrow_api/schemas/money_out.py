"""Payouts and refunds (DESIGN 7.1, 7.7): what the payment provider reports of each, and
the objects the routes answer with."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from escrow_api.schemas.common import RequestBody, ShortText
from escrow_core.domain.order.state import PayoutStatus, RefundStatus


class PaidRequest(RequestBody):
    provider_ref: ShortText = Field(description="The provider's reference of the transfer.")

    model_config = {"json_schema_extra": {"examples": [{"provider_ref": "tr_5521"}]}}


class FailedRequest(RequestBody):
    reason: ShortText = Field(description="What the provider said went wrong.")

    model_config = {"json_schema_extra": {"examples": [{"reason": "account closed"}]}}


class Payout(BaseModel):
    """Money on its way out of escrow to a party (the supplier's net, an agent's fee)."""

    id: str
    object: Literal["payout"]
    order_id: str
    party_id: str = Field(description="Who is paid.")
    amount: int
    currency: str
    status: PayoutStatus
    provider_ref: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


class Refund(BaseModel):
    """Money on its way back to the buyer through one of its payments."""

    id: str
    object: Literal["refund"]
    order_id: str
    party_id: str = Field(description="The buyer refunded.")
    payment_provider_ref: str = Field(description="The payment it goes back through.")
    amount: int
    currency: str
    status: RefundStatus
    provider_ref: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


class OrderPayout(BaseModel):
    id: str
    party_id: str
    amount: int
    status: PayoutStatus


class OrderRefund(BaseModel):
    id: str
    payment_provider_ref: str
    amount: int
    status: RefundStatus
