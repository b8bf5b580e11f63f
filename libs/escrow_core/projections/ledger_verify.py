"""What ``escrow verify`` checks of money out and the ledger (DESIGN 7.1), pure: each
order's payouts and refunds add up to what it released and refunded, every ledger transfer
sums to zero, each order's accounts hold what its ``amounts`` say, and the ``money_out`` rows
are the payouts and refunds as the log has them."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from escrow_core.domain import events as e
from escrow_core.domain.order import OrderState
from escrow_core.projections import ledger, money_out
from escrow_core.store import MoneyOutRow


@dataclass
class Untracked:
    """Money an order's pre-1.1 events (upcast with ``payouts`` / ``refunds`` None) paid out
    or refunded before payouts and refunds were tracked: it counts as tracked from the first
    1.1 event on, so the invariants hold over the whole order."""

    paid_out: int = 0
    refunded: int = 0

    def add(self, event: e.Event) -> None:
        match event:
            case e.FundsReleased(payouts=None, net=net):
                self.paid_out += net
            case e.RefundIssued(refunds=None, amount=amount):
                self.refunded += amount


def money_out_problems(order: OrderState, untracked: Untracked) -> list[str]:
    """Payouts to the supplier (any status) + fees + agency fees = released, the agency fees
    being what the agent's payouts pay it; refunds (any status) = refunded."""
    a = order.amounts
    found = []
    agent = order.terms.agency_id
    to_agent = sum(p.amount for p in order.payouts if agent is not None and p.party_id == agent)
    payouts = sum(p.amount for p in order.payouts) - to_agent + untracked.paid_out
    if payouts + a.fees + a.agency_fees != a.released:
        found.append(
            f"payouts {payouts} + fees {a.fees} + agency_fees {a.agency_fees} "
            f"!= released {a.released}"
        )
    if to_agent != a.agency_fees:
        found.append(f"payouts to the agent {to_agent} != agency_fees {a.agency_fees}")
    refunds = sum(r.amount for r in order.refunds) + untracked.refunded
    if refunds != a.refunded:
        found.append(f"refunds {refunds} != refunded {a.refunded}")
    return found


Sums = Iterable[tuple[str, str, str, int, int]]


def ledger_problems(
    states: Mapping[str, OrderState], unbalanced: Iterable[tuple[str, str, int]], sums: Sums
) -> list[str]:
    """Transfers that do not sum to zero, and each order's account sums (order_id, account,
    currency, posted, pending) against what its amounts say they must be."""
    problems = [
        f"ledger transfer {transfer_id} ({currency}) sums to {total}, not 0"
        for transfer_id, currency, total in sorted(unbalanced)
    ]
    found: dict[str, dict[str, tuple[int, int]]] = {}
    for order_id, account, currency, posted, pending in sums:
        order = states.get(order_id)
        if order is None:
            problems.append(f"ledger has postings of {order_id} but the log has no such order")
            continue
        if currency != order.terms.currency:
            problems.append(f"ledger {order_id} {account}: postings in {currency}")
        if posted or pending:
            found.setdefault(order_id, {})[account] = (posted, pending)
    for order_id, order in states.items():
        expected = ledger.expected_balances(order_id, order)
        live = found.get(order_id, {})
        problems += [
            f"ledger {order_id} {account}: posted/pending {live.get(account, (0, 0))}, "
            f"its amounts say {expected.get(account, (0, 0))}"
            for account in sorted(expected.keys() | live.keys())
            if live.get(account, (0, 0)) != expected.get(account, (0, 0))
        ]
    return problems


def money_out_row_problems(
    states: Mapping[str, OrderState], live: Iterable[MoneyOutRow]
) -> list[str]:
    """The ``money_out`` rows against the payouts and refunds of the orders replayed."""
    rows = {row.id: row for row in live}
    expected = {
        row.id: row
        for order_id, order in states.items()
        for row in money_out.rows_for(
            order_id, order, {p.id for p in order.payouts} | {r.id for r in order.refunds}
        )
    }
    problems = [
        f"money_out has {object_id} but the log has no such payout or refund"
        for object_id in sorted(rows.keys() - expected.keys())
    ]
    for object_id, row in sorted(expected.items()):
        stored = rows.get(object_id)
        if stored is None:
            problems.append(f"money_out lacks {row.kind} {object_id} of {row.order_id}")
        elif stored != row:
            problems.append(f"money_out {object_id}: live {stored}, log says {row}")
    return problems
