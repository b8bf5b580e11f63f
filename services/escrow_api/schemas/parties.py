"""Parties, API keys and balances."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, WithJsonSchema, model_validator

from escrow_api.schemas.common import IsoDateTime, RequestBody, ShortText
from escrow_core.accounts import KeyRole, KeyScope, PartyKind
from escrow_core.domain.metadata import MAX_KEY_LENGTH, MAX_KEYS, MAX_VALUE_LENGTH

_METADATA_RULES = (
    f"Up to {MAX_KEYS} keys of 1-{MAX_KEY_LENGTH} characters, each value a string of at most "
    f"{MAX_VALUE_LENGTH}; any broken rule is 422 invalid_metadata."
)
# Checked by the domain's rules (escrow_core.domain.metadata), so that every broken rule
# answers the one code invalid_metadata; the schema documents the same rules.
MetadataChange = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": MAX_VALUE_LENGTH},
            "propertyNames": {"minLength": 1, "maxLength": MAX_KEY_LENGTH},
            "description": f'{_METADATA_RULES} A key set to "" is removed; others are kept.',
            "examples": [{"erp_id": "V-1042", "region": "south"}],
        }
    ),
]
KeyExpiry = Annotated[
    IsoDateTime | None,
    Field(description="The key stops working at this moment (401); must be in the future."),
]
KeyScopeField = Annotated[
    KeyScope,
    Field(description="full (default) acts as the role may; read only reads (403 read_only_key)."),
]


class RegisterPartyRequest(RequestBody):
    kind: PartyKind
    name: ShortText
    trade_assurance: StrictBool = False
    metadata: MetadataChange = Field(default_factory=dict)

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"kind": "supplier", "name": "Shenzhen Bright LED Co.", "trade_assurance": True}
            ]
        }
    }


class UpdatePartyRequest(RequestBody):
    """Name and metadata (admin, or the party's agent); trade_assurance (admin, suppliers)."""

    name: ShortText | None = None
    metadata: MetadataChange | None = None
    trade_assurance: StrictBool | None = None

    @model_validator(mode="after")
    def _something(self) -> "UpdatePartyRequest":
        if self.name is None and self.metadata is None and self.trade_assurance is None:
            raise ValueError("name at least one of name, metadata, trade_assurance")
        return self

    model_config = {"json_schema_extra": {"examples": [{"metadata": {"erp_id": "V-1042"}}]}}


class CreateApiKeyRequest(RequestBody):
    role: Literal["admin", "mediator", "payments"]
    scope: KeyScopeField = KeyScope.FULL
    expires_at: KeyExpiry = None

    model_config = {"json_schema_extra": {"examples": [{"role": "payments"}]}}


class CreatePartyApiKeyRequest(RequestBody):
    scope: KeyScopeField = KeyScope.FULL
    expires_at: KeyExpiry = None

    model_config = {"json_schema_extra": {"examples": [{"scope": "read"}]}}


class Party(BaseModel):
    id: str
    kind: PartyKind
    name: str
    trade_assurance: bool
    managed_by: str | None
    metadata: dict[str, str]
    created_at: datetime
    deactivated_at: datetime | None = Field(
        description="Set once the party is deactivated: its keys no longer work."
    )


class ApiKey(BaseModel):
    """An API key; ``key`` is the secret, shown only in the response that created it."""

    id: str
    key: str | None
    role: KeyRole
    party_id: str | None
    scope: KeyScope
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = Field(
        default=None, description="When the key was last used, to the minute."
    )


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
    posted: int = Field(description="Owed to the party: still to be paid out (or refunded).")
    pending: int = Field(description="On its way to the bank (payouts or refunds pending).")
    paid_out: int = Field(
        description="What reached the bank from this account: a supplier's or agent's payouts "
        "paid, a buyer's refunds succeeded (what came back), returns taken off."
    )


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


ShareString = Annotated[
    str | None,
    Field(
        pattern=r"^(0\.[0-9]{4}|1\.0000)$",
        examples=["0.0250"],
        description="A decimal string with four places, 0.0000-1.0000 (half-even), as payments "
        "APIs write ratios of money, never a binary float; null when nothing was paid.",
    ),
]


class CurrencyPerformance(BaseModel):
    """The money of a supplier's orders in one currency (amounts in its minor units)."""

    currency: str
    paid: int = Field(description="Sum of funds.held: money that went toward the orders' totals.")
    refunded: int = Field(description="Sum of refund.issued with reason dispute.")
    refunded_share: ShareString


class SupplierPerformance(BaseModel):
    """A supplier's record, from an asynchronous projection of the log (DESIGN 7.2)."""

    party_id: str
    orders_accepted: int = Field(description="Orders the supplier accepted (order.accepted).")
    shipped_on_time: int = Field(
        description="Orders whose order.shipped is at or before the ship-by deadline as it stood "
        "then: the end of the ship_by day (UTC), moved by deadline.extended (ship_by)."
    )
    shipped_late: int = Field(description="Orders shipped after that deadline.")
    completed: int = Field(
        description="Orders whose status became completed (the terminal status, however "
        "reached: confirmation, the inspection timer, a retention's end, a claim without refund)."
    )
    disputed: int = Field(
        description="Orders with at least one dispute.opened of kind dispute (or no kind)."
    )
    claims: int = Field(description="Orders with at least one dispute.opened of kind claim.")
    refunded_share: ShareString = Field(
        description="Refunded (refund.issued, reason dispute) / paid (funds.held) value, 0-1, as "
        "a decimal string with four places (half-even); null when nothing was paid. Amounts in "
        "different currencies are never added: with several, this is the highest of their "
        "shares (by_currency has each)."
    )
    median_days_to_ship: float | None = Field(
        description="Median over shipped orders of the days from order.accepted to "
        "order.shipped, to two places; null when none has shipped.",
        examples=[3.5],
    )
    as_of_position: int = Field(
        description="The log position the projection has applied up to (compare it with an "
        "event's position to know whether the figures include it)."
    )
    by_currency: list[CurrencyPerformance]
