"""Who acts on an order. A party principal acts as the order's buyer or supplier."""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    BUYER = "buyer"
    SUPPLIER = "supplier"
    PAYMENTS = "payments"
    MEDIATOR = "mediator"
    ADMIN = "admin"
    SYSTEM = "system"


class Side(StrEnum):
    """A side of the trade: the two parties that negotiate a dispute."""

    BUYER = "buyer"
    SUPPLIER = "supplier"


class Actor(BaseModel):
    """The role a command is issued in, and the party behind it for buyer and supplier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    party_id: str | None = None

    @property
    def side(self) -> Side | None:
        return Side(self.role.value) if self.role in (Role.BUYER, Role.SUPPLIER) else None


SYSTEM = Actor(role=Role.SYSTEM)
