"""A stateful property test: random commands from every role, at random times, on one order.

Hypothesis drives the buyer, the supplier, the payment provider, a mediator, an admin, the
system's timers and parties that have nothing to do with the order, with random amounts, while
the clock moves on (sometimes straight to the next deadline). The payment provider also pays
too much or after the order has ended, and reports what the bank did with payouts and refunds
(in any order, twice, or contradicting itself). After every step the money invariants of
DESIGN 7.1 must hold, and the recorded stream must fold back into the same state.
"""

from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    DomainError,
    NotPermitted,
    OrderAlreadyExists,
    PayoutAlreadySettled,
    PayoutNotFound,
    PayoutNotPaid,
    RefundAlreadySettled,
    RefundNotFound,
)
from escrow_core.domain.order import (
    TERMINAL,
    NewIds,
    OrderState,
    PayoutStatus,
    RefundStatus,
    Status,
    allowed_actions,
    deadlines,
    decide,
    due_timer_commands,
    evolve,
    fold,
    next_deadline_at,
    next_timer_at,
)
from escrow_core.domain.policy import TimerPolicy
from escrow_core.domain.roles import SYSTEM, Actor, Role
from escrow_core.domain.terms import (
    DeadlineKind,
    DisputeKind,
    DisputeReason,
    ExtendableDeadline,
    LineItem,
    PaymentMethod,
    RefundReason,
    Retention,
    Tranche,
)

from .scenario import (
    ADMIN,
    ALL_ACTORS,
    BUYER,
    BUYER_ID,
    IDS,
    MEDIATOR,
    OTHER_BUYER,
    OTHER_SUPPLIER,
    PAYMENTS,
    SUPPLIER,
    SUPPLIER_ID,
    T0,
    open_dispute,
    pay,
)

WRONG_PARTIES = (OTHER_BUYER, OTHER_SUPPLIER)
TIMER_COMMANDS = (
    c.AutoCancelUnaccepted,
    c.AutoCancelUnpaid,
    c.MarkShipmentOverdue,
    c.AutoConfirmReceipt,
    c.AutoCompleteUndelivered,
    c.AutoEscalateDispute,
    c.MarkPaymentOverdue,
    c.AutoCancelOverdue,
    c.EndRetention,
)
AGENT_ID = "pty_agent"

# An amount relative to what the command is about (unpaid, held): exactly all of it, a part,
# one too many, nothing, a negative one, or any number at all.
PORTIONS = st.one_of(
    st.sampled_from(["all", "half", "one", "over", "zero", "negative"]),
    st.integers(1, 300_000),
)


# What each report does to a payout (refund) in each status, by DESIGN 7.1: the event it
# records, None for the same report again (a no-op), or the named refusal. A second "paid"
# with another provider_ref contradicts the first and is refused like any other.
Answer = type[e.Event] | type[DomainError] | None
P, R = PayoutStatus, RefundStatus
PAYOUT_MACHINE: dict[tuple[type[c.Command], PayoutStatus], Answer] = {
    (c.ReportPayoutPaid, P.PENDING): e.PayoutPaid,
    (c.ReportPayoutPaid, P.PAID): None,
    (c.ReportPayoutPaid, P.FAILED): PayoutAlreadySettled,
    (c.ReportPayoutPaid, P.RETURNED): PayoutAlreadySettled,
    (c.ReportPayoutFailed, P.PENDING): e.PayoutFailed,
    (c.ReportPayoutFailed, P.PAID): PayoutAlreadySettled,
    (c.ReportPayoutFailed, P.FAILED): None,
    (c.ReportPayoutFailed, P.RETURNED): PayoutAlreadySettled,
    (c.ReportPayoutReturned, P.PENDING): PayoutNotPaid,
    (c.ReportPayoutReturned, P.PAID): e.PayoutReturned,
    (c.ReportPayoutReturned, P.FAILED): PayoutNotPaid,
    (c.ReportPayoutReturned, P.RETURNED): None,
    (c.RetryPayout, P.PENDING): None,
    (c.RetryPayout, P.PAID): PayoutAlreadySettled,
    (c.RetryPayout, P.FAILED): e.PayoutRetried,
    (c.RetryPayout, P.RETURNED): e.PayoutRetried,
}
REFUND_MACHINE: dict[tuple[type[c.Command], RefundStatus], Answer] = {
    (c.ReportRefundSucceeded, R.PENDING): e.RefundSucceeded,
    (c.ReportRefundSucceeded, R.SUCCEEDED): None,
    (c.ReportRefundSucceeded, R.FAILED): RefundAlreadySettled,
    (c.ReportRefundFailed, R.PENDING): e.RefundFailed,
    (c.ReportRefundFailed, R.SUCCEEDED): RefundAlreadySettled,
    (c.ReportRefundFailed, R.FAILED): None,
    (c.RetryRefund, R.PENDING): None,
    (c.RetryRefund, R.SUCCEEDED): RefundAlreadySettled,
    (c.RetryRefund, R.FAILED): e.RefundRetried,
}
# The status each money-out event leaves its payout or refund in.
STATUS_AFTER: dict[type[e.Event], PayoutStatus | RefundStatus] = {
    e.PayoutPaid: P.PAID,
    e.PayoutFailed: P.FAILED,
    e.PayoutReturned: P.RETURNED,
    e.PayoutRetried: P.PENDING,
    e.RefundSucceeded: R.SUCCEEDED,
    e.RefundFailed: R.FAILED,
    e.RefundRetried: R.PENDING,
}
PAYOUT_REPORTS = (c.ReportPayoutPaid, c.ReportPayoutFailed, c.ReportPayoutReturned, c.RetryPayout)
REFUND_REPORTS = (c.ReportRefundSucceeded, c.ReportRefundFailed, c.RetryRefund)
# Who may report: the payment provider; a retry also an admin.
REPORTERS = {
    command: frozenset({Role.PAYMENTS, Role.ADMIN})
    if command in (c.RetryPayout, c.RetryRefund)
    else frozenset({Role.PAYMENTS})
    for command in (*PAYOUT_REPORTS, *REFUND_REPORTS)
}
# Refunds of money the order never took (they leave ``held`` alone).
UNEXPECTED = frozenset({RefundReason.OVERPAYMENT, RefundReason.ORDER_NOT_PAYABLE})
# What may still happen once the order has ended: messages, money that arrives anyway (and
# goes straight back), and what the bank does with the money already on its way out.
AFTER_THE_END = (
    e.MessagePosted,
    e.PaymentReceived,
    e.RefundIssued,
    *STATUS_AFTER,
)
BANK_REFS = ("bank_1", "bank_2")


def reports_of(
    kinds: tuple[type[c.Command], ...],
) -> st.SearchStrategy[list[tuple[type[c.Command], str]]]:
    """A few reports of these kinds, each with the bank's reference it would carry."""
    return st.lists(
        st.tuples(st.sampled_from(kinds), st.sampled_from(BANK_REFS)), min_size=1, max_size=6
    )


# Mostly the payment provider, often anybody at all (an admin may retry).
REPORTER = st.one_of(st.just(PAYMENTS), st.sampled_from(ALL_ACTORS))


def actors(*likely: Actor) -> st.SearchStrategy[Actor]:
    """Mostly the roles that may issue the command, often anybody at all."""
    return st.one_of(st.sampled_from(likely), st.sampled_from(ALL_ACTORS))


def amount_of(portion: str | int, base: int) -> int:
    if isinstance(portion, int):
        return portion
    return {
        "all": base,
        "half": base // 2,
        "one": 1,
        "over": base + 1,
        "zero": 0,
        "negative": -1,
    }[portion]


def half_even_fee(gross: int, fee_bps: int) -> int:
    """An oracle independent of fee_for: Python rounds a Fraction half to even."""
    return round(Fraction(gross * fee_bps, 10_000))


items_strategy = st.lists(
    st.builds(
        LineItem,
        sku=st.sampled_from(["A", "B", "C"]),
        quantity=st.integers(1, 5),
        unit_price=st.integers(1, 50_000),
    ),
    min_size=1,
    max_size=3,
).map(tuple)

# Where a run may start: placed, then after each of these commands (two payments).
MAIN_LINE: list[type[c.Command]] = [
    c.AcceptOrder,
    c.RecordPayment,
    c.RecordPayment,
    c.ShipOrder,
    c.ReportDelivery,
    c.OpenDispute,
    c.EscalateDispute,
    c.ResolveDispute,  # a release and a refund split over both payments: money out to report
]

# With a retention, half the runs take the line after receipt: confirmed, claimed, decided.
RETAINED_LINE: list[type[c.Command]] = [
    *MAIN_LINE[:5],
    c.ConfirmReceipt,
    c.MakeClaim,
    c.EscalateDispute,
    c.ResolveDispute,
]

policy_strategy = st.builds(
    TimerPolicy,
    accept_days=st.integers(1, 30),
    pay_days=st.integers(1, 60),
    negotiation_days=st.integers(0, 5),
    auto_escalate_days=st.integers(1, 10),
    undelivered_complete_days=st.integers(1, 60),
)


class OrderMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.events: list[e.AnyEvent] = []
        self.state: OrderState | None = None
        self.terminal_at: int | None = None  # how many events there were when it ended
        self.paused: timedelta | None = None  # what the order's own timer had left at dispute
        self.refusal: DomainError | None = None  # why the last command was refused
        # Money going out, as its events tell it (kept as they are recorded, so the invariants
        # need not read the whole stream at every step).
        self.created: dict[str, int] = {}  # payout or refund id -> its amount when created
        self.payout_ids: list[str] = []
        self.refund_ids: list[str] = []
        self.told: dict[str, PayoutStatus | RefundStatus] = {}  # the status its last report left
        self.retries: dict[str, int] = {}
        self.untracked_out = 0  # nets of releases from before 1.1 (none generated here)
        self.untracked_back = 0  # refunds from before 1.1, likewise

    # --- the harness: the one place commands are decided and events recorded ------------------
    def apply(self, command: c.Command) -> list[e.AnyEvent]:
        """Decide ``command`` now; record its events, or keep its refusal in ``self.refusal``."""
        state, recorded = self.state, len(self.events)
        snapshot = state.model_dump() if state is not None else None
        # Each decision gets ids of its own, as the service mints random ones.
        ids = NewIds(f"d{recorded}x")
        self.refusal = None
        try:
            new_events = decide(state, command, self.now, ids)
        except DomainError as error:
            self.refusal = error
        if self.refusal is not None:
            self._check_refusal(command, self.refusal)
            # A refused command appends nothing and leaves the order as it was.
            assert self.state is state
            assert len(self.events) == recorded
            assert (state.model_dump() if state is not None else None) == snapshot
            return []
        assert command.actor not in WRONG_PARTIES
        assert decide(state, command, self.now, ids) == new_events  # pure: same input, same answer
        if not new_events:
            # Only a report already carried out succeeds by doing nothing: a payment retried by
            # the provider with the same reference and amount, or a bank report given again
            # (its rule checks which).
            assert state is not None
            if isinstance(command, c.RecordPayment):
                assert state.payment_amount(command.provider_ref) == command.amount
            else:
                assert isinstance(command, PAYOUT_REPORTS + REFUND_REPORTS), command
        for event in new_events:
            assert event.at == self.now
            assert e.event_from_data(event.type, e.event_to_data(event)) == event
            if isinstance(event, e.DisputeOpened) and event.kind is DisputeKind.DISPUTE:
                running = self._own_timer()
                assert running is not None
                self.paused = max(running - self.now, timedelta(0))
            if isinstance(event, e.DisputeOpened) and event.kind is DisputeKind.CLAIM:
                # A claim runs over the retained money only, within the window.
                assert self.order.status is Status.RETAINED
                assert self.order.retention_ends_at is not None
                assert self.now < self.order.retention_ends_at
                assert 0 <= event.requested_refund <= self.order.amounts.retained
            withdrawn = self.order.dispute if self.state is not None else None
            if isinstance(event, e.RefundIssued):
                self._check_refund_split(event)
            if isinstance(event, e.FundsReleased):
                # The net to the supplier, the agency fee to the agent; none for nothing.
                assert event.payouts is not None
                expected = [(SUPPLIER_ID, event.net), (AGENT_ID, event.agency_fee)]
                assert [(p.party_id, p.amount) for p in event.payouts] == [
                    (party, amount) for party, amount in expected if amount
                ]
                assert min(event.fee, event.agency_fee, event.net) >= 0
            before = self.state
            before_dumped = None if before is None else before.model_dump()
            self.state = evolve(self.state, event)
            # evolve is pure: the state before is untouched, the one after is a new object
            assert self.state is not before
            assert before is None or before.model_dump() == before_dumped
            self.events.append(event)
            self._tell_money_out(event)
            if isinstance(event, e.DisputeWithdrawn) and withdrawn is not None:
                if withdrawn.kind is DisputeKind.CLAIM:
                    # Back to retained, the window's deadline unchanged.
                    assert self.order.status is Status.RETAINED
                    assert self.order.amounts.retained == self.order.amounts.held > 0
                else:
                    # The order's own timer resumes with exactly the time it had left.
                    assert self.paused is not None
                    assert self._own_timer() == self.now + self.paused
        if state is not None:
            self._check_refund_reasons(state, command, new_events)
        if self.terminal_at is None and self.order.status in TERMINAL:
            self.terminal_at = len(self.events)
        return new_events

    def _tell_money_out(self, event: e.AnyEvent) -> None:
        if isinstance(event, e.FundsReleased):
            if event.payouts is None:
                self.untracked_out += event.net
            for payout in event.payouts or ():
                assert payout.id not in self.created  # ids are never reused
                self.created[payout.id] = payout.amount
                self.payout_ids.append(payout.id)
                self.told[payout.id] = PayoutStatus.PENDING
        elif isinstance(event, e.RefundIssued):
            if event.refunds is None:
                self.untracked_back += event.amount
            for refund in event.refunds or ():
                assert refund.id not in self.created
                self.created[refund.id] = refund.amount
                self.refund_ids.append(refund.id)
                self.told[refund.id] = RefundStatus.PENDING
        elif type(event) in STATUS_AFTER:
            object_id = getattr(event, "payout_id", None) or getattr(event, "refund_id", None)
            assert object_id in self.created
            self.told[object_id] = STATUS_AFTER[type(event)]
            if isinstance(event, e.PayoutRetried | e.RefundRetried):
                self.retries[object_id] = self.retries.get(object_id, 0) + 1

    def _check_refund_split(self, event: e.RefundIssued) -> None:
        """A refund goes back over the payments newest first, each up to what it has not had
        back: every part but the last empties its payment, and a newer payment it skips had
        nothing left."""
        order = self.order  # as it stands just before this event
        assert event.refunds is not None
        assert event.amount > 0
        assert sum(part.amount for part in event.refunds) == event.amount
        newest_first = [ref for ref, _ in reversed(order.payments)]
        left = {ref: amount - order.refunded_through(ref) for ref, amount in order.payments}
        used = [part.payment_provider_ref for part in event.refunds]
        assert used == [ref for ref in newest_first if ref in used]  # newest first, each once
        skipped = newest_first[: newest_first.index(used[-1])]
        assert all(left[ref] == 0 for ref in skipped if ref not in used)
        for part in event.refunds[:-1]:
            assert part.amount == left[part.payment_provider_ref]
        assert 0 < event.refunds[-1].amount <= left[used[-1]]

    def _check_refund_reasons(
        self, before: OrderState, command: c.Command, new_events: list[e.AnyEvent]
    ) -> None:
        """Why money went back. A payment the order cannot take is never refused: what is owed
        is held, the rest refunded at once, and a payment that is all excess (an order paid
        up, not yet accepted, or ended) changes nothing but the money in and out."""
        refunds = [ev for ev in new_events if isinstance(ev, e.RefundIssued)]
        if not isinstance(command, c.RecordPayment):
            cancelled = any(isinstance(ev, e.OrderCancelled) for ev in new_events)
            reason = RefundReason.CANCELLATION if cancelled else RefundReason.DISPUTE
            assert all(ev.reason is reason for ev in refunds)
            return
        if not new_events:
            return
        payable = before.status in (Status.ACCEPTED, Status.PARTIALLY_PAID)
        owed = min(command.amount, before.unpaid) if payable else 0
        excess = command.amount - owed
        not_payable = before.status is Status.PLACED or before.status in TERMINAL
        reason = RefundReason.ORDER_NOT_PAYABLE if not_payable else RefundReason.OVERPAYMENT
        assert [(ev.amount, ev.reason) for ev in refunds] == ([(excess, reason)] if excess else [])
        held = [ev.amount for ev in new_events if isinstance(ev, e.FundsHeld)]
        assert held == ([owed] if owed else [])
        after = self.order
        assert after.amounts.paid == before.amounts.paid + command.amount
        assert after.unexpected == before.unexpected + excess
        if not owed:
            assert after.status is before.status
            assert after.amounts.held == before.amounts.held
            assert after.funded == before.funded

    @staticmethod
    def _check_refusal(command: c.Command, error: DomainError) -> None:
        assert error.code
        assert error.code == type(error).code
        if command.actor in WRONG_PARTIES:
            assert isinstance(error, NotPermitted), error
        if (command.actor == SYSTEM) != isinstance(command, c.TimerCommand):
            assert isinstance(error, NotPermitted), error

    def _own_timer(self) -> datetime | None:
        """The order's own running timer: inspection once delivered, else auto-complete."""
        return self.order.inspection_ends_at or self.order.auto_complete_at

    @property
    def order(self) -> OrderState:
        assert self.state is not None
        return self.state

    # --- placing ------------------------------------------------------------------------------
    @initialize(
        items=items_strategy,
        shipping_fee=st.integers(0, 5_000),
        deposit_share=st.none() | st.fractions(0, 1),
        fee_bps=st.sampled_from([0, 1, 50, 250, 5_000, 10_000]) | st.integers(0, 10_000),
        inspection_days=st.integers(1, 30),
        ship_in_days=st.integers(0, 60),
        policy=policy_strategy,
        stage=st.integers(0, len(MAIN_LINE)),
        agency_fee_bps=st.none() | st.sampled_from([0, 1, 150, 2_000]) | st.integers(0, 2_000),
        balance_due_in_days=st.none() | st.integers(1, 60),
        retention=st.none()
        | st.builds(Retention, percent=st.integers(1, 30), days=st.integers(1, 90)),
        after_receipt=st.booleans(),
    )
    def place(
        self,
        items: tuple[LineItem, ...],
        shipping_fee: int,
        deposit_share: Fraction | None,
        fee_bps: int,
        inspection_days: int,
        ship_in_days: int,
        policy: TimerPolicy,
        stage: int,
        agency_fee_bps: int | None,
        balance_due_in_days: int | None,
        retention: Retention | None,
        after_receipt: bool,
    ) -> None:
        total = sum(item.quantity * item.unit_price for item in items) + shipping_fee
        schedule = None
        deposit = int(total * deposit_share) if deposit_share is not None else 0
        ship_by = date(2025, 3, 3) + timedelta(days=ship_in_days)
        # The balance is due by a date after placement and at most ship_by (default ship_by).
        due_by = None
        if balance_due_in_days is not None and ship_in_days >= 1:
            due_by = date(2025, 3, 3) + timedelta(days=min(balance_due_in_days, ship_in_days))
        if 0 < deposit < total:
            schedule = (
                Tranche(name="deposit", amount=deposit),
                Tranche(name="balance", amount=total - deposit, due_by=due_by),
            )
        # An agent places it for the buyer, sometimes, with a fee the platform's leaves room for.
        agency = {}
        if agency_fee_bps is not None:
            agency = {
                "agency_id": AGENT_ID,
                "agency_fee_bps": min(agency_fee_bps, 10_000 - fee_bps),
            }
        command = c.PlaceOrder(
            actor=BUYER,
            buyer_id=BUYER_ID,
            supplier_id=SUPPLIER_ID,
            supplier_trade_assurance=True,
            currency="EUR",
            currency_exponent=2,
            items=items,
            shipping_fee=shipping_fee,
            incoterm="DAP",
            quality_terms="as sampled",
            ship_by=ship_by,
            inspection_days=inspection_days,
            payment_schedule=schedule,
            fee_bps=fee_bps,
            policy=policy,
            **agency,
            retention=retention,
        )
        assert self.apply(command) != []
        assert self.order.terms.total == total
        # Start the random walk from anywhere on the main line, not only from "placed".
        line = RETAINED_LINE if retention is not None and after_receipt else MAIN_LINE
        for step in line[:stage]:
            if step is c.MakeClaim and self.order.status is not Status.RETAINED:
                break  # nothing was left to retain (a tiny total): the order completed
            # (a claim comes within the hour: the shortest window is a day)
            self.now += timedelta(hours=1) if step is c.MakeClaim else timedelta(days=1)
            if step is c.EscalateDispute:
                self.now += timedelta(days=policy.negotiation_days)
            next_command = self._main_line_command(step)
            if next_command is not None:
                assert self.apply(next_command) != [], next_command

    def _main_line_command(self, step: type[c.Command]) -> c.Command | None:
        order = self.order
        if step is c.RecordPayment:
            if order.unpaid == 0:
                return None  # a total of 1 is paid in one go
            amount = max(order.unpaid // 2, 1) if order.amounts.paid == 0 else order.unpaid
            return pay(amount, ref=f"main_{order.version}")
        if step is c.ShipOrder:
            return c.ShipOrder(actor=SUPPLIER, carrier="DHL", tracking_number="JD1")
        if step is c.OpenDispute:
            return open_dispute(refund=order.amounts.held // 3)
        if step is c.ResolveDispute:
            return c.ResolveDispute(actor=MEDIATOR, refund_amount=order.amounts.held * 2 // 3)
        if step is c.MakeClaim:
            return c.MakeClaim(
                actor=BUYER, reason=DisputeReason.QUALITY, requested_refund=order.amounts.retained
            )
        if step is c.ConfirmReceipt:
            return c.ConfirmReceipt(actor=BUYER)
        actor = BUYER if step is c.EscalateDispute else SUPPLIER
        return step(actor=actor)

    @rule()
    def place_again(self) -> None:
        try:
            decide(self.state, c.PlaceOrder.model_validate(self._placed_terms()), self.now, IDS)
        except OrderAlreadyExists:
            return
        raise AssertionError("an order was placed twice")

    def _placed_terms(self) -> dict[str, Any]:
        terms = self.order.terms
        return {
            **terms.model_dump(exclude={"total"}),
            "actor": BUYER,
            "supplier_trade_assurance": True,
        }

    # --- time ---------------------------------------------------------------------------------
    @rule(hours=st.integers(0, 24 * 3) | st.integers(0, 24 * 40))
    def advance_time(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @rule(late_by=st.sampled_from([timedelta(0), timedelta(seconds=1), timedelta(hours=5)]))
    def jump_to_next_deadline(self, late_by: timedelta) -> None:
        next_at = next_deadline_at(self.order)
        if next_at is not None and next_at + late_by > self.now:
            self.now = next_at + late_by

    # --- the parties --------------------------------------------------------------------------
    @rule(actor=actors(SUPPLIER))
    def accept(self, actor: Actor) -> None:
        self.apply(c.AcceptOrder(actor=actor))

    @rule(
        actor=actors(PAYMENTS),
        portion=PORTIONS,
        ref=st.sampled_from(["pay_a", "pay_b", "pay_c", "pay_d"]),
        method=st.sampled_from(PaymentMethod),
    )
    def pay(self, actor: Actor, portion: str | int, ref: str, method: PaymentMethod) -> None:
        amount = amount_of(portion, self.order.unpaid)
        self.apply(c.RecordPayment(actor=actor, amount=amount, method=method, provider_ref=ref))

    @rule(actor=actors(SUPPLIER))
    def ship(self, actor: Actor) -> None:
        self.apply(c.ShipOrder(actor=actor, carrier="DHL", tracking_number="JD1"))

    @rule(
        actor=actors(SUPPLIER, PAYMENTS, ADMIN),
        hours_ago=st.none() | st.integers(-2, 24 * 20),
    )
    def deliver(self, actor: Actor, hours_ago: int | None) -> None:
        at = None if hours_ago is None else self.now - timedelta(hours=hours_ago)
        self.apply(c.ReportDelivery(actor=actor, delivered_at=at))

    @rule(actor=actors(BUYER))
    def confirm_receipt(self, actor: Actor) -> None:
        self.apply(c.ConfirmReceipt(actor=actor))

    @rule(
        actor=actors(BUYER, SUPPLIER),
        deadline=st.sampled_from(ExtendableDeadline),
        days=st.integers(-1, 100),
    )
    def extend(self, actor: Actor, deadline: ExtendableDeadline, days: int) -> None:
        self.apply(c.ExtendDeadline(actor=actor, deadline=deadline, days=days))

    @rule(actor=actors(BUYER, SUPPLIER, ADMIN))
    def cancel(self, actor: Actor) -> None:
        self.apply(c.CancelOrder(actor=actor, reason="random"))

    @rule(actor=actors(BUYER, SUPPLIER, MEDIATOR), body=st.sampled_from(["hello", " "]))
    def message(self, actor: Actor, body: str) -> None:
        self.apply(c.PostMessage(actor=actor, body=body))

    @rule(actor=actors(BUYER), portion=PORTIONS, reason=st.sampled_from(DisputeReason))
    def open_dispute(self, actor: Actor, portion: str | int, reason: DisputeReason) -> None:
        refund = amount_of(portion, self.order.amounts.held)
        self.apply(c.OpenDispute(actor=actor, reason=reason, requested_refund=refund))

    @rule(actor=actors(BUYER, SUPPLIER), portion=PORTIONS)
    def make_offer(self, actor: Actor, portion: str | int) -> None:
        refund = amount_of(portion, self.order.amounts.held)
        self.apply(c.MakeOffer(actor=actor, refund_amount=refund))

    @rule(actor=actors(BUYER, SUPPLIER))
    def accept_offer(self, actor: Actor) -> None:
        self.apply(c.AcceptOffer(actor=actor))

    @rule(actor=actors(BUYER, SUPPLIER))
    def escalate(self, actor: Actor) -> None:
        self.apply(c.EscalateDispute(actor=actor))

    @rule(actor=actors(MEDIATOR, ADMIN), portion=PORTIONS)
    def resolve(self, actor: Actor, portion: str | int) -> None:
        refund = amount_of(portion, self.order.amounts.held)
        self.apply(c.ResolveDispute(actor=actor, refund_amount=refund, note="decided"))

    @rule(actor=actors(BUYER), portion=PORTIONS, reason=st.sampled_from(DisputeReason))
    def claim(self, actor: Actor, portion: str | int, reason: DisputeReason) -> None:
        refund = amount_of(portion, self.order.amounts.retained)
        self.apply(c.MakeClaim(actor=actor, reason=reason, requested_refund=refund))

    @rule(actor=actors(BUYER))
    def withdraw(self, actor: Actor) -> None:
        self.apply(c.WithdrawDispute(actor=actor))

    # --- milestones (DESIGN 7.2) --------------------------------------------------------------
    @rule(actor=actors(BUYER), portion=PORTIONS)
    def release_milestone(self, actor: Actor, portion: str | int) -> None:
        before = self.order
        amount = amount_of(
            portion, before.amounts.held // 3 if portion == "half" else before.amounts.held
        )
        events = self.apply(c.ReleaseMilestone(actor=actor, amount=amount, note="milestone"))
        if events:
            # Part of what is held goes out, the status stays, nothing above what is held.
            assert 1 <= amount <= before.amounts.held
            assert [type(ev) for ev in events] == [e.MilestoneReleased, e.FundsReleased]
            assert self.order.status is before.status
            assert self.order.amounts.held == before.amounts.held - amount

    @rule(actor=actors(BUYER), portion=PORTIONS)
    @precondition(lambda self: self.order.amounts.held > 0)
    def release_milestone_2(self, actor: Actor, portion: str | int) -> None:
        self.release_milestone(actor, portion)

    # --- money arriving unasked, and what the bank does with money going out -----------------
    @rule(extra=st.integers(1, 3) | st.integers(1, 200_000))
    def pay_unexpected(self, extra: int) -> None:
        """Too much, or after the order has ended (or before it can take money): never
        refused, the excess refunded at once (the harness checks how)."""
        order = self.order
        payable = order.status in (Status.ACCEPTED, Status.PARTIALLY_PAID)
        amount = order.unpaid + extra if payable else extra
        ref = f"extra_{order.version}"
        events = self.apply(pay(amount, ref=ref))
        assert events
        assert isinstance(events[0], e.PaymentReceived)
        assert [ev.amount for ev in events if isinstance(ev, e.RefundIssued)] != []

    @rule(actor=REPORTER, pick=st.integers(0, 7), reports=reports_of(PAYOUT_REPORTS))
    @precondition(lambda self: self.order.payouts)
    def report_payouts(
        self, actor: Actor, pick: int, reports: list[tuple[type[c.Command], str]]
    ) -> None:
        """A few reports on one payout, in any order (the same twice, or contradicting)."""
        payouts = self.order.payouts
        # One the order has (by position, as the order stands), sometimes an unknown one.
        payout_id = payouts[pick % len(payouts)].id if pick < 7 else "po_unknown"
        for report, bank_ref in reports:
            details = {
                c.ReportPayoutPaid: {"provider_ref": bank_ref},
                c.ReportPayoutFailed: {"reason": "account closed"},
                c.ReportPayoutReturned: {"reason": "returned by the bank"},
                c.RetryPayout: {},
            }[report]
            payout = self.order.payout(payout_id)
            if payout is None:
                expected: Answer = PayoutNotFound
            else:
                expected = PAYOUT_MACHINE[(report, payout.status)]
                if report is c.ReportPayoutPaid and expected is None:
                    # Paid again: the same transfer is a no-op, another one contradicts it.
                    expected = None if payout.provider_ref == bank_ref else PayoutAlreadySettled
            self._check_report(report(actor=actor, payout_id=payout_id, **details), expected)

    @rule(actor=REPORTER, pick=st.integers(0, 7), reports=reports_of(REFUND_REPORTS))
    @precondition(lambda self: self.order.refunds)
    def report_refunds(
        self, actor: Actor, pick: int, reports: list[tuple[type[c.Command], str]]
    ) -> None:
        """A few reports on one refund, in any order (the same twice, or contradicting)."""
        refunds = self.order.refunds
        refund_id = refunds[pick % len(refunds)].id if pick < 7 else "rf_unknown"
        for report, bank_ref in reports:
            details = {
                c.ReportRefundSucceeded: {"provider_ref": bank_ref},
                c.ReportRefundFailed: {"reason": "card expired"},
                c.RetryRefund: {},
            }[report]
            refund = self.order.refund(refund_id)
            if refund is None:
                expected: Answer = RefundNotFound
            else:
                expected = REFUND_MACHINE[(report, refund.status)]
                if report is c.ReportRefundSucceeded and expected is None:
                    expected = None if refund.provider_ref == bank_ref else RefundAlreadySettled
            self._check_report(report(actor=actor, refund_id=refund_id, **details), expected)

    # More names for the same reports weigh them more, once there is money going out.
    @rule(actor=REPORTER, pick=st.integers(0, 7), reports=reports_of(PAYOUT_REPORTS))
    @precondition(lambda self: self.order.payouts)
    def report_payouts_2(
        self, actor: Actor, pick: int, reports: list[tuple[type[c.Command], str]]
    ) -> None:
        self.report_payouts(actor, pick, reports)

    @rule(actor=REPORTER, pick=st.integers(0, 7), reports=reports_of(REFUND_REPORTS))
    @precondition(lambda self: self.order.refunds)
    def report_refunds_2(
        self, actor: Actor, pick: int, reports: list[tuple[type[c.Command], str]]
    ) -> None:
        self.report_refunds(actor, pick, reports)

    @rule(actor=REPORTER, pick=st.integers(0, 7), reports=reports_of(PAYOUT_REPORTS))
    @precondition(lambda self: self.order.payouts)
    def report_payouts_3(
        self, actor: Actor, pick: int, reports: list[tuple[type[c.Command], str]]
    ) -> None:
        self.report_payouts(actor, pick, reports)

    def _check_report(self, command: c.Command, expected: Answer) -> None:
        """The report does what the table says; a report that did something, given again, is a
        no-op; and only the payment provider (or an admin, for a retry) may report at all."""
        status_before = self.order.status
        if command.actor.role not in REPORTERS[type(command)]:
            expected = NotPermitted
        events = self.apply(command)
        if expected is None:
            assert events == [], events
        elif issubclass(expected, DomainError):
            assert type(self.refusal) is expected, (self.refusal, expected)
        else:
            assert [type(ev) for ev in events] == [expected]
            object_id = getattr(command, "payout_id", None) or getattr(command, "refund_id", None)
            assert object_id in (
                getattr(events[0], "payout_id", None),
                getattr(events[0], "refund_id", None),
            )
            found = self.order.payout(object_id) or self.order.refund(object_id)
            assert found is not None
            assert found.status is STATUS_AFTER[expected]
            assert self.apply(command) == [], "the same report again must be a no-op"
        assert self.order.status is status_before  # money going out never moves the order

    # --- a push along the main line, so random runs get past payment and into disputes -------
    @rule(choice=st.integers(0, 5), portion=PORTIONS)
    def move_the_order_on(self, choice: int, portion: str | int) -> None:
        self._move_on(choice, portion)

    # The same push under more names weighs it more: hypothesis picks rules uniformly.
    @rule(choice=st.integers(0, 5), portion=PORTIONS)
    def move_the_order_on_2(self, choice: int, portion: str | int) -> None:
        self._move_on(choice, portion)

    @rule(choice=st.integers(0, 5), portion=PORTIONS)
    def move_the_order_on_3(self, choice: int, portion: str | int) -> None:
        self._move_on(choice, portion)

    @rule(choice=st.integers(0, 5), portion=PORTIONS)
    def move_the_order_on_4(self, choice: int, portion: str | int) -> None:
        self._move_on(choice, portion)

    def _move_on(self, choice: int, portion: str | int) -> None:
        order, held = self.order, self.order.amounts.held
        refund = amount_of(portion, held)
        status = order.status
        if status is Status.PLACED:
            self.apply(c.AcceptOrder(actor=SUPPLIER))
        elif status is Status.PARTIALLY_PAID and choice == 5 and order.amounts.held:
            self.apply(c.ReleaseMilestone(actor=BUYER, amount=max(order.amounts.held // 2, 1)))
        elif status in (Status.ACCEPTED, Status.PARTIALLY_PAID):
            if choice < 2:
                amount = order.unpaid
            elif choice == 2:
                amount = max(order.unpaid // 2, 1)
            else:
                amount = amount_of(portion, order.unpaid)  # maybe too much, or nothing
            ref = f"pay_{len(order.payments)}"
            self.apply(
                c.RecordPayment(
                    actor=PAYMENTS, amount=amount, method=PaymentMethod.CARD, provider_ref=ref
                )
            )
        elif status is Status.HELD and choice >= 4:
            # Before shipment the buyer may cancel only once overdue; the supplier always.
            self.apply(c.CancelOrder(actor=BUYER if choice == 4 else SUPPLIER, reason="late"))
        elif status is Status.HELD:
            self.apply(c.ShipOrder(actor=SUPPLIER, carrier="DHL", tracking_number="JD1"))
        elif status in (Status.SHIPPED, Status.DELIVERED):
            self.apply(
                [
                    c.ReportDelivery(actor=SUPPLIER),
                    c.OpenDispute(
                        actor=BUYER, reason=DisputeReason.QUALITY, requested_refund=refund
                    ),
                    c.OpenDispute(actor=BUYER, reason=DisputeReason.OTHER, requested_refund=refund),
                    c.ExtendDeadline(
                        actor=SUPPLIER, deadline=ExtendableDeadline.INSPECTION, days=3
                    ),
                    c.ExtendDeadline(actor=BUYER, deadline=ExtendableDeadline.INSPECTION, days=9),
                    c.ConfirmReceipt(actor=BUYER),
                ][choice]
            )
        elif status is Status.RETAINED:
            claimed = amount_of(portion, order.amounts.retained)
            if choice < 4:
                self.apply(
                    c.MakeClaim(actor=BUYER, reason=DisputeReason.QUALITY, requested_refund=claimed)
                )
            else:
                self.jump_to_next_deadline(timedelta(seconds=choice - 4))
                self.fire_due_timers()
        elif status is Status.DISPUTED:
            self.apply(
                [
                    c.MakeOffer(actor=BUYER, refund_amount=refund),
                    c.MakeOffer(actor=SUPPLIER, refund_amount=refund),
                    c.AcceptOffer(actor=SUPPLIER if refund % 2 else BUYER),
                    c.EscalateDispute(actor=SUPPLIER if refund % 2 else BUYER),
                    c.ResolveDispute(actor=MEDIATOR, refund_amount=refund),
                    c.WithdrawDispute(actor=BUYER),
                ][choice]
            )

    # --- the timers ---------------------------------------------------------------------------
    @rule(command=st.sampled_from(TIMER_COMMANDS), actor=actors(SYSTEM))
    def fire_a_timer(self, command: type[c.TimerCommand], actor: Actor) -> None:
        self.apply(command(actor=actor))

    @rule()
    def fire_due_timers(self) -> None:
        due = due_timer_commands(self.order, self.now)
        if due:
            # What the worker is told to fire must be accepted (the first one; it may make the
            # rest stale, and then they are re-read next time).
            assert self.apply(due[0]) != []

    @rule(actor=st.sampled_from(ALL_ACTORS))
    def ask_allowed_actions(self, actor: Actor) -> None:
        actions = allowed_actions(self.order, actor, self.now)
        if actor in WRONG_PARTIES or actor == SYSTEM:
            assert actions == []
        if self.order.status in TERMINAL:
            assert set(actions) <= {"message", "update_metadata"}

    # --- after every step ---------------------------------------------------------------------
    @invariant()
    def money_adds_up(self) -> None:
        order = self.order
        a, total = order.amounts, order.terms.total
        assert a.paid == a.held + a.released + a.refunded
        assert min(a.paid, a.held, a.released, a.refunded, a.fees, a.paid_out) >= 0
        assert min(a.refunds_completed, a.agency_fees, a.retained, order.unexpected) >= 0
        # Unexpected money is refunded as it comes in: nothing is held beyond the total.
        assert order.funded <= total
        assert a.held + a.released <= total
        assert order.unexpected <= a.refunded
        assert a.fees <= a.released
        if order.status in TERMINAL:
            assert a.held == 0
        # The retained money is part of what is held, and only while the window (or a claim
        # on it) is open.
        assert a.retained <= a.held
        claim_open = order.dispute is not None and order.dispute.kind is DisputeKind.CLAIM
        if order.status is not Status.RETAINED and not (
            order.status is Status.DISPUTED and claim_open
        ):
            assert a.retained == 0

    @invariant()
    def amounts_are_the_sums_of_the_events(self) -> None:
        order = self.order
        a = order.amounts
        assert a.paid == sum(ev.amount for ev in self.events if isinstance(ev, e.PaymentReceived))
        releases = [ev for ev in self.events if isinstance(ev, e.FundsReleased)]
        assert a.released == sum(ev.gross for ev in releases)
        assert a.fees == sum(ev.fee for ev in releases)
        refunds = [ev for ev in self.events if isinstance(ev, e.RefundIssued)]
        assert a.refunded == sum(ev.amount for ev in refunds)
        assert order.unexpected == sum(ev.amount for ev in refunds if ev.reason in UNEXPECTED)
        assert a.agency_fees == sum(ev.agency_fee for ev in releases)
        # Fees are cumulative per order: the platform's is the fee on all released so far,
        # however it was split; the agency's never more than its own (it may wait a unit).
        assert a.fees == half_even_fee(a.released, order.terms.fee_bps)
        assert a.agency_fees <= half_even_fee(a.released, order.terms.agency_fee_bps)
        assert a.fees + a.agency_fees <= a.released
        for release in releases:
            assert release.net == release.gross - release.fee - release.agency_fee
            assert release.gross > 0

    @invariant()
    def money_out_adds_up(self) -> None:
        """DESIGN 7.1: payouts in any status + fees + agency fees = released; refunds in any
        status = refunded; what is paid out and refunded counts only what the bank did. A
        release or refund from before 1.1 (None: none generated here) counts as done."""
        order = self.order
        a = order.amounts
        untracked_out, untracked_back = self.untracked_out, self.untracked_back
        payouts, refunds = order.payouts, order.refunds
        # The agent's payouts are its agency fees: the rest goes to the supplier.
        to_agent = sum(p.amount for p in payouts if p.party_id == AGENT_ID)
        assert to_agent == a.agency_fees
        to_supplier = sum(p.amount for p in payouts) - to_agent
        assert to_supplier + a.fees + a.agency_fees + untracked_out == a.released
        assert sum(r.amount for r in refunds) + untracked_back == a.refunded
        paid = sum(p.amount for p in payouts if p.status is PayoutStatus.PAID)
        assert a.paid_out == paid + untracked_out
        succeeded = sum(r.amount for r in refunds if r.status is RefundStatus.SUCCEEDED)
        assert a.refunds_completed == succeeded + untracked_back
        # A refund never takes back more through a payment than that payment brought.
        for provider_ref, amount in order.payments:
            through = sum(r.amount for r in refunds if r.payment_provider_ref == provider_ref)
            assert through <= amount
        assert {r.payment_provider_ref for r in refunds} <= {ref for ref, _ in order.payments}

    @invariant()
    def payouts_and_refunds_are_what_their_events_say(self) -> None:
        """Each was created once, with an amount that never changes, and is in the status its
        last report left it in, on the attempt its retries count to."""
        order = self.order
        # In order of creation, none lost, none twice.
        assert [p.id for p in order.payouts] == self.payout_ids
        assert [r.id for r in order.refunds] == self.refund_ids
        for o in (*order.payouts, *order.refunds):
            assert o.amount == self.created[o.id] > 0
            assert o.status is self.told[o.id]
            assert o.attempt == 1 + self.retries.get(o.id, 0)

    @invariant()
    def status_agrees_with_the_money(self) -> None:
        order = self.order
        a, total, status = order.amounts, order.terms.total, order.status
        funded, refunded = order.funded, a.refunded - order.unexpected  # toward the total
        if status is Status.PLACED or status is Status.ACCEPTED:
            assert funded == 0
        elif status is Status.PARTIALLY_PAID:
            assert 0 < funded < total
            assert a.held + a.released == funded
        elif (
            status is Status.DISPUTED and order.dispute and order.dispute.kind is DisputeKind.CLAIM
        ):
            assert a.held == a.retained > 0
            assert a.released + a.held == funded == total
        elif status in (Status.HELD, Status.SHIPPED, Status.DELIVERED, Status.DISPUTED):
            assert a.held + a.released == funded == total
        elif status is Status.RETAINED:
            assert a.held == a.retained > 0
            assert a.released + a.held == funded == total
            retention = order.terms.retention
            assert retention is not None
            # At most what was held at confirmation: milestones may have released into the share.
            milestones = [x for x in self.events if isinstance(x, e.MilestoneReleased)]
            before_receipt = sum(x.amount for x in milestones)
            share = half_even_fee(total, retention.percent * 100)
            assert a.retained == min(share, total - before_receipt)
        elif status is Status.COMPLETED:
            assert a.released == funded == total
        elif status is Status.REFUNDED:
            assert refunded == funded == total
            assert a.released == 0
        elif status is Status.SETTLED:
            assert 0 < refunded < total
            assert a.released + refunded == funded == total
        elif status is Status.CANCELLED:
            # Money released by a milestone stays released; everything else went back.
            assert a.refunded + a.released == a.paid
            if a.released:
                assert any(isinstance(ev, e.MilestoneReleased) for ev in self.events)

    @invariant()
    def the_stream_is_the_truth(self) -> None:
        assert self.order.version == len(self.events)
        assert [type(ev) for ev in self.events[:1]] == [e.OrderPlaced]
        assert fold(self.events) == self.order
        if self.terminal_at is not None:
            after = self.events[self.terminal_at :]
            assert all(isinstance(ev, AFTER_THE_END) for ev in after)
            assert all(
                ev.reason is RefundReason.ORDER_NOT_PAYABLE
                for ev in after
                if isinstance(ev, e.RefundIssued)
            )
            assert self.order.status in TERMINAL

    @invariant()
    def a_provider_ref_is_recorded_once(self) -> None:
        refs = [ev.provider_ref for ev in self.events if isinstance(ev, e.PaymentReceived)]
        assert len(refs) == len(set(refs))

    @invariant()
    def the_orders_own_timer_runs_whenever_it_should(self) -> None:
        kinds = {d.kind for d in deadlines(self.order)}
        status = self.order.status
        if status is Status.PLACED:
            assert DeadlineKind.ACCEPT_BY in kinds
        first_tranche = self.order.terms.payment_schedule[0].amount
        if status in (Status.ACCEPTED, Status.PARTIALLY_PAID):
            assert (DeadlineKind.PAY_BY in kinds) == (self.order.funded < first_tranche)
        if status is Status.SHIPPED:
            assert kinds == {DeadlineKind.AUTO_COMPLETE_AT}
        if status is Status.DELIVERED:
            assert kinds == {DeadlineKind.INSPECTION_ENDS}
        if status is Status.HELD:
            assert kinds == (set() if self.order.shipment_overdue else {DeadlineKind.SHIP_BY})
        if status is Status.RETAINED:
            assert kinds == {DeadlineKind.RETENTION_ENDS}
        if status in TERMINAL:
            assert kinds == set()
        self._check_tranches_due(kinds)

    def _check_tranches_due(self, kinds: set[DeadlineKind]) -> None:
        """DESIGN 7.2: while money is owed, the next unpaid tranche after the first is due until
        one is overdue; then the auto-cancel runs, until paying up to that tranche clears it."""
        order = self.order
        owing = order.status in (Status.ACCEPTED, Status.PARTIALLY_PAID)
        schedule = order.terms.payment_schedule
        running = [sum(t.amount for t in schedule[: n + 1]) for n in range(len(schedule))]
        later_unpaid = any(order.funded < through for through in running[1:])
        if order.overdue_tranche is not None:
            assert order.overdue_tranche >= 2
            assert order.funded < running[order.overdue_tranche - 1]
        if not owing:
            assert not kinds & {DeadlineKind.TRANCHE_DUE, DeadlineKind.UNPAID_CANCEL_AT}
            return
        assert (DeadlineKind.UNPAID_CANCEL_AT in kinds) == order.payment_overdue
        assert (DeadlineKind.TRANCHE_DUE in kinds) == (
            not order.payment_overdue and later_unpaid and order.accepted_at is not None
        )

    @invariant()
    def timers_agree_with_deadlines(self) -> None:
        next_at = next_timer_at(self.order)
        due = due_timer_commands(self.order, self.now)
        assert bool(due) == (next_at is not None and next_at <= self.now)


# 200 runs of up to 40 steps, each step checked against the whole stream: about as long as
# before money out was tracked (25-50 s on a busy 2-core machine; pytest-timeout is 120 s).
OrderMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestOrderMachine = OrderMachine.TestCase
pytestmark = pytest.mark.runs_long  # run first (tests/conftest.py): it holds a worker a while
