"""One named error per broken rule, each with a stable ``code``.

Three families tell the edge how to answer without the domain knowing HTTP:

    DomainError
     ├── NotPermitted   the actor's role may not do this at all
     ├── InvalidState   the order's current state forbids the command
     └── InvalidValue   a value is wrong whatever the state (``field`` names it)
"""

from typing import ClassVar


class DomainError(Exception):
    """A refused command. ``code`` is stable and public."""

    code: ClassVar[str] = "domain_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotPermitted(DomainError):
    code = "action_not_permitted"


class InvalidState(DomainError):
    code = "invalid_state"


class InvalidValue(DomainError):
    code = "invalid_value"


# --- state -----------------------------------------------------------------------------------
class OrderNotFound(InvalidState):
    code = "order_not_found"


class OrderAlreadyExists(InvalidState):
    code = "order_already_exists"


class ProviderRefConflict(InvalidState):
    code = "provider_ref_conflict"


class NotFullyHeld(InvalidState):
    code = "not_fully_held"


class CancellationNotAllowed(InvalidState):
    code = "cancellation_not_allowed"


class ExtensionAlreadyUsed(InvalidState):
    code = "extension_already_used"


class DisputeNotOpen(InvalidState):
    code = "dispute_not_open"


class DisputeAlreadyEscalated(InvalidState):
    code = "dispute_already_escalated"


class DisputeNotEscalated(InvalidState):
    code = "dispute_not_escalated"


class DisputeCannotReopen(InvalidState):
    code = "dispute_cannot_reopen"


class NegotiationPeriodActive(InvalidState):
    code = "negotiation_period_active"


class NoOpenOffer(InvalidState):
    code = "no_open_offer"


class CannotAcceptOwnOffer(InvalidState):
    code = "cannot_accept_own_offer"


class DeadlineNotReached(InvalidState):
    code = "deadline_not_reached"


class PayoutNotFound(InvalidState):
    code = "payout_not_found"


class RefundNotFound(InvalidState):
    code = "refund_not_found"


class PayoutAlreadySettled(InvalidState):
    """A report that contradicts the payout's outcome (paid, then failed; paid twice over)."""

    code = "payout_already_settled"


class PayoutNotPaid(InvalidState):
    """Only a paid payout can come back from the bank."""

    code = "payout_not_paid"


class RefundAlreadySettled(InvalidState):
    code = "refund_already_settled"


# --- values ----------------------------------------------------------------------------------
class SupplierNotTradeAssurance(InvalidValue):
    code = "supplier_not_trade_assurance"


class InvalidTerms(InvalidValue):
    code = "invalid_terms"


class PaymentScheduleMismatch(InvalidValue):
    code = "payment_schedule_mismatch"


class RefundExceedsHeld(InvalidValue):
    code = "refund_exceeds_held"


class ExtensionLimitExceeded(InvalidValue):
    code = "extension_limit_exceeded"


class InvalidDeliveryTime(InvalidValue):
    code = "invalid_delivered_at"


# --- milestones, agency fees, every tranche due (DESIGN 7.2) -------------------------------
class AgencyFeeNotAllowed(InvalidValue):
    """Only an agent placing an order for a buyer it manages may set an agency fee."""

    code = "agency_fee_not_allowed"


class FeesTooHigh(InvalidValue):
    code = "fees_too_high"


class InvalidDueBy(InvalidValue):
    code = "invalid_due_by"


class ReleaseExceedsHeld(InvalidValue):
    code = "release_exceeds_held"


class InvalidMetadata(InvalidValue):
    """``metadata`` breaks a rule (``escrow_core.domain.metadata``): ``field`` names the key
    at fault, ``reason`` what is wrong with it."""

    code = "invalid_metadata"

    def __init__(self, message: str, field: str, reason: str) -> None:
        super().__init__(f"metadata: {message}.", field=field)
        self.rule = message
        self.reason = reason


class InvalidClientReference(InvalidValue):
    code = "invalid_client_reference"


# --- retention and claims (DESIGN 7.2) --------------------------------------------------------
class ClaimWindowClosed(InvalidState):
    """A claim after the retention window (or on an order whose retention has ended)."""

    code = "claim_window_closed"


class ClaimAlreadyMade(InvalidState):
    """An order takes one claim (a dispute withdrawn before receipt does not count)."""

    code = "claim_already_made"


class InvalidRetention(InvalidValue):
    code = "invalid_retention"


class ClaimExceedsRetained(InvalidValue):
    code = "claim_exceeds_retained"
