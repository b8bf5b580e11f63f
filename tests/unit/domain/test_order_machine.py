"""A stateful property test: random commands from every role, at random times, on one order.

Hypothesis drives the buyer, the supplier, the payment provider, a mediator, an admin, the
system's timers and parties that have nothing to do with the order, with random amounts, while
the clock moves on (sometimes straight to the next deadline). After every step the money
invariant of DESIGN 3 must hold, and the recorded stream must fold back into the same state.
"""

from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import DomainError, NotPermitted, OrderAlreadyExists
from escrow_core.domain.order import (
    TERMINAL,
    OrderState,
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
from escrow_core.domain.roles import SYSTEM, Actor
from escrow_core.domain.terms import (
    DeadlineKind,
    DisputeReason,
    ExtendableDeadline,
    LineItem,
    PaymentMethod,
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
)

# An amount relative to what the command is about (unpaid, held): exactly all of it, a part,
# one too many, nothing, a negative one, or any number at all.
PORTIONS = st.one_of(
    st.sampled_from(["all", "half", "one", "over", "zero", "negative"]),
    st.integers(1, 300_000),
)


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

    # --- the harness: the one place commands are decided and events recorded ------------------
    def apply(self, command: c.Command) -> list[e.AnyEvent]:
        state, recorded = self.state, len(self.events)
        snapshot = state.model_dump() if state is not None else None
        refusal: DomainError | None = None
        try:
            new_events = decide(state, command, self.now, IDS)
        except DomainError as error:
            refusal = error
        if refusal is not None:
            self._check_refusal(command, refusal)
            # A refused command appends nothing and leaves the order as it was.
            assert self.state is state
            assert len(self.events) == recorded
            assert (state.model_dump() if state is not None else None) == snapshot
            return []
        assert command.actor not in WRONG_PARTIES
        assert decide(state, command, self.now, IDS) == new_events  # pure: same input, same answer
        if not new_events:
            # The only command that may succeed by doing nothing: a payment retried by the
            # provider with the same reference and amount.
            assert isinstance(command, c.RecordPayment)
            assert state is not None
            assert state.payment_amount(command.provider_ref) == command.amount
        for event in new_events:
            assert event.at == self.now
            assert e.event_from_data(event.type, e.event_to_data(event)) == event
            if isinstance(event, e.DisputeOpened):
                running = self._own_timer()
                assert running is not None
                self.paused = max(running - self.now, timedelta(0))
            self.state = evolve(self.state, event)
            self.events.append(event)
            if isinstance(event, e.DisputeWithdrawn):
                # The order's own timer resumes with exactly the time it had left.
                assert self.paused is not None
                assert self._own_timer() == self.now + self.paused
        if self.terminal_at is None and self.order.status in TERMINAL:
            self.terminal_at = len(self.events)
        return new_events

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
    ) -> None:
        total = sum(item.quantity * item.unit_price for item in items) + shipping_fee
        schedule = None
        deposit = int(total * deposit_share) if deposit_share is not None else 0
        if 0 < deposit < total:
            schedule = (
                Tranche(name="deposit", amount=deposit),
                Tranche(name="balance", amount=total - deposit),
            )
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
            ship_by=date(2025, 3, 3) + timedelta(days=ship_in_days),
            inspection_days=inspection_days,
            payment_schedule=schedule,
            fee_bps=fee_bps,
            policy=policy,
        )
        assert self.apply(command) != []
        assert self.order.terms.total == total
        # Start the random walk from anywhere on the main line, not only from "placed".
        for step in MAIN_LINE[:stage]:
            self.now += timedelta(days=1)
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

    @rule(actor=actors(BUYER))
    def withdraw(self, actor: Actor) -> None:
        self.apply(c.WithdrawDispute(actor=actor))

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
            assert set(actions) <= {"message"}

    # --- after every step ---------------------------------------------------------------------
    @invariant()
    def money_adds_up(self) -> None:
        a, total = self.order.amounts, self.order.terms.total
        assert a.paid == a.held + a.released + a.refunded
        assert min(a.paid, a.held, a.released, a.refunded, a.fees) >= 0
        assert a.paid <= total
        assert a.fees <= a.released
        if self.order.status in TERMINAL:
            assert a.held == 0

    @invariant()
    def amounts_are_the_sums_of_the_events(self) -> None:
        a = self.order.amounts
        assert a.paid == sum(ev.amount for ev in self.events if isinstance(ev, e.PaymentReceived))
        releases = [ev for ev in self.events if isinstance(ev, e.FundsReleased)]
        assert a.released == sum(ev.gross for ev in releases)
        assert a.fees == sum(ev.fee for ev in releases)
        assert a.refunded == sum(ev.amount for ev in self.events if isinstance(ev, e.RefundIssued))
        for release in releases:
            assert release.fee == half_even_fee(release.gross, self.order.terms.fee_bps)
            assert release.net == release.gross - release.fee
            assert release.gross > 0

    @invariant()
    def status_agrees_with_the_money(self) -> None:
        order = self.order
        a, total, status = order.amounts, order.terms.total, order.status
        if status is Status.PLACED or status is Status.ACCEPTED:
            assert a.paid == 0
        elif status is Status.PARTIALLY_PAID:
            assert 0 < a.paid < total
        elif status in (Status.HELD, Status.SHIPPED, Status.DELIVERED, Status.DISPUTED):
            assert a.held == a.paid == total
        elif status is Status.COMPLETED:
            assert a.released == a.paid == total
        elif status is Status.REFUNDED:
            assert a.refunded == a.paid == total
        elif status is Status.SETTLED:
            assert 0 < a.refunded < total
            assert a.released + a.refunded == a.paid == total
        elif status is Status.CANCELLED:
            assert a.refunded == a.paid
            assert a.released == 0

    @invariant()
    def the_stream_is_the_truth(self) -> None:
        assert self.order.version == len(self.events)
        assert [type(ev) for ev in self.events[:1]] == [e.OrderPlaced]
        assert fold(self.events) == self.order
        if self.terminal_at is not None:
            after = self.events[self.terminal_at :]
            assert all(isinstance(ev, e.MessagePosted) for ev in after)
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
            assert (DeadlineKind.PAY_BY in kinds) == (self.order.amounts.paid < first_tranche)
        if status is Status.SHIPPED:
            assert kinds == {DeadlineKind.AUTO_COMPLETE_AT}
        if status is Status.DELIVERED:
            assert kinds == {DeadlineKind.INSPECTION_ENDS}
        if status is Status.HELD:
            assert kinds == (set() if self.order.shipment_overdue else {DeadlineKind.SHIP_BY})
        if status in TERMINAL:
            assert kinds == set()

    @invariant()
    def timers_agree_with_deadlines(self) -> None:
        next_at = next_timer_at(self.order)
        due = due_timer_commands(self.order, self.now)
        assert bool(due) == (next_at is not None and next_at <= self.now)


# About 5 s: 200 runs of up to 40 steps, each step checked against the whole stream.
OrderMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestOrderMachine = OrderMachine.TestCase
