"""The supplier performance fold (projections.supplier_performance), pure: events in, figures
out. Orders are the domain scenario's reference order (ships by 2025-04-02, on time until that
day ends, UTC; total 125_000 cents), walked along with the domain's own decisions."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.roles import Role
from escrow_core.domain.terms import ExtendableDeadline, RefundReason
from escrow_core.projections import supplier_performance as perf
from escrow_core.store import PerformanceCounts

from ..domain.scenario import (
    ACCEPTED_AT,
    BUYER,
    COMPLETED,
    DELIVERED,
    DISPUTED,
    HELD,
    PARTIALLY_PAID,
    PLACED,
    SHIP_BY_AT,
    SUPPLIER,
    SUPPLIER_ID,
    TOTAL,
    History,
    day,
    dispute_opened,
    order_delivered,
    order_shipped,
    when,
)


def opened(kind: Literal["dispute", "claim"]) -> e.DisputeOpened:
    """``dispute.opened`` as it reads once claims add ``kind`` (another change, in flight)."""
    event = dispute_opened(at=day(14))
    object.__setattr__(event, "kind", kind)  # the field does not exist here yet
    return event


def folded(*orders: History) -> perf.Applied:
    """Every order's events through the fold, order by order, in one batch."""
    return perf.apply_batch(
        {}, [(f"ord_{n}", ev) for n, order in enumerate(orders) for ev in order]
    )


def counts(*orders: History) -> PerformanceCounts:
    (only,) = perf.totals(track.row for track in folded(*orders).orders.values()).values()
    return only


def test_an_order_placed_but_never_accepted_counts_nothing() -> None:
    assert perf.totals(t.row for t in folded(PLACED).orders.values()) == {}


def test_a_completed_order_counts_accepted_on_time_completed_and_paid() -> None:
    assert counts(COMPLETED) == PerformanceCounts(
        SUPPLIER_ID, "USD", orders_accepted=1, shipped_on_time=1, completed=1, paid=TOTAL
    )


def test_shipping_at_the_end_of_the_ship_by_day_is_on_time_a_moment_later_is_late() -> None:
    on_the_dot = [*HELD, order_shipped(at=SHIP_BY_AT)]
    late = [*HELD, order_shipped(at=SHIP_BY_AT + timedelta(seconds=1))]
    assert counts(on_the_dot, late).shipped_on_time == 1
    assert counts(on_the_dot, late).shipped_late == 1


def test_an_extended_ship_by_moves_the_deadline_but_not_once_shipped() -> None:
    extend = c.ExtendDeadline(actor=BUYER, deadline=ExtendableDeadline.SHIP_BY, days=5)
    extended = [*HELD, *when(HELD, extend, day(10))]
    in_time = [*extended, order_shipped(at=SHIP_BY_AT + timedelta(days=4))]
    assert counts(in_time).shipped_on_time == 1
    # a late shipment stays late whatever is extended after it (DeadlineExtended by an admin)
    late = [*HELD, order_shipped(at=SHIP_BY_AT + timedelta(days=1))]
    after = e.DeadlineExtended(
        at=SHIP_BY_AT + timedelta(days=2),
        deadline=ExtendableDeadline.SHIP_BY,
        by=Role.ADMIN,
        new_at=SHIP_BY_AT + timedelta(days=9),
    )
    assert counts([*late, after]).shipped_late == 1


def test_disputes_and_claims_count_orders_not_disputes() -> None:
    withdrawn_then_again: History = [
        *DISPUTED,
        e.DisputeWithdrawn(at=day(13)),
        opened("claim"),
    ]
    found = counts(DISPUTED, withdrawn_then_again)
    assert (found.disputed, found.claims) == (2, 1)
    kind_dispute = [*DELIVERED, opened("dispute")]
    assert (counts(kind_dispute).disputed, counts(kind_dispute).claims) == (1, 0)


def test_completed_follows_the_status_evolve_computes_not_one_event_type() -> None:
    # A dispute settled with no refund completes the order without receipt.confirmed ...
    offer = when(DISPUTED, c.MakeOffer(actor=SUPPLIER, refund_amount=0), day(13))
    accepted = when([*DISPUTED, *offer], c.AcceptOffer(actor=BUYER), day(14))
    settled_for_nothing = [*DISPUTED, *offer, *accepted]
    assert not any(isinstance(ev, e.ReceiptConfirmed) for ev in settled_for_nothing)
    assert counts(settled_for_nothing).completed == 1
    # ... and one settled with a refund is settled, not completed; its dispute refund counts.
    offer = when(DISPUTED, c.MakeOffer(actor=SUPPLIER, refund_amount=30_000), day(13))
    accepted = when([*DISPUTED, *offer], c.AcceptOffer(actor=BUYER), day(14))
    refunded = counts([*DISPUTED, *offer, *accepted])
    assert (refunded.completed, refunded.refunded, refunded.paid) == (0, 30_000, TOTAL)


def test_only_dispute_refunds_count_and_paid_is_money_held() -> None:
    cancelled = [
        *PARTIALLY_PAID,
        e.OrderCancelled(at=day(3), reason="changed plans", by=Role.SUPPLIER),
        e.RefundIssued(at=day(3), amount=50_000, reason=RefundReason.CANCELLATION),
    ]
    found = counts(cancelled)
    assert (found.paid, found.refunded, found.orders_accepted) == (50_000, 0, 1)


def test_a_terminal_order_drops_its_state_and_later_events_change_nothing() -> None:
    applied = folded(COMPLETED)
    (track,) = applied.orders.values()
    assert track.state is None
    assert track.row.completed
    again = perf.apply(
        track, "ord_0", e.PayoutPaid(at=day(11), payout_id="po_t1", provider_ref="x")
    )
    assert again is not None
    assert again.row == track.row


def test_applying_in_batches_equals_one_fold_and_the_deltas_add_up() -> None:
    orders: Sequence[History] = (COMPLETED, DISPUTED, PARTIALLY_PAID, PLACED)
    events = [(f"ord_{n}", ev) for n, order in enumerate(orders) for ev in order]
    whole = perf.apply_batch({}, events)
    tracks: dict[str, perf.Track] = {}
    stored: dict[tuple[str, str], PerformanceCounts] = {}
    for start in range(0, len(events), 3):  # small batches, from stored rows as the worker does
        loaded = {order_id: perf.Track.loaded(t.stored()) for order_id, t in tracks.items()}
        step = perf.apply_batch(loaded, events[start : start + 3])
        tracks.update(step.orders)
        for key, delta in step.deltas.items():
            stored[key] = perf._combine(stored.get(key, PerformanceCounts(*key)), delta, 1)
    assert {k: t.stored() for k, t in tracks.items()} == {
        k: t.stored() for k, t in whole.orders.items()
    }
    assert stored == perf.totals(t.row for t in whole.orders.values()) == whole.deltas


def test_figures_share_median_and_currencies() -> None:
    usd = PerformanceCounts(SUPPLIER_ID, "USD", orders_accepted=3, paid=4_700_000, refunded=150_000)
    eur = PerformanceCounts(SUPPLIER_ID, "EUR", orders_accepted=1, paid=1_000, refunded=500)
    accepted = ACCEPTED_AT
    shipping: list[tuple[datetime | None, datetime | None]] = [
        (accepted, accepted + timedelta(days=1)),
        (accepted, accepted + timedelta(days=2, hours=12)),
        (accepted, accepted + timedelta(days=9)),
    ]
    alone = perf.figures([usd], shipping)
    assert alone.refunded_share == Decimal("0.0319")  # 150_000 / 4_700_000 = 0.031914...
    assert alone.median_days_to_ship == Decimal("2.50")
    assert alone.orders_accepted == 3
    both = perf.figures([usd, eur], shipping[:2])
    assert both.refunded_share == Decimal("0.5000")  # the worst currency's share
    assert [f.currency for f in both.by_currency] == ["EUR", "USD"]
    assert both.median_days_to_ship == Decimal("1.75")  # the mean of the middle two
    none = perf.figures([replace(usd, paid=0, refunded=0)], [])
    assert (none.refunded_share, none.median_days_to_ship, none.by_currency) == (None, None, ())


def test_delivered_is_not_shipped_twice() -> None:
    found = counts([*HELD, order_shipped(), order_delivered()])
    assert (found.shipped_on_time, found.shipped_late) == (1, 0)
