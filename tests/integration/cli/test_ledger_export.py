"""``escrow ledger export`` and ``escrow verify``'s ledger checks, as an operator runs them, on
both backends (DESIGN 7.1, 7.7).

One database per backend holds orders built through the command service: completed and paid
out, a payout failed then retried then paid, one paid then returned, one refunded by a
dispute, an overpayment refunded, a payout left pending, orders in EUR and JPY, and an IQD
order written before 1.1 (its release and refund v1 events, posted as legacy). Half of them
three days later on the sandbox clock, for ``--since``. The Beancount file is checked with
Beancount itself: it loads with no errors, and the balances Beancount computes are ours.
"""

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from beancount import loader
from beancount.core import data, realization
from service.story import BALANCE, MEDIATOR, PAYMENTS, TOTAL, Cast, Orders, open_dispute

from escrow_core.application.commands import CommandService
from escrow_core.application.upcasting import event_upcasters
from escrow_core.currency import exponent
from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.policy import TimerPolicy
from escrow_core.domain.terms import LineItem, PaymentMethod
from escrow_core.projections.ledger_export import beancount_account
from escrow_core.projections.rebuild import rebuild
from escrow_core.projections.verify import verify
from escrow_core.store import NewEvent, Posting, Store, open_store
from escrow_core.store.schema import ledger_postings, money_out
from support.databases import TestDatabases
from support.legacy import LEGACY_TOTAL, write_legacy_order

from .busy_log import escrow

DAYS_LATER = 3
Balances = dict[tuple[str, str], Decimal]


@dataclass
class Book:
    url: str
    store: Store
    cast: Cast
    completed: str
    returned: str
    pending_payout: str
    legacy: str
    since: date  # a day between the two halves


async def _payout_of(orders: Orders, order_id: str) -> str:
    result = await orders.run(order_id, c.ConfirmReceipt(actor=orders.cast.buyer))
    (payout,) = result.state.payouts
    return payout.id


async def _first_half(orders: Orders) -> tuple[str, str]:
    """Paid out; failed, retried and paid; refunded by a dispute (refunds succeeded)."""
    cast = orders.cast
    completed = await orders.up_to("delivered")
    payout = await _payout_of(orders, completed)
    await orders.run(
        completed, c.ReportPayoutPaid(actor=PAYMENTS, payout_id=payout, provider_ref="tr_a")
    )
    retried = await orders.up_to("delivered", currency="EUR")
    payout = await _payout_of(orders, retried)
    await orders.run(
        retried,
        c.ReportPayoutFailed(actor=PAYMENTS, payout_id=payout, reason="account closed"),
        c.RetryPayout(actor=PAYMENTS, payout_id=payout),
        c.ReportPayoutPaid(actor=PAYMENTS, payout_id=payout, provider_ref="tr_b"),
    )
    refunded = await orders.up_to("shipped", policy=TimerPolicy(negotiation_days=0))
    result = await orders.run(
        refunded,
        open_dispute(cast, refund=TOTAL),
        c.EscalateDispute(actor=cast.buyer),
        c.ResolveDispute(actor=MEDIATOR, refund_amount=TOTAL, note="never arrived"),
    )
    for n, refund in enumerate(result.state.refunds):
        await orders.run(
            refunded,
            c.ReportRefundSucceeded(actor=PAYMENTS, refund_id=refund.id, provider_ref=f"rf{n}"),
        )
    return completed, refunded


async def _second_half(orders: Orders) -> tuple[str, str]:
    """Overpaid (the excess refunded and succeeded), paid then returned, a payout left
    pending, and an order in yen."""
    overpaid = await orders.up_to("partially_paid")
    result = await orders.run(
        overpaid,
        c.RecordPayment(
            actor=PAYMENTS,
            amount=BALANCE + 100,
            method=PaymentMethod.BANK_TRANSFER,
            provider_ref="pay_over",
        ),
    )
    (refund,) = result.state.refunds
    await orders.run(
        overpaid, c.ReportRefundSucceeded(actor=PAYMENTS, refund_id=refund.id, provider_ref="r")
    )
    returned = await orders.up_to("delivered")
    payout = await _payout_of(orders, returned)
    await orders.run(
        returned,
        c.ReportPayoutPaid(actor=PAYMENTS, payout_id=payout, provider_ref="tr_c"),
        c.ReportPayoutReturned(actor=PAYMENTS, payout_id=payout, reason="wrong account"),
    )
    pending = await orders.up_to("delivered")
    await _payout_of(orders, pending)
    yen = await orders.up_to(
        "delivered",
        currency="JPY",
        currency_exponent=0,
        items=(LineItem(sku="V", description="valve", quantity=10, unit_price=10_000),),
    )
    payout = await _payout_of(orders, yen)
    await orders.run(yen, c.ReportPayoutPaid(actor=PAYMENTS, payout_id=payout, provider_ref="y"))
    return returned, pending


def _v1(event: e.Event, command_id: str, **dropped: Any) -> NewEvent:
    """``event`` as it was stored before 1.1: the fields of schema 2 left out."""
    data = {k: v for k, v in e.event_to_data(event).items() if k not in dropped}
    return NewEvent(uuid.uuid4(), event.type, data, {"command_id": command_id}, schema_version=1)


async def write_legacy_money(store: Store, cast: Cast) -> str:
    """An IQD order of before 1.1: paid, 300 refunded and 700 released by v1 events (their
    money went out untracked); priced with exponent 0, its ledger is in ISO's fils."""
    order_id = await write_legacy_order(store, cast.buyer_id, cast.supplier_id)
    now = datetime.now(UTC)
    paid = uuid.uuid4().hex
    written = [
        _v1(e.OrderAccepted(at=now), uuid.uuid4().hex),
        _v1(
            e.PaymentReceived(
                at=now, amount=LEGACY_TOTAL, method=PaymentMethod.BANK_TRANSFER, provider_ref="p"
            ),
            paid,
        ),
        _v1(e.FundsHeld(at=now, amount=LEGACY_TOTAL, held_total=LEGACY_TOTAL), paid),
        _v1(
            e.RefundIssued(at=now, amount=300, reason=None, refunds=None),
            uuid.uuid4().hex,
            reason=True,
            refunds=True,
        ),
        _v1(
            e.FundsReleased(at=now, gross=700, fee=0, net=700, payouts=None),
            uuid.uuid4().hex,
            agency_fee=True,
            payouts=True,
        ),
    ]
    await store.append(order_id, 1, written, recorded_at=now)
    return order_id


@pytest.fixture(scope="module")
async def book(test_databases: TestDatabases) -> AsyncIterator[Book]:
    url = await test_databases.create_migrated()
    store = open_store(url, upcasters=event_upcasters(), sandbox=True)
    try:
        cast = Cast.new()
        orders = Orders(CommandService(store), cast)
        completed, _ = await _first_half(orders)
        legacy = await write_legacy_money(store, cast)
        await rebuild(store)  # the legacy events were appended without their projections
        await store.advance_clock(DAYS_LATER * 86_400)
        returned, pending = await _second_half(orders)
        since = (await store.now()).date() - timedelta(days=1)
        yield Book(url, store, cast, completed, returned, pending, legacy, since)
    finally:
        await store.dispose()
        await test_databases.drop(url)


async def _postings(store: Store) -> list[Posting]:
    return [p async for batch in store.all_postings(batch_size=1000) for p in batch]


def _major(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


async def our_balances(store: Store) -> Balances:
    """Every account's posted balance, as Beancount must see it: its name, major units,
    debits positive."""
    return {
        (beancount_account(b.account), b.currency): -_major(b.posted, b.currency)
        for b in await store.account_balances(None)
        if b.posted
    }


def beancount_balances(entries: list[data.Directive]) -> Balances:
    found: Balances = {}
    for account in realization.iter_children(realization.realize(entries)):
        for position in account.balance:
            if position.units.number:
                found[(account.account, position.units.currency)] = position.units.number
    return found


def load(text: str) -> list[data.Directive]:
    entries, errors, _ = loader.load_string(text)
    assert errors == [], [str(error) for error in errors][:5]
    return entries


async def test_the_beancount_file_loads_and_holds_our_balances(book: Book, tmp_path: Path) -> None:
    out = tmp_path / "ledger.beancount"

    result = await escrow(book.url, "ledger", "export", "--format", "beancount", "--out", str(out))

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    postings = await _postings(book.store)
    moved = [p for p in postings if p.phase == "posted"]
    assert f"exported {len(moved)} postings to {out}" in result.stderr
    text = out.read_text()
    entries = load(text)
    assert await our_balances(book.store) == beancount_balances(entries)
    # Pending and voided legs are not money that moved: none of them is in the file
    assert {p.phase for p in postings} == {"posted", "pending", "voided"}
    transactions = [x for x in entries if isinstance(x, data.Transaction)]
    assert sorted(x.meta["transfer_id"] for x in transactions) == sorted(
        {p.transfer_id for p in moved}
    )
    # Amounts in major units with ISO's exponent: cents, whole yen, fils for the legacy IQD
    assert "-1250.00 USD" in text
    assert " JPY\n" in text
    assert "-125000 JPY" in text
    iqd = [
        x for x in transactions if x.meta.get("legacy") and x.postings[0].units.currency == "IQD"
    ]
    assert {str(abs(x.postings[0].units.number)) for x in iqd} == {"300.000", "700.000"}
    escrow_account = beancount_account(f"escrow:{book.completed}")
    assert escrow_account == f"Liabilities:Escrow:O-{book.completed.replace('_', '-')}"
    assert f"open {escrow_account} USD" in text


async def test_since_starts_with_opening_balances_and_ends_at_our_balances(book: Book) -> None:
    result = await escrow(
        book.url, "ledger", "export", "--format", "beancount", "--since", str(book.since)
    )

    assert result.returncode == 0, result.stderr
    entries = load(result.stdout)  # no --out: the file is written to stdout
    transactions = [x for x in entries if isinstance(x, data.Transaction)]
    opening = [x for x in transactions if x.date < book.since]
    assert opening
    assert all(x.narration.startswith("Opening balances") for x in opening)
    assert all(x.date == book.since - timedelta(days=1) for x in opening)
    # (the legacy IQD order's money all went out: its accounts open at zero)
    assert {x.postings[0].units.currency for x in opening} == {"USD", "EUR"}
    assert len(opening) < len(transactions)  # the second half's transfers follow
    # Opening balances plus what moved since are every account's balance now
    assert await our_balances(book.store) == beancount_balances(entries)
    # and what moved before is only in the opening balances
    first_half = {p.transfer_id for p in await _postings(book.store) if p.at.date() < book.since}
    assert first_half
    assert not first_half & {x.meta.get("transfer_id") for x in transactions}


async def test_the_csv_round_trips_and_sums_to_our_balances(book: Book) -> None:
    result = await escrow(book.url, "ledger", "export", "--format", "csv")

    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [
        "id", "transfer_id", "at", "order_id", "event_id", "account", "currency", "amount",
        "legacy",
    ]  # fmt: skip
    moved = [p for p in await _postings(book.store) if p.phase == "posted"]
    assert [int(row["id"]) for row in rows] == [p.id for p in moved]
    totals: Balances = {}
    for row in rows:
        key = (row["account"], row["currency"])
        totals[key] = totals.get(key, Decimal(0)) + Decimal(row["amount"])
    ours = {
        (b.account, b.currency): _major(b.posted, b.currency)
        for b in await book.store.account_balances(None)
    }
    assert {k: v for k, v in totals.items() if v} == {k: v for k, v in ours.items() if v}
    assert {row["legacy"] for row in rows if row["order_id"] == book.legacy} == {"true", "false"}
    again = io.StringIO()
    writer = csv.DictWriter(again, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    assert again.getvalue() == result.stdout


async def test_verify_passes_then_names_a_tampered_posting_and_a_lost_payout(book: Book) -> None:
    # (in process where the exit status is not the point: each process start costs seconds)
    healthy = await verify(book.store)
    assert healthy.ok, healthy.problems
    assert healthy.orders == 8

    # When a posting of the completed order is tampered with
    p = ledger_postings.c
    async with book.store.transaction() as conn:
        posting = (
            await conn.execute(
                sa.select(p.id, p.transfer_id, p.currency, p.account)
                .where(p.order_id == book.completed, p.phase == "posted")
                .order_by(p.id)
                .limit(1)
            )
        ).one()
        await conn.execute(
            ledger_postings.update().where(p.id == posting.id).values(amount=p.amount + 1)
        )
    tampered = await escrow(book.url, "verify")

    # Then verify fails naming the transfer and the order's account
    assert tampered.returncode == 1
    assert (
        f"ledger transfer {posting.transfer_id} ({posting.currency}) sums to 1, not 0"
        in tampered.stderr
    )
    assert f"ledger {book.completed} {posting.account}: posted/pending" in tampered.stderr
    async with book.store.transaction() as conn:
        await conn.execute(
            ledger_postings.update().where(p.id == posting.id).values(amount=p.amount - 1)
        )

    # When the pending payout's row is lost
    m = money_out.c
    async with book.store.transaction() as conn:
        payout_id = (
            await conn.execute(sa.select(m.id).where(m.order_id == book.pending_payout))
        ).scalar_one()
        await conn.execute(money_out.delete().where(m.id == payout_id))
    lost = await verify(book.store)

    # Then verify names it, and passes again once the projections are rebuilt
    assert lost.problems == [f"money_out lacks payout {payout_id} of {book.pending_payout}"]
    await rebuild(book.store)
    repaired = await verify(book.store)
    assert repaired.ok, repaired.problems
