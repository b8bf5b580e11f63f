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
