"""The Event shape of DESIGN section 4: an order's timeline and the global feed."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from escrow_api.schemas.enums import EventTypeName
from escrow_core.domain.roles import Role


class ActorOut(BaseModel):
    role: Role
    party_id: str | None
    on_behalf_of: str | None


class Event(BaseModel):
    """One fact in an order's life (timeline and feed)."""

    id: str
    type: EventTypeName
    order_id: str | None = Field(description="The order's id; null if the event is no order's.")
    sequence: int
    position: int
    created_at: datetime
    data: dict[str, Any]
    actor: ActorOut
    correlation_id: str | None = Field(
        description="The Escrow-Correlation-Id of the request that wrote the event (for a "
        "timer's event, that of the event which set the deadline), if one was sent."
    )
    causation_id: str | None = Field(
        description="The event that caused this one: for a timer's event, the evt_ id of "
        "the event that set the deadline which fired."
    )
