"""Webhook endpoints, their deliveries and attempts; replay."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from escrow_api.schemas.common import IsoDateTime, RequestBody
from escrow_api.schemas.enums import EventTypeName, SubscriptionName, named_enum
from escrow_core.webhooks.endpoints import ALL_EVENTS, SUBSCRIBABLE
from escrow_core.webhooks.ssrf import UnsafeUrl, target_of

MAX_URL_LENGTH = 2048
MAX_EVENT_TYPES = 50


def _http_url(value: str) -> str:
    try:
        target_of(value)
    except UnsafeUrl as error:
        raise ValueError(error.detail) from error
    return value


def _subscribable(value: str) -> str:
    if value != ALL_EVENTS and value not in SUBSCRIBABLE:
        raise ValueError(f"unknown event type {value!r}")
    return value


WebhookUrl = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://",
        examples=["https://hooks.example.com/escrow"],
        description="An http:// or https:// URL on a publicly routable host.",
    ),
    AfterValidator(_http_url),
]
EventType = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=100,
        examples=["funds.released"],
        description='An event type ("order.placed", "funds.released" ...) or "*" for all.',
    ),
    AfterValidator(_subscribable),
    named_enum("EventSubscription"),  # documented as the enum; refused here with its name
]
EventTypes = Annotated[list[EventType], Field(max_length=MAX_EVENT_TYPES)]


class CreateWebhookEndpointRequest(RequestBody):
    url: WebhookUrl
    event_types: EventTypes | None = Field(
        default=None, description='The events to receive; omitted or ["*"] means all.'
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "url": "https://hooks.example.com/escrow",
                    "event_types": ["funds.released", "dispute.opened"],
                }
            ]
        }
    }


class UpdateWebhookEndpointRequest(RequestBody):
    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    enabled: StrictBool | None = Field(
        default=None, description="false pauses deliveries; true resumes them (and re-enables)."
    )

    @model_validator(mode="after")
    def _something(self) -> "UpdateWebhookEndpointRequest":
        if self.url is None and self.event_types is None and self.enabled is None:
            raise ValueError("name at least one of url, event_types, enabled")
        return self

    model_config = {"json_schema_extra": {"examples": [{"enabled": True}]}}


class ReplayRequest(RequestBody):
    since_position: StrictInt | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,  # a log position is a bigint
        description="Replay events from this log position on.",
    )
    since: IsoDateTime | None = Field(
        default=None, description="Replay events recorded at or after this time."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> "ReplayRequest":
        if (self.since_position is None) == (self.since is None):
            raise ValueError("give exactly one of since_position and since")
        return self

    model_config = {"json_schema_extra": {"examples": [{"since_position": 1}]}}


class WebhookEndpoint(BaseModel):
    """A webhook endpoint; ``secret`` is shown only by the responses that create it."""

    id: str
    url: str
    event_types: list[SubscriptionName]
    enabled: bool
    disabled_reason: str | None
    owner_party_id: str | None = Field(description="The owning party; null for an admin's.")
    secret: str | None = Field(description="whsec_...: shown once, at creation or rotation.")
    created_at: datetime
    updated_at: datetime


class WebhookAttempt(BaseModel):
    attempt: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None = Field(description="The first 2 KB of the response.")


class WebhookDelivery(BaseModel):
    id: str
    event_id: str
    event_type: EventTypeName
    order_id: str | None
    sequence: int
    position: int
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    attempts: list[WebhookAttempt]


class ReplayResult(BaseModel):
    endpoint_id: str
    enqueued: int = Field(description="Deliveries queued (new, or reset to pending).")
    has_more: bool = Field(
        description="The replay looked at its limit of 10,000 events and more follow."
    )
    next_position: int | None = Field(
        description="Where to go on: the since_position of the next call, if has_more."
    )
