"""The double-entry ledger: each money event's transfers, as postings that sum to zero.

Accounts, per currency: ``external`` (money outside us), ``escrow:<order>``, ``buyer:<party>``,
``supplier:<party>``, ``agency:<party>`` and ``platform``. A positive balance on a party's
account is money owed to that party; on ``escrow:<order>`` money we hold; ``external`` is
negative by what came in (and back up by what went out).

    payment          external -, escrow +
    release          escrow -, supplier + gross;  fee: supplier -, platform +;
                     agency fee: supplier -, agency +
    refund issued    escrow -, buyer +
    payout / refund  pending: party -, external +  (created, or retried)
                     then posted (paid / succeeded) or voided (failed), naming the pending one;
                     a payout the bank returns is reversed: party +, external -

Money going out is two-phase, as TigerBeetle's transfers: an account's ``pending`` is what is
on its way (pending legs not yet posted or voided), its ``posted`` what has moved. Nothing is
ever updated in place. Releases and refunds recorded before payouts and refunds were tracked
(schema 1) are posted as already paid out, ``legacy``.

Amounts are in ISO 4217's minor units, like the party balances: one account sums many orders.
"""

from collections.abc import Iterable, Sequence

from escrow_core.domain import events as e
from escrow_core.domain.order import OrderState, PayoutStatus, RefundStatus, evolve
from escrow_core.projections.party_balances import to_iso_minor_units
from escrow_core.store import AccountBalance, Posting

EXTERNAL = "external"
PLATFORM = "platform"
PENDING, POSTED, VOIDED = "pending", "posted", "voided"

Legs = list[tuple[str, int]]


def escrow(order_id: str) -> str:
    return f"escrow:{order_id}"


def buyer(party_id: str) -> str:
    return f"buyer:{party_id}"


def supplier(party_id: str) -> str:
    return f"supplier:{party_id}"


def agency(party_id: str) -> str:
    return f"agency:{party_id}"


def party_accounts(party_id: str) -> list[str]:
    """Every account a party may have (it has those its orders gave it)."""
    return [buyer(party_id), supplier(party_id), agency(party_id)]


def payee(order: OrderState, party_id: str) -> str:
    """The account a payout to ``party_id`` leaves: the supplier's, or the agent's."""
    return supplier(party_id) if party_id == order.terms.supplier_id else agency(party_id)


def pending_id(object_id: str, attempt: int) -> str:
    """The pending transfer of a payout's or refund's ``attempt`` (1, then each retry)."""
    return f"{object_id}/{attempt}"


class _Transfers:
    """The postings one event makes, leg by leg."""

    def __init__(self, order_id: str, order: OrderState, event: e.Event, event_id: str) -> None:
        self.order_id, self.event_id, self.at = order_id, event_id, event.at
        self.currency, self.scale = order.terms.currency, to_iso_minor_units(order)
        self.postings: list[Posting] = []

    def add(
        self,
        transfer_id: str,
        legs: Legs,
        *,
        phase: str = POSTED,
        pending: str | None = None,
        legacy: bool = False,
    ) -> None:
        self.postings += [
            Posting(
                transfer_id=transfer_id,
                order_id=self.order_id,
                event_id=self.event_id,
                at=self.at,
                account=account,
                currency=self.currency,
                amount=amount * self.scale,
                phase=phase,
                pending_id=pending,
                legacy=legacy,
            )
            for account, amount in legs
            if amount
        ]


MONEY_EVENTS = (
    e.PaymentReceived,
    e.FundsReleased,
    e.RefundIssued,
    e.PayoutPaid,
    e.PayoutFailed,
    e.PayoutReturned,
    e.PayoutRetried,
    e.RefundSucceeded,
    e.RefundFailed,
    e.RefundRetried,
)


def postings_of_command(
    order_id: str, before: OrderState | None, events: Sequence[e.AnyEvent], event_ids: Sequence[str]
) -> list[Posting]:
    """The postings of one command's ``events`` (with their ids) on the order ``before``."""
    if not any(isinstance(event, MONEY_EVENTS) for event in events):
        return []
    out: list[Posting] = []
    order = before
    for event, event_id in zip(events, event_ids, strict=True):
        order = evolve(order, event)
        out += postings(order_id, order, event, event_id)
    return out


def postings(order_id: str, order: OrderState, event: e.Event, event_id: str) -> list[Posting]:
    """The postings ``event`` makes; ``order`` is the order just after it."""
    out = _Transfers(order_id, order, event, event_id)
    terms = order.terms
    paid_in, refunded_to = escrow(order_id), buyer(terms.buyer_id)
    match event:
        case e.PaymentReceived(amount=amount):
            out.add(f"{event_id}:payment", [(EXTERNAL, -amount), (paid_in, amount)])
        case e.FundsReleased():
            _released(out, order, event, paid_in)
        case e.RefundIssued(amount=amount, refunds=refunds):
            out.add(f"{event_id}:refund", [(paid_in, -amount), (refunded_to, amount)])
            if refunds is None:  # refunded before refunds were tracked
                legs = [(refunded_to, -amount), (EXTERNAL, amount)]
                out.add(f"{event_id}:refund_out", legs, legacy=True)
            for part in refunds or ():
                legs = [(refunded_to, -part.amount), (EXTERNAL, part.amount)]
                out.add(pending_id(part.id, 1), legs, phase=PENDING)
        case e.PayoutPaid() | e.PayoutFailed() | e.PayoutReturned() | e.PayoutRetried():
            payout = order.payout(event.payout_id)
            if payout is None:
                raise ValueError(f"{event.type} names payout {event.payout_id}, not the order's")
            _moved_out(
                out, event, payout.id, payout.attempt, payee(order, payout.party_id), payout.amount
            )
        case e.RefundSucceeded() | e.RefundFailed() | e.RefundRetried():
            refund = order.refund(event.refund_id)
            if refund is None:
                raise ValueError(f"{event.type} names refund {event.refund_id}, not the order's")
            _moved_out(out, event, refund.id, refund.attempt, refunded_to, refund.amount)
    return out.postings


def _released(out: _Transfers, order: OrderState, event: e.FundsReleased, paid_in: str) -> None:
    terms, eid = order.terms, out.event_id
    owed_to = supplier(terms.supplier_id)
    out.add(f"{eid}:release", [(paid_in, -event.gross), (owed_to, event.gross)])
    out.add(f"{eid}:fee", [(owed_to, -event.fee), (PLATFORM, event.fee)])
    if event.agency_fee:
        agent = next(p.party_id for p in event.payouts or () if p.party_id != terms.supplier_id)
        out.add(
            f"{eid}:agency_fee", [(owed_to, -event.agency_fee), (agency(agent), event.agency_fee)]
        )
    if event.payouts is None:  # paid out before payouts were tracked
        out.add(f"{eid}:payout", [(owed_to, -event.net), (EXTERNAL, event.net)], legacy=True)
    for payout in event.payouts or ():
        legs = [(payee(order, payout.party_id), -payout.amount), (EXTERNAL, payout.amount)]
        out.add(pending_id(payout.id, 1), legs, phase=PENDING)


def _moved_out(
    out: _Transfers, event: e.Event, object_id: str, attempt: int, account: str, amount: int
) -> None:
    """What the bank did with a payout or refund; ``attempt`` as it stands after ``event``."""
    pending = pending_id(object_id, attempt)
    leaving = [(account, -amount), (EXTERNAL, amount)]
    match event:
        case e.PayoutPaid() | e.RefundSucceeded():
            out.add(f"{pending}:posted", leaving, phase=POSTED, pending=pending)
        case e.PayoutFailed() | e.RefundFailed():
            out.add(f"{pending}:voided", leaving, phase=VOIDED, pending=pending)
        case e.PayoutReturned():
            out.add(f"{pending}:returned", [(account, amount), (EXTERNAL, -amount)])
        case e.PayoutRetried() | e.RefundRetried():
            out.add(pending, leaving, phase=PENDING)


def balances(entries: Iterable[Posting]) -> dict[tuple[str, str], AccountBalance]:
    """Posted and pending sums per (account, currency), and what went to the bank, as reading
    the table would (``Store.account_balances``)."""
    summed: dict[tuple[str, str], AccountBalance] = {}
    for posting in entries:
        key = (posting.account, posting.currency)
        before = summed.get(key) or AccountBalance(posting.account, posting.currency, 0, 0)
        posted, pending, paid_out = before.posted, before.pending, before.paid_out
        if posting.phase == POSTED:
            posted += posting.amount
            if posting.account != EXTERNAL and _to_the_bank(posting):
                paid_out -= posting.amount
        if posting.phase == PENDING:
            pending += posting.amount
        elif posting.pending_id is not None:
            pending -= posting.amount  # settles (posted) or releases (voided) a pending leg
        summed[key] = AccountBalance(posting.account, posting.currency, posted, pending, paid_out)
    return summed


def _to_the_bank(posting: Posting) -> bool:
    """A posted leg that moved a party's money to the bank (or back from it, a return)."""
    return (
        posting.pending_id is not None
        or posting.legacy
        or posting.transfer_id.endswith(":returned")
    )


def expected_balances(order_id: str, order: OrderState) -> dict[str, tuple[int, int]]:
    """What the order's postings must sum to, per account (posted, pending), from its
    ``amounts`` and its payouts and refunds: ``escrow verify`` compares the two."""
    a, terms, scale = order.amounts, order.terms, to_iso_minor_units(order)
    agent_paid_out = sum(
        p.amount
        for p in order.payouts
        if p.status is PayoutStatus.PAID and p.party_id != terms.supplier_id
    )
    pending_payouts: dict[str, int] = {}
    for p in order.payouts:
        if p.status is PayoutStatus.PENDING:
            account = payee(order, p.party_id)
            pending_payouts[account] = pending_payouts.get(account, 0) + p.amount
    pending_refunds = sum(r.amount for r in order.refunds if r.status is RefundStatus.PENDING)
    expected = {
        EXTERNAL: (
            -a.paid + a.paid_out + a.refunds_completed,
            sum(pending_payouts.values()) + pending_refunds,
        ),
        escrow(order_id): (a.held, 0),
        buyer(terms.buyer_id): (a.refunded - a.refunds_completed, -pending_refunds),
        supplier(terms.supplier_id): (
            a.released - a.fees - a.agency_fees - (a.paid_out - agent_paid_out),
            -pending_payouts.get(supplier(terms.supplier_id), 0),
        ),
        PLATFORM: (a.fees, 0),
    }
    for account, amount in pending_payouts.items():
        if account != supplier(terms.supplier_id):
            posted = expected.get(account, (0, 0))[0]
            expected[account] = (posted, -amount)
    for p in order.payouts:
        if p.party_id != terms.supplier_id:
            account = agency(p.party_id)
            owed = a.agency_fees - agent_paid_out
            expected[account] = (owed, expected.get(account, (0, 0))[1])
    return {
        account: (posted * scale, pending * scale)
        for account, (posted, pending) in expected.items()
        if posted or pending
    }
