"""What goes into the store and what comes out of it: plain values, named fields.

A statement's parameters are built from these by name, so adding a column is one edit here,
one in the migration (and ``schema.py``), and one in each adapter's SQL.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

__all__ = [
    "LOG_START",
    "AccountBalance",
    "BalanceChange",
    "BalanceTotals",
    "Checkpoint",
    "Commit",
    "DisputeQuery",
    "KeyClaim",
    "KeyRecord",
    "LogFilter",
    "MoneyOutQuery",
    "MoneyOutRow",
    "NewEvent",
    "OrderQuery",
    "OrderRow",
    "PerformanceCounts",
    "PerformanceOrder",
    "Posting",
    "RecordedEvent",
    "StoredAnswer",
]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append; its id is made by the caller, so a retried append is a no-op."""

    event_id: uuid.UUID
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    schema_version: int = 1


class Checkpoint(NamedTuple):
    """Where a log reader stands: compare and store it as the pair, never the position alone.

    ``transaction_id`` is the writer's PostgreSQL xid8 (always 0 on SQLite).
    """

    transaction_id: int
    position: int


LOG_START = Checkpoint(0, 0)


@dataclass(frozen=True, slots=True)
class LogFilter:
    """A narrowed read of the log: only these types (none: any), only this stream (None: any)."""

    types: tuple[str, ...] = ()
    stream_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """A stored event, upcast to the newest schema version of its type."""

    position: int
    stream_id: str
    version: int
    event_id: uuid.UUID
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    transaction_id: int

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.transaction_id, self.position)


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One ``order_view`` row: the order's state document plus the columns lists filter on."""

    order_id: str
    version: int
    status: str
    buyer_id: str
    supplier_id: str
    currency: str
    total: int
    next_timer_at: datetime | None
    dispute_status: str | None  # open / escalated while a dispute is, else None
    dispute_opened_at: datetime | None
    created_at: datetime
    updated_at: datetime
    state: dict[str, Any]
    client_reference: str | None = None
    metadata: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class BalanceChange:
    """One party's signed change of balance, made by the event at ``event_version``.

    ``position`` is the event's log position: known to a rebuild, filled in by the adapter
    for a command (its events get their positions in the same write).
    """

    party_id: str
    currency: str
    order_id: str
    event_version: int
    held: int = 0
    released: int = 0
    refunded: int = 0
    fees: int = 0
    position: int | None = None


@dataclass(frozen=True, slots=True)
class BalanceTotals:
    """A party's summed balance in one currency."""

    party_id: str
    currency: str
    held: int
    released: int
    refunded: int
    fees: int


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a ledger transfer: ``amount`` (signed, in ISO 4217 minor units) on
    ``account``. A transfer's legs sum to zero. ``phase`` is TigerBeetle's: ``pending`` holds
    money on its way out; ``posted`` (with ``pending_id``) settles it, ``voided`` releases it;
    ``posted`` without one is money that simply moved. ``id`` is given by the store."""

    transfer_id: str
    order_id: str
    event_id: str
    at: datetime
    account: str
    currency: str
    amount: int
    phase: str
    pending_id: str | None = None
    legacy: bool = False
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """An account's posted and pending sums in one currency, and what left it for the bank
    (``paid_out``: payouts paid or refunds succeeded, returns taken off, pre-1.1 ones in)."""

    account: str
    currency: str
    posted: int
    pending: int
    paid_out: int = 0


@dataclass(frozen=True, slots=True)
class MoneyOutRow:
    """A payout (``kind`` payout, ``party_id`` who is paid) or a refund (``kind`` refund,
    ``party_id`` the buyer, through ``payment_provider_ref``) as it stands."""

    id: str
    kind: str
    order_id: str
    party_id: str
    currency: str
    amount: int
    status: str
    provider_ref: str | None
    failure_reason: str | None
    payment_provider_ref: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MoneyOutQuery:
    """A page of payouts or refunds, newest first, before (created_at, id); ``parties`` keeps
    those whose party (who is paid, or the refunded buyer) is one of them (None: every one)."""

    kind: str
    limit: int
    parties: frozenset[str] | None = None
    status: str | None = None
    party_id: str | None = None
    order_id: str | None = None
    before: tuple[datetime, str] | None = None


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """An HTTP answer kept under an Idempotency-Key: status, body, the headers to replay, the
    hash of the request body it answers, and (completing a claim) the claim's holder."""

    scope: str
    key: str
    status: int
    body: bytes
    headers: dict[str, str]
    body_hash: str
    created_at: datetime
    expires_at: datetime
    holder: str | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one command writes, atomically and only if the stream is still at
    ``expected_version``: its events, the order's row, balance changes and the answer."""

    stream_id: str
    expected_version: int
    events: list[NewEvent]
    view: OrderRow
    balances: list[BalanceChange]
    recorded_at: datetime
    answer: StoredAnswer | None = None
    postings: list[Posting] = field(default_factory=list)
    money_out: list[MoneyOutRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """A request's claim on an Idempotency-Key."""

    scope: str
    key: str
    body_hash: str
    now: datetime
    expires_at: datetime
    # An in-flight claim of the same body made before this is taken over (its holder died).
    abandoned_before: datetime
    holder: str  # only the holder completes or releases the claim


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is stored under a key someone else claimed (or answered) first."""

    body_hash: str
    status: str  # in_flight | done
    response_status: int | None
    response_body: str | None
    response_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """A page of orders, newest first; ``before`` is the (created_at, order_id) of the last row
    of the previous page; ``parties`` keeps orders one of them is in (None: every order)."""

    limit: int
    parties: frozenset[str] | None = None
    status: str | None = None
    buyer_id: str | None = None
    supplier_id: str | None = None
    before: tuple[datetime, str] | None = None
    # The buyer's bookkeeping: with ``buyer_parties``, only orders one of them is the buyer of.
    buyer_parties: frozenset[str] | None = None
    client_reference: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()  # every (key, value) must be in the metadata
    created_gte: datetime | None = None
    created_lt: datetime | None = None


@dataclass(frozen=True, slots=True)
class DisputeQuery:
    """A page of the mediation queue, oldest dispute first, after (opened_at, order_id)."""

    limit: int
    status: str | None = None
    after: tuple[datetime, str] | None = None


@dataclass(frozen=True, slots=True)
class PerformanceCounts:
    """A supplier's performance counters in one currency (``supplier_performance``): each
    order counts in the currency of its terms; money is in that currency's minor units."""

    supplier_id: str
    currency: str
    orders_accepted: int = 0
    shipped_on_time: int = 0
    shipped_late: int = 0
    completed: int = 0
    disputed: int = 0
    claims: int = 0
    paid: int = 0
    refunded: int = 0


@dataclass(frozen=True, slots=True)
class PerformanceOrder:
    """What the supplier performance projection keeps of one order
    (``supplier_performance_orders``); ``state`` is the order's state document until the order
    is terminal (the projection folds it with the domain's ``evolve`` to know its status)."""

    order_id: str
    supplier_id: str
    currency: str
    ship_deadline: datetime
    accepted_at: datetime | None = None
    shipped_at: datetime | None = None
    shipped_on_time: bool | None = None
    completed: bool = False
    disputed: bool = False
    claimed: bool = False
    paid: int = 0
    refunded: int = 0
    state: dict[str, Any] | None = field(default=None, compare=True)
