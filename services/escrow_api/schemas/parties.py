"""Parties, API keys and balances."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from escrow_api.schemas.common import RequestBody, ShortText
from escrow_core.accounts import PartyKind


class RegisterPartyRequest(RequestBody):
    kind: PartyKind
    name: ShortText
    trade_assurance: StrictBool = False

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"kind": "supplier", "name": "Shenzhen Bright LED Co.", "trade_assurance": True}
            ]
        }
    }


class UpdatePartyRequest(RequestBody):
    trade_assurance: StrictBool

    model_config = {"json_schema_extra": {"examples": [{"trade_assurance": True}]}}


class CreateApiKeyRequest(RequestBody):
    role: Literal["admin", "mediator", "payments"]

    model_config = {"json_schema_extra": {"examples": [{"role": "payments"}]}}


class Party(BaseModel):
    id: str
    kind: str
    name: str
    trade_assurance: bool
    managed_by: str | None
    created_at: datetime


class ApiKey(BaseModel):
    """An API key; ``key`` is the secret, shown only in the response that created it."""

    id: str
    key: str | None
    role: str
    party_id: str | None
    created_at: datetime
    revoked_at: datetime | None = None


class Balance(BaseModel):
    currency: str
    currency_exponent: int = Field(description="ISO 4217's minor units, those of the amounts.")
    held: int
    released: int
    refunded: int
    fees: int


class AccountBalance(BaseModel):
    """One of the party's ledger accounts in one currency: posted, and pending on its way out
    (a positive posted balance is money owed to the party)."""

    account: str = Field(examples=["supplier:pty_3kTMd9cQx7b2Lp0aW4yZ1uV8"])
    currency: str
    posted: int
    pending: int


class Balances(BaseModel):
    party_id: str
    balances: list[Balance]
    accounts: list[AccountBalance]


class Posting(BaseModel):
    """One leg of a ledger transfer on one of the party's accounts (DESIGN 7.1)."""

    id: int
    transfer_id: str
    order_id: str
    event_id: str
    at: datetime
    account: str
    amount: int = Field(description="Signed, in the currency's minor units.")
    currency: str
    phase: Literal["pending", "posted", "voided"]
    pending_id: str | None = Field(description="The pending transfer this one settles or voids.")
    legacy: bool = Field(description="Money out recorded before payouts were tracked (1.1).")
