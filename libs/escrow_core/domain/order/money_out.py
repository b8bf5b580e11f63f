"""Money leaving escrow, tracked to the bank: payouts to the supplier (and agent), refunds to
the buyer, and what the payment provider reports of each.

A release or a refund is decided by the order's rules; what it creates is named once the
decision is complete (``name_money_out``): the payouts of a release, and a refund's split over
the order's payments, newest first, each up to what that payment has not had back.

    payout:  pending -> paid | failed;  failed -> pending (retry);  paid -> returned -> pending
    refund:  pending -> succeeded | failed;  failed -> pending (retry)

The same report again is a no-op; a report that contradicts the outcome is refused.
"""

from dataclasses import dataclass
from datetime import datetime

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    PayoutAlreadySettled,
    PayoutNotFound,
    PayoutNotPaid,
    RefundAlreadySettled,
    RefundNotFound,
)
from escrow_core.domain.order.rules import check_role
from escrow_core.domain.order.state import (
    OrderState,
    Payout,
    PayoutStatus,
    Refund,
    RefundStatus,
)

PAYOUT_PREFIX = "po"
REFUND_PREFIX = "rf"


@dataclass(frozen=True, slots=True)
class NewIds:
    """The ids one decision may give what it creates, minted by the service (random) or by a
    test (predictable): the n-th is ``{prefix}_{token}{n}``."""

    token: str

    def nth(self, prefix: str, n: int) -> str:
        return f"{prefix}_{self.token}{n}"


def payouts_of(state: OrderState, event: e.FundsReleased) -> list[tuple[str, int]]:
    """Who a release pays, and how much: the supplier its net, the agent its agency fee (none
    for a zero amount)."""
    pays = [(state.terms.supplier_id, event.net)] if event.net else []
    if event.agency_fee and state.terms.agency_id is not None:
        pays.append((state.terms.agency_id, event.agency_fee))
    return pays


def allocation(state: OrderState, amount: int) -> list[tuple[str, int]]:
    """``amount`` split over the order's payments, newest first, each up to what it has not
    had back: (payment provider_ref, amount) pairs."""
    split, left = [], amount
    for provider_ref, paid in reversed(state.payments):
        if left == 0:
            break
        take = min(paid - state.refunded_through(provider_ref), left)
        if take > 0:
            split.append((provider_ref, take))
            left -= take
    if left:
        raise ValueError(f"a refund of {amount} exceeds what the payments can take back")
    return split


# --- decide ----------------------------------------------------------------------------------
def report_payout_paid(
    state: OrderState, cmd: c.ReportPayoutPaid, now: datetime
) -> list[e.AnyEvent]:
    payout = _payout(state, cmd)
    if payout.status is PayoutStatus.PENDING:
        return [e.PayoutPaid(at=now, payout_id=payout.id, provider_ref=cmd.provider_ref)]
    if payout.status is PayoutStatus.PAID and payout.provider_ref == cmd.provider_ref:
        return []
    raise PayoutAlreadySettled(_settled(payout.id, payout.status, payout.provider_ref))


def report_payout_failed(
    state: OrderState, cmd: c.ReportPayoutFailed, now: datetime
) -> list[e.AnyEvent]:
    payout = _payout(state, cmd)
    if payout.status is PayoutStatus.PENDING:
        return [e.PayoutFailed(at=now, payout_id=payout.id, reason=cmd.reason)]
    if payout.status is PayoutStatus.FAILED:
        return []
    raise PayoutAlreadySettled(_settled(payout.id, payout.status, payout.provider_ref))


def report_payout_returned(
    state: OrderState, cmd: c.ReportPayoutReturned, now: datetime
) -> list[e.AnyEvent]:
    payout = _payout(state, cmd)
    if payout.status is PayoutStatus.PAID:
        return [e.PayoutReturned(at=now, payout_id=payout.id, reason=cmd.reason)]
    if payout.status is PayoutStatus.RETURNED:
        return []
    raise PayoutNotPaid(f"payout {payout.id} is {payout.status.value}: only a paid one returns")


def retry_payout(state: OrderState, cmd: c.RetryPayout, now: datetime) -> list[e.AnyEvent]:
    payout = _payout(state, cmd)
    if payout.status in (PayoutStatus.FAILED, PayoutStatus.RETURNED):
        return [e.PayoutRetried(at=now, payout_id=payout.id)]
    if payout.status is PayoutStatus.PENDING:
        return []
    raise PayoutAlreadySettled(_settled(payout.id, payout.status, payout.provider_ref))


def report_refund_succeeded(
    state: OrderState, cmd: c.ReportRefundSucceeded, now: datetime
) -> list[e.AnyEvent]:
    refund = _refund(state, cmd)
    if refund.status is RefundStatus.PENDING:
        return [e.RefundSucceeded(at=now, refund_id=refund.id, provider_ref=cmd.provider_ref)]
    if refund.status is RefundStatus.SUCCEEDED and refund.provider_ref == cmd.provider_ref:
        return []
    raise RefundAlreadySettled(_settled(refund.id, refund.status, refund.provider_ref))


def report_refund_failed(
    state: OrderState, cmd: c.ReportRefundFailed, now: datetime
) -> list[e.AnyEvent]:
    refund = _refund(state, cmd)
    if refund.status is RefundStatus.PENDING:
        return [e.RefundFailed(at=now, refund_id=refund.id, reason=cmd.reason)]
    if refund.status is RefundStatus.FAILED:
        return []
    raise RefundAlreadySettled(_settled(refund.id, refund.status, refund.provider_ref))


def retry_refund(state: OrderState, cmd: c.RetryRefund, now: datetime) -> list[e.AnyEvent]:
    refund = _refund(state, cmd)
    if refund.status is RefundStatus.FAILED:
        return [e.RefundRetried(at=now, refund_id=refund.id)]
    if refund.status is RefundStatus.PENDING:
        return []
    raise RefundAlreadySettled(_settled(refund.id, refund.status, refund.provider_ref))


def _payout(
    state: OrderState,
    cmd: c.ReportPayoutPaid | c.ReportPayoutFailed | c.ReportPayoutReturned | c.RetryPayout,
) -> Payout:
    check_role(state, cmd)
    payout = state.payout(cmd.payout_id)
    if payout is None:
        raise PayoutNotFound(f"the order has no payout {cmd.payout_id}")
    return payout


def _refund(
    state: OrderState, cmd: c.ReportRefundSucceeded | c.ReportRefundFailed | c.RetryRefund
) -> Refund:
    check_role(state, cmd)
    refund = state.refund(cmd.refund_id)
    if refund is None:
        raise RefundNotFound(f"the order has no refund {cmd.refund_id}")
    return refund


def _settled(object_id: str, status: PayoutStatus | RefundStatus, provider_ref: str | None) -> str:
    ref = f" (provider_ref {provider_ref!r})" if provider_ref else ""
    return f"{object_id} is already {status.value}{ref}"


# --- evolve ----------------------------------------------------------------------------------
def payouts_created(state: OrderState, event: e.FundsReleased) -> OrderState:
    """The payouts a release creates, pending (none for a pre-1.1 release)."""
    created = tuple(
        Payout(
            id=p.id, party_id=p.party_id, amount=p.amount, created_at=event.at, updated_at=event.at
        )
        for p in event.payouts or ()
    )
    return state.model_copy(update={"payouts": (*state.payouts, *created)})


def refunds_created(state: OrderState, event: e.RefundIssued) -> OrderState:
    """The refunds a refund creates, pending (none for a pre-1.1 refund)."""
    created = tuple(
        Refund(
            id=r.id,
            payment_provider_ref=r.payment_provider_ref,
            amount=r.amount,
            created_at=event.at,
            updated_at=event.at,
        )
        for r in event.refunds or ()
    )
    return state.model_copy(update={"refunds": (*state.refunds, *created)})


def payout_paid(state: OrderState, event: e.PayoutPaid) -> OrderState:
    payout = _found_payout(state, event.payout_id)
    state = _with_paid_out(state, payout.amount)
    return _with_payout(
        state, payout, event.at, status=PayoutStatus.PAID, provider_ref=event.provider_ref
    )


def payout_failed(state: OrderState, event: e.PayoutFailed) -> OrderState:
    payout = _found_payout(state, event.payout_id)
    return _with_payout(
        state, payout, event.at, status=PayoutStatus.FAILED, failure_reason=event.reason
    )


def payout_returned(state: OrderState, event: e.PayoutReturned) -> OrderState:
    payout = _found_payout(state, event.payout_id)
    state = _with_paid_out(state, -payout.amount)
    return _with_payout(
        state, payout, event.at, status=PayoutStatus.RETURNED, failure_reason=event.reason
    )


def payout_retried(state: OrderState, event: e.PayoutRetried) -> OrderState:
    payout = _found_payout(state, event.payout_id)
    return _with_payout(
        state,
        payout,
        event.at,
        status=PayoutStatus.PENDING,
        provider_ref=None,
        failure_reason=None,
        attempt=payout.attempt + 1,
    )


def refund_succeeded(state: OrderState, event: e.RefundSucceeded) -> OrderState:
    refund = _found_refund(state, event.refund_id)
    a = state.amounts
    amounts = a.model_copy(update={"refunds_completed": a.refunds_completed + refund.amount})
    state = state.model_copy(update={"amounts": amounts})
    return _with_refund(
        state, refund, event.at, status=RefundStatus.SUCCEEDED, provider_ref=event.provider_ref
    )


def refund_failed(state: OrderState, event: e.RefundFailed) -> OrderState:
    refund = _found_refund(state, event.refund_id)
    return _with_refund(
        state, refund, event.at, status=RefundStatus.FAILED, failure_reason=event.reason
    )


def refund_retried(state: OrderState, event: e.RefundRetried) -> OrderState:
    refund = _found_refund(state, event.refund_id)
    return _with_refund(
        state,
        refund,
        event.at,
        status=RefundStatus.PENDING,
        provider_ref=None,
        failure_reason=None,
        attempt=refund.attempt + 1,
    )


def _found_payout(state: OrderState, payout_id: str) -> Payout:
    payout = state.payout(payout_id)
    if payout is None:
        raise ValueError(f"an event names payout {payout_id}, which the order does not have")
    return payout


def _found_refund(state: OrderState, refund_id: str) -> Refund:
    refund = state.refund(refund_id)
    if refund is None:
        raise ValueError(f"an event names refund {refund_id}, which the order does not have")
    return refund


def _with_paid_out(state: OrderState, change: int) -> OrderState:
    a = state.amounts
    return state.model_copy(
        update={"amounts": a.model_copy(update={"paid_out": a.paid_out + change})}
    )


def _with_payout(state: OrderState, payout: Payout, at: datetime, **changes: object) -> OrderState:
    updated = payout.model_copy(update={**changes, "updated_at": at})
    payouts = tuple(updated if p.id == payout.id else p for p in state.payouts)
    return state.model_copy(update={"payouts": payouts})


def _with_refund(state: OrderState, refund: Refund, at: datetime, **changes: object) -> OrderState:
    updated = refund.model_copy(update={**changes, "updated_at": at})
    refunds = tuple(updated if r.id == refund.id else r for r in state.refunds)
    return state.model_copy(update={"refunds": refunds})
