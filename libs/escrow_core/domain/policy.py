"""Deadlines and limits as data. Timer lengths are captured per order when it is placed."""

from pydantic import BaseModel, ConfigDict, Field

INSPECTION_DAYS_MIN = 1
INSPECTION_DAYS_MAX = 30
SHIP_BY_EXTENSION_MAX_TOTAL_DAYS = 90
INSPECTION_EXTENSION_MAX_DAYS = 15
INSPECTION_EXTENSION_MAX_TOTAL_DAYS = 30
FEE_BPS_MAX = 10_000
AGENCY_FEE_BPS_MAX = 2_000


class TimerPolicy(BaseModel):
    """Timer lengths in days, as in force when the order was placed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accept_days: int = Field(default=30, ge=1)
    pay_days: int = Field(default=60, ge=1)
    negotiation_days: int = Field(default=3, ge=0)
    auto_escalate_days: int = Field(default=7, ge=1)
    undelivered_complete_days: int = Field(default=60, ge=1)
