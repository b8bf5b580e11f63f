"""``escrow verify``: replay every order, check the money invariants at every command boundary,
and compare the projections rebuilt in memory with the live ones: order_view, party_balances,
the ledger (every transfer sums to zero, each order's accounts match its amounts), the
payouts and refunds (``ledger_verify``) and supplier performance (up to its checkpoint)."""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from escrow_core.domain.events import event_from_data
from escrow_core.domain.order import TERMINAL, OrderState, evolve
from escrow_core.projections import (
    ledger_verify,
    money_out,
    order_view,
    party_balances,
    supplier_performance_log,
)
from escrow_core.projections.rebuild import BATCH_SIZE, is_order_event, states_kept_out_of_gc
from escrow_core.store import (
    BalanceChange,
    BalanceTotals,
    MoneyOutQuery,
    MoneyOutRow,
    OrderRow,
    Store,
)


@dataclass
class Report:
    orders: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def money_problems(order: OrderState) -> list[str]:
    """What breaks ``paid = held + released + refunded`` and its companions, if anything."""
    a = order.amounts
    found = []
    if a.paid != a.held + a.released + a.refunded:
        found.append(
            f"paid {a.paid} != held {a.held} + released {a.released} + refunded {a.refunded}"
        )
    if min(a.paid, a.held, a.released, a.refunded, a.fees) < 0:
        found.append(f"a negative amount: {a}")
    # 1.1: money paid beyond the total is refunded at once, never held (DESIGN 7.1)
    if a.held > order.terms.total:
        found.append(f"held {a.held} exceeds the total {order.terms.total}")
    if a.fees > a.released:
        found.append(f"fees {a.fees} exceed released {a.released}")
    if order.status in TERMINAL and a.held:
        found.append(f"{order.status.value} but still holds {a.held}")
    return found


async def verify(
    store: Store,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] = lambda n: None,
) -> Report:
    report = Report()
    states: dict[str, OrderState] = {}
    last_command: dict[str, str | None] = {}
    balance_entries: list[BalanceChange] = []
    untracked: dict[str, ledger_verify.Untracked] = {}

    def check(order_id: str) -> None:
        order = states[order_id]
        found = money_problems(order)
        found += ledger_verify.money_out_problems(order, untracked[order_id])
        report.problems += [f"{order_id} v{order.version}: {p}" for p in found]

    with states_kept_out_of_gc() as freeze:
        async for batch in store.whole_log(batch_size=batch_size):
            for recorded in filter(is_order_event, batch):
                order_id = recorded.stream_id
                command_id = recorded.metadata.get("command_id")
                if order_id in states and last_command[order_id] != command_id:
                    check(order_id)  # the previous command's events are all in: a boundary
                event = event_from_data(recorded.type, recorded.data)
                states[order_id] = order = evolve(states.get(order_id), event)
                last_command[order_id] = command_id
                untracked.setdefault(order_id, ledger_verify.Untracked()).add(event)
                balance_entries += party_balances.changes(order_id, order, event, recorded.version)
                report.events += 1
            progress(len(batch))
            freeze()
    for order_id in states:
        check(order_id)
    report.orders = len(states)
    live_rows = await store.all_order_rows()
    live_balances = {(b.party_id, b.currency): b for b in await store.all_balances()}
    report.problems += _compare_views(states, live_rows)
    report.problems += _compare_balances(party_balances.totals(balance_entries), live_balances)
    unbalanced, sums = await store.ledger_check()
    report.problems += ledger_verify.ledger_problems(states, unbalanced, sums)
    report.problems += ledger_verify.money_out_row_problems(states, await _all_money_out(store))
    report.problems += await supplier_performance_log.verify(store, batch_size=batch_size)
    return report


async def _all_money_out(store: Store, page: int = 1000) -> list[MoneyOutRow]:
    """Every payout and refund row, page by page."""
    rows: list[MoneyOutRow] = []
    for kind in (money_out.PAYOUT, money_out.REFUND):
        before = None
        while batch := await store.list_money_out(MoneyOutQuery(kind, page, before=before)):
            rows += batch
            before = (batch[-1].created_at, batch[-1].id)
    return rows


def _compare_views(states: dict[str, OrderState], live: dict[str, OrderRow]) -> list[str]:
    problems = [f"order_view has {i} but the log has no such order" for i in live.keys() - states]
    for order_id, order in states.items():
        row = live.get(order_id)
        if row is None:
            problems.append(f"order_view lacks {order_id}")
            continue
        expected = asdict(order_view.row_for(order_id, order))
        stored = {**asdict(row), "state": order_view.upcast_document(row.state)}
        problems += [
            f"order_view {order_id}.{path}: live {live!r}, log says {value!r}"
            for column, value in expected.items()
            for path, live, value in _differences(column, stored.get(column), value)
        ]
    return problems


def _differences(path: str, live: Any, expected: Any) -> list[tuple[str, Any, Any]]:
    """Where ``live`` and ``expected`` differ, down to the keys of a JSON document (the
    ``state`` snapshot is too long to read whole)."""
    if live == expected:
        return []
    if isinstance(live, dict) and isinstance(expected, dict):
        return [
            found
            for key in sorted(live.keys() | expected.keys())
            for found in _differences(f"{path}.{key}", live.get(key), expected.get(key))
        ]
    return [(path, live, expected)]


def _compare_balances(
    expected: dict[tuple[str, str], BalanceTotals],
    live: dict[tuple[str, str], BalanceTotals],
) -> list[str]:
    def zero(party: str, currency: str) -> BalanceTotals:
        return BalanceTotals(party, currency, 0, 0, 0, 0)

    return [
        f"party_balances {party}/{currency}: live {live.get(key)}, log says {expected.get(key)}"
        for key in sorted(expected.keys() | live.keys())
        for party, currency in [key]
        if expected.get(key, zero(*key)) != live.get(key, zero(*key))
    ]
