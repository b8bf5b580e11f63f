"""Parties, API keys and balances."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from escrow_api.schemas.common import RequestBody, ShortText
from escrow_core.accounts import KeyRole, PartyKind


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
    kind: PartyKind
    name: str
    trade_assurance: bool
    managed_by: str | None
    created_at: datetime


class ApiKey(BaseModel):
    """An API key; ``key`` is the secret, shown only in the response that created it."""

    id: str
    key: str | None
    role: KeyRole
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


class Balances(BaseModel):
    party_id: str
    balances: list[Balance]
