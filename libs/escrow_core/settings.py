"""Configuration from the environment, every name prefixed ``ESCROW_``.

A bad value is a ``pydantic.ValidationError`` naming the setting, never showing its value
(a URL's password, the admin key): ``escrow`` prints it as one line and exits 1.
"""

from functools import lru_cache
from typing import Annotated, Literal

import sqlalchemy as sa
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from escrow_core.domain.policy import TimerPolicy

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/escrow.db"
DEFAULT_RETRY_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
ADMIN_KEY_MIN_LENGTH = 32
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# What each URL scheme a user may write means: every backend runs on its async driver.
_ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ESCROW_", extra="ignore", hide_input_in_errors=True
    )

    # postgres://, postgresql:// and sqlite:/// are read as their async drivers' URLs.
    database_url: str = DEFAULT_DATABASE_URL
    # Accepted as an admin key (bootstrap); at least 32 characters, never shown.
    admin_key: SecretStr | None = None
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
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = DEFAULT_RETRY_SCHEDULE
    # Webhook delivery (DESIGN section 5); shortened by tests, the defaults are the contract.
    webhook_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    # How long a claimed delivery stays reserved for its sender: above the timeout, so a live
    # sender is never overtaken; a crashed sender's deliveries are taken over after it.
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    # An endpoint failing without a success for this long is disabled (5 days).
    webhook_disable_after_seconds: float = Field(default=5 * 86_400, gt=0)
    webhook_concurrency: int = Field(default=32, ge=1, le=1000)
    # How often the worker polls the log, the deliveries and the timers when idle.
    worker_poll_seconds: float = Field(default=0.2, gt=0, le=5)
    # On PostgreSQL the worker also LISTENs for commits, so it wakes at once; off behind a
    # pooler that cannot hold a LISTEN (PgBouncer in transaction mode): then it only polls.
    worker_listen: bool = True
    log_level: LogLevel = "INFO"
    # `escrow serve` runs the worker inside the server process unless --no-worker.
    embedded_worker: bool = True
    # `escrow worker` serves /metrics on metrics_host:metrics_port when a port is set.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65_535)
    # Requests a second per party key (bursts of twice that), in each server process; 0 = off.
    rate_limit_per_second: int = Field(default=100, ge=0)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        try:
            url = sa.make_url(value)
        except sa.exc.ArgumentError:
            raise ValueError(
                "not a database URL: use postgresql://user:password@host/database "
                "or sqlite:///path/to/file.db"
            ) from None
        driver = _ASYNC_DRIVERS.get(url.drivername.lower())
        if driver is None:
            raise ValueError(
                f"unsupported database {url.drivername!r}: use postgresql:// (postgres://, "
                "postgresql+asyncpg://) or sqlite:/// (sqlite+aiosqlite:///)"
            )
        # Only the scheme changes: the rest stays exactly as written (rendering the URL again
        # would escape it, ":memory:" included).
        return f"{driver}://{value.split('://', 1)[1]}"

    @field_validator("admin_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < ADMIN_KEY_MIN_LENGTH:
            raise ValueError(
                f"the admin key needs at least {ADMIN_KEY_MIN_LENGTH} characters "
                "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))' makes one)"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in value.strip("[] ").split(",") if part.strip())
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_is_sane(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(delay < 0 for delay in value):
            raise ValueError("the retry schedule needs at least one delay, none negative")
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
