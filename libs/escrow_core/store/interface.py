"""The one store interface. Each backend implements it in one adapter that owns all its SQL:
``store/postgres`` (asyncpg) and ``store/sqlite`` (aiosqlite through SQLAlchemy Core).

The application layer speaks only to this. ``transaction()`` and ``read()`` hand out a
SQLAlchemy connection for the few modules whose statements are the same on both backends
(parties and keys, webhook endpoints and deliveries); every statement that differs per backend
is a method here.
"""

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store.records import (
    AccountBalance,
    BalanceChange,
    BalanceTotals,
    Checkpoint,
    Commit,
    DisputeQuery,
    KeyClaim,
    KeyRecord,
    LogFilter,
    MoneyOutQuery,
    MoneyOutRow,
    OrderQuery,
    OrderRow,
    PerformanceCounts,
    PerformanceOrder,
    Posting,
    RecordedEvent,
    StoredAnswer,
)
from escrow_core.store.upcasting import Upcasters

# Commit signals (``Store.listen``): a command wrote events; a dispatch wrote deliveries.
EVENTS_CHANNEL = "escrow_events"
DELIVERIES_CHANNEL = "escrow_deliveries"


class CommandSession(Protocol):
    """One attempt at a command: read the order, decide, write it all at once.

    PostgreSQL: no transaction is held while deciding; ``commit`` is one statement guarded by
    the stream version. SQLite: the session is one BEGIN IMMEDIATE transaction.
    """

    async def snapshot(self, order_id: str) -> dict[str, Any] | None:
        """The order's state document in ``order_view``, if it has a row."""

    async def stream(self, order_id: str) -> list[RecordedEvent]:
        """Every event of the stream, in order."""

    async def now(self) -> datetime:
        """The service clock (the sandbox offset applied)."""

    async def commit(self, commit: Commit) -> list[RecordedEvent]:
        """Write ``commit`` atomically; ``ConcurrencyError`` if the stream has moved."""

    async def hold_key(
        self,
        scope: str,
        key: str,
        now: datetime,
        *,
        wait_seconds: float,
        snapshot_of: str | None = None,
    ) -> KeyRecord | None:
        """Take this attempt's turn on an Idempotency-Key, waiting up to ``wait_seconds`` for
        a request holding it (``KeyBusy`` after that), and return the live answer kept under
        it, if any. The turn ends with the session; ``commit`` and ``save_answer`` then keep
        the answer only if none is kept yet (a commit that finds one writes nothing and is a
        ``ConcurrencyError``).

        ``snapshot_of``: the order the attempt will read next; a backend may read its snapshot
        in the same round trip, and ``snapshot`` then answers from that read (PostgreSQL).
        """

    async def save_answer(self, answer: StoredAnswer) -> None:
        """Keep the answer of a command that wrote nothing (a no-op, a refusal)."""


class PerformanceFold(Protocol):
    def __call__(
        self, known: dict[str, PerformanceOrder], batch: list[RecordedEvent]
    ) -> tuple[list[PerformanceOrder], list[PerformanceCounts]]:
        """Fold a batch of the log into the supplier performance projection: ``known`` has
        the stored rows of the batch's streams that have one; returns the rows to write and
        the changes to add to the counters."""


class DeliveryPlanner(Protocol):
    async def __call__(self, batch: list[RecordedEvent]) -> list[dict[str, Any]]:
        """The ``webhook_deliveries`` rows a batch of the log makes."""


class Store(ABC):
    """One database: events, the inline projections, idempotency answers, checkpoints."""

    dialect: Literal["postgresql", "sqlite"]
    url: str
    upcasters: Upcasters

    # --- connections for backend-neutral SQLAlchemy Core statements ----------------------
    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction: commits on exit, rolls back on an exception."""

    @abstractmethod
    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for queries (autocommit on PostgreSQL, one snapshot on SQLite)."""

    @abstractmethod
    def upsert(self, table: sa.Table) -> Any:
        """An INSERT that knows this backend's ``ON CONFLICT``."""

    async def insert_ignoring(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        rows: Sequence[dict[str, Any]],
        keys: list[str],
    ) -> int:
        """INSERT ``rows`` skipping those whose ``keys`` are taken; returns how many went in."""
        if not rows:
            return 0
        insert = self.upsert(table).on_conflict_do_nothing(index_elements=keys)
        # Counted from RETURNING: asyncpg's executemany reports no rowcount (-1).
        returning = insert.returning(*(table.c[key] for key in keys))
        return len((await conn.execute(returning, list(rows))).all())

    @abstractmethod
    async def dispose(self) -> None:
        """Close every connection."""

    # --- commit signals -------------------------------------------------------------------
    async def listen(self, channels: Sequence[str], wake: Callable[[str], None]) -> None:
        """Call ``wake(channel)`` after each commit that signalled one of ``channels`` (and
        once for each whenever listening (re)starts), until cancelled. A signal is a hint to
        look now, never the data. This default (SQLite: no signals) returns at once, and the
        caller's polling is all there is."""
        return

    async def signal_in(self, conn: AsyncConnection, channel: str) -> None:
        """Signal ``channel`` when ``conn``'s transaction commits (nothing on SQLite)."""
        return

    # --- commands -------------------------------------------------------------------------
    @abstractmethod
    def command(self) -> AbstractAsyncContextManager[CommandSession]:
        """A session for one attempt at a command."""

    @abstractmethod
    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Any], *, recorded_at: datetime
    ) -> list[RecordedEvent]:
        """Append events to a stream that is no order (no projection row, no answer).

        Retried with the same event ids it is a no-op returning the stored events;
        ``EventIdConflict`` for ids reused otherwise; ``ConcurrencyError`` if the stream moved.
        """

    # --- reading orders and streams -------------------------------------------------------
    @abstractmethod
    async def snapshot(self, order_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def stream(
        self, stream_id: str, *, after_version: int = 0, up_to_version: int | None = None
    ) -> list[RecordedEvent]:
        """The stream's events with ``after_version < version <= up_to_version``, in order."""

    @abstractmethod
    async def list_orders(self, query: OrderQuery) -> list[tuple[str, dict[str, Any]]]:
        """(order_id, state document) of a page of orders (see ``OrderQuery``)."""

    @abstractmethod
    async def order_with_client_reference(self, buyer_id: str, reference: str) -> str | None:
        """The id of ``buyer_id``'s order with ``client_reference`` ``reference``, if any."""

    @abstractmethod
    async def list_disputes(self, query: DisputeQuery) -> list[tuple[str, dict[str, Any]]]:
        """(order_id, state document) of a page of the mediation queue (``DisputeQuery``)."""

    @abstractmethod
    async def parties_of(self, order_ids: set[str]) -> dict[str, tuple[str, str]]:
        """(buyer_id, supplier_id) of each of ``order_ids`` with an ``order_view`` row (a
        rebuild empties the rows first: a reader that must not miss an order reads the log)."""

    @abstractmethod
    async def due_for_timers(self, now: datetime, limit: int) -> list[tuple[str, int]]:
        """Orders with a timer due at ``now``: (order_id, version), soonest first."""

    @abstractmethod
    async def balances_of(self, party_id: str) -> list[BalanceTotals]:
        """The party's balances per currency, summed from its ledger of changes."""

    # --- money out and the ledger ---------------------------------------------------------
    @abstractmethod
    async def find_money_out(self, object_id: str, kind: str) -> MoneyOutRow | None:
        """The payout or refund (``kind``) with this id, as it stands."""

    @abstractmethod
    async def list_money_out(self, query: MoneyOutQuery) -> list[MoneyOutRow]:
        """A page of payouts or refunds (``MoneyOutQuery``)."""

    @abstractmethod
    async def ledger_of(
        self, accounts: Sequence[str], *, after: int | None, limit: int
    ) -> list[Posting]:
        """Postings on ``accounts``, oldest first, after posting id ``after``."""

    @abstractmethod
    async def account_balances(
        self, accounts: Sequence[str] | None, *, before: datetime | None = None
    ) -> list[AccountBalance]:
        """Posted and pending sums of ``accounts`` (None: every account) per currency, of the
        postings before ``before`` if given."""

    @abstractmethod
    def all_postings(
        self, *, batch_size: int, since: datetime | None = None
    ) -> AsyncIterator[list[Posting]]:
        """The whole ledger (from ``since``), oldest first, in batches."""

    @abstractmethod
    async def ledger_check(
        self,
    ) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, str, int, int]]]:
        """(transfers that do not sum to zero: id, currency, sum; and each order's account
        sums: order_id, account, currency, posted, pending), for ``escrow verify``."""

    @abstractmethod
    async def find_party(self, party_id: str) -> dict[str, Any] | None:
        """The ``parties`` row (a hot lookup: every order placed, every agent request)."""

    @abstractmethod
    async def find_parties(self, party_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The ``parties`` rows of those ids that exist, in one round trip."""

    # --- the log --------------------------------------------------------------------------
    @abstractmethod
    async def read_log(self, after: Checkpoint, *, limit: int = 1000) -> list[RecordedEvent]:
        """Up to ``limit`` events of every stream after ``after``, in commit-safe order.

        On PostgreSQL an event whose transaction might still be running is held back, so an
        empty answer means "nothing safe to read yet", not the end of the log for good.
        """

    @abstractmethod
    async def read_log_matching(
        self, after: Checkpoint, only: LogFilter, *, limit: int
    ) -> list[RecordedEvent]:
        """``read_log`` narrowed by ``only``, in the same commit-safe order: on PostgreSQL an
        event whose transaction might still be running is held back alike."""

    @abstractmethod
    async def log_head(self) -> Checkpoint:
        """The checkpoint of the last event readable now."""

    @abstractmethod
    def whole_log(self, *, batch_size: int) -> AsyncIterator[list[RecordedEvent]]:
        """The log in commit-safe batches, to at least every event committed before the call."""

    @abstractmethod
    async def count_events(self) -> int: ...

    # --- the clock ------------------------------------------------------------------------
    @abstractmethod
    async def now(self) -> datetime:
        """The service clock: the wall clock plus the sandbox offset, in sandbox mode."""

    @abstractmethod
    async def advance_clock(self, seconds: int, conn: AsyncConnection | None = None) -> int:
        """Move the sandbox clock forward (in ``conn``'s transaction if given); returns the new
        total offset in seconds."""

    @abstractmethod
    async def schema_is_current(self) -> bool:
        """Whether the database answers and is at the migrations' head."""

    # --- Idempotency-Key answers ----------------------------------------------------------
    @abstractmethod
    async def claim_key(self, claim: KeyClaim) -> KeyRecord | None:
        """Claim the key (None), or what is stored under it when another request has it."""

    @abstractmethod
    async def complete_claim(self, answer: StoredAnswer, conn: AsyncConnection) -> None:
        """Complete the claim ``answer.holder`` holds, in ``conn``'s transaction; ``ClaimLost``
        if it no longer holds it (the transaction must then roll back)."""

    @abstractmethod
    async def release_key(self, scope: str, key: str, holder: str) -> None:
        """Forget an in-flight claim ``holder`` holds: the request did not run, so a retry may."""

    @abstractmethod
    async def purge_answers(self, now: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` records kept past their expiry; returns how many went."""

    # --- checkpoints and projections ------------------------------------------------------
    @abstractmethod
    async def dispatch(
        self, name: str, plan: DeliveryPlanner, *, batch_size: int
    ) -> tuple[int, int]:
        """Read the log after checkpoint ``name``, insert the deliveries ``plan`` makes of the
        batch (ignoring those already there) and move the checkpoint, in one transaction.
        Returns (events read, deliveries written); (0, 0) when another dispatcher has the turn.
        """

    # --- the supplier performance projection (asynchronous) -----------------------------
    @abstractmethod
    async def project_performance(self, fold: PerformanceFold, *, batch_size: int) -> int:
        """Apply the next batch of the log after the checkpoint ``supplier_performance`` with
        ``fold``, writing its rows and counters and moving the checkpoint in one transaction
        (as ``dispatch`` does). Returns the events read; 0 when nothing is new or another
        worker has the turn."""

    @abstractmethod
    async def project_performance_batch(
        self, fold: PerformanceFold, batch: list[RecordedEvent]
    ) -> int:
        """``project_performance`` with a batch read by the caller (a rebuild), waiting for
        the turn; events at or before the checkpoint are skipped. Returns the events applied."""

    @abstractmethod
    async def reset_performance(self) -> None:
        """Empty the projection and put its checkpoint at the start of the log."""

    @abstractmethod
    async def performance_of(
        self, supplier_id: str
    ) -> tuple[Checkpoint, list[PerformanceCounts], list[tuple[datetime | None, datetime | None]]]:
        """(the projection's checkpoint, the supplier's counters per currency, (accepted_at,
        shipped_at) of its shipped orders)."""

    @abstractmethod
    async def performance_snapshot(
        self,
    ) -> tuple[Checkpoint, list[PerformanceOrder], list[PerformanceCounts]]:
        """The checkpoint, every order row and every counter, read while no worker moves them
        (for ``escrow verify``)."""

    @abstractmethod
    async def reset_projections(self) -> None:
        """Empty the inline projections (a rebuild starts here)."""

    @abstractmethod
    async def write_projections(
        self,
        rows: Sequence[OrderRow],
        balances: Sequence[BalanceChange],
        postings: Sequence[Posting] = (),
        money_out: Sequence[MoneyOutRow] = (),
    ) -> None:
        """Upsert order rows and payouts/refunds, insert balance changes (with positions) and
        ledger postings, in one transaction."""

    @abstractmethod
    async def all_order_rows(self) -> dict[str, OrderRow]:
        """Every ``order_view`` row by order id (for ``escrow verify``)."""

    @abstractmethod
    async def all_balances(self) -> list[BalanceTotals]:
        """Every party's balance per currency (for ``escrow verify``)."""

    # --- escrow import (store/transfer.py) ------------------------------------------------
    @abstractmethod
    async def restore_rows(
        self, conn: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
    ) -> None:
        """Insert whole rows as exported, generated keys (positions, ids) included, so that
        rows written later get keys after the largest restored one."""

    @abstractmethod
    async def writer_transaction_id(self, conn: AsyncConnection) -> int:
        """The transaction id a log checkpoint names for events written in ``conn``'s
        transaction (its xid8 on PostgreSQL, 0 on SQLite)."""
