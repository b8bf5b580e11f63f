"""The order as folded from its events: frozen, replaced by ``evolve`` on every event."""

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from escrow_core.domain.errors import InvalidState
from escrow_core.domain.roles import Role, Side
from escrow_core.domain.terms import DisputeReason, Evidence, Terms


class Status(StrEnum):
    PLACED = "placed"
    ACCEPTED = "accepted"
    PARTIALLY_PAID = "partially_paid"
    HELD = "held"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    DISPUTED = "disputed"
    REFUNDED = "refunded"
    SETTLED = "settled"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.COMPLETED, Status.REFUNDED, Status.SETTLED, Status.CANCELLED})
BEFORE_SHIPMENT = frozenset({Status.PLACED, Status.ACCEPTED, Status.PARTIALLY_PAID, Status.HELD})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Shipment(_Frozen):
    carrier: str
    tracking_number: str
    shipped_at: datetime
    delivered_at: datetime | None = None


class Offer(_Frozen):
    by: Side
    refund_amount: int


class Resolution(_Frozen):
    refund_amount: int
    release_amount: int
    note: str
    by: Role
    resolved_at: datetime


class DisputeStatus(StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"


class Dispute(_Frozen):
    status: DisputeStatus
    reason: DisputeReason
    description: str
    requested_refund: int
    evidence: tuple[Evidence, ...]
    open_offer: Offer | None
    opened_at: datetime
    escalated_at: datetime | None = None
    resolution: Resolution | None = None
    status_before: Status
    # The order's own timer (inspection or auto-complete) stops while a dispute is open and
    # resumes with this much time left if the buyer withdraws.
    paused_remaining: timedelta | None = None

    @property
    def active(self) -> bool:
        return self.status in (DisputeStatus.OPEN, DisputeStatus.ESCALATED)


class Amounts(_Frozen):
    paid: int = 0
    held: int = 0
    released: int = 0
    refunded: int = 0
    fees: int = 0


class OrderState(_Frozen):
    version: int
    status: Status
    terms: Terms
    amounts: Amounts = Amounts()
    placed_at: datetime
    accepted_at: datetime | None = None
    updated_at: datetime
    payments: tuple[tuple[str, int], ...] = ()  # (provider_ref, amount), in arrival order
    ship_by_at: datetime
    ship_by_extended_days: int = 0
    shipment_overdue: bool = False
    shipment: Shipment | None = None
    inspection_ends_at: datetime | None = None
    inspection_extended_days: int = 0
    inspection_extended_by: tuple[Side, ...] = ()
    auto_complete_at: datetime | None = None
    dispute: Dispute | None = None
    cancellation_reason: str | None = None

    @property
    def unpaid(self) -> int:
        return self.terms.total - self.amounts.paid

    def moved_to(self, status: Status, **changes: object) -> "OrderState":
        """The order in ``status``; its own timers (inspection, auto-complete) stop unless
        ``changes`` set one."""
        stopped = {"inspection_ends_at": None, "auto_complete_at": None}
        return self.model_copy(update={**stopped, "status": status, **changes})

    def shipped(self) -> Shipment:
        """The shipment, for a rule that runs only after one (InvalidState otherwise)."""
        if self.shipment is None:
            raise InvalidState(f"the order has not shipped (it is {self.status.value})")
        return self.shipment

    def disputed(self) -> Dispute:
        """The dispute, for a rule that runs only with one (InvalidState otherwise)."""
        if self.dispute is None:
            raise InvalidState("the order has no dispute")
        return self.dispute

    @property
    def party_ids(self) -> tuple[str, str]:
        return self.terms.buyer_id, self.terms.supplier_id

    def payment_amount(self, provider_ref: str) -> int | None:
        return next((amount for ref, amount in self.payments if ref == provider_ref), None)
