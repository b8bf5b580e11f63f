"""Configuration from the environment, every name prefixed ``ESCROW_``."""

from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from escrow_core.domain.policy import TimerPolicy

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/escrow.db"
DEFAULT_RETRY_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ESCROW_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    admin_key: str | None = None
    sandbox: bool = False
    release_fee_bps: int = Field(default=0, ge=0, le=10_000)
    accept_days: int = Field(default=30, ge=1)
    pay_days: int = Field(default=60, ge=1)
    inspection_days: int = Field(default=15, ge=1, le=30)
    negotiation_days: int = Field(default=3, ge=0)
    auto_escalate_days: int = Field(default=7, ge=1)
    undelivered_complete_days: int = Field(default=60, ge=1)
    webhook_allow_private: bool = False
    # Seconds before each attempt, comma-separated or a JSON list: "0,5,300".
    webhook_retry_schedule: Annotated[tuple[int, ...], NoDecode] = DEFAULT_RETRY_SCHEDULE
    log_level: str = "INFO"
    # `escrow serve` runs the worker inside the server process unless --no-worker.
    embedded_worker: bool = True

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.strip("[] ").split(",") if part.strip())
        return value

    @property
    def timer_policy(self) -> TimerPolicy:
        return TimerPolicy(
            accept_days=self.accept_days,
            pay_days=self.pay_days,
            negotiation_days=self.negotiation_days,
            auto_escalate_days=self.auto_escalate_days,
            undelivered_complete_days=self.undelivered_complete_days,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
