"""Money is an integer count of the currency's minor unit plus an ISO 4217 code; never a float.

The domain computes with no exponent: it adds, compares and takes fees on integers. It only
records the exponent an order is priced in (``Terms.currency_exponent``), which the edge
(``escrow_core.currency``) takes with the code from ISO 4217's own table.
"""

from pydantic import BaseModel, ConfigDict, Field

BPS_DENOMINATOR = 10_000


class Money(BaseModel):
    """An amount in minor units of ``currency`` (USD 1,250.00 is 125000 USD)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)


def fee_for(gross: int, fee_bps: int) -> int:
    """The platform fee on a release: round_half_even(gross * fee_bps / 10000), in minor units.

    Integer arithmetic only: a float would lose cents on large amounts.
    """
    quotient, remainder = divmod(gross * fee_bps, BPS_DENOMINATOR)
    twice = 2 * remainder
    if twice > BPS_DENOMINATOR or (twice == BPS_DENOMINATOR and quotient % 2 == 1):
        quotient += 1
    return quotient
