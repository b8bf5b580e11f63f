"""The two ways events reach the log, so one contract suite covers both on both backends:

    append    ``Store.append``: events of a stream that is no order
    commit    ``CommandSession.commit``: a command's whole write (events, the order's row,
              balance changes, the Idempotency-Key answer), the store's hot path

A write at a stale version must raise ``ConcurrencyError`` and write nothing, whichever is used.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from escrow_core.store import (
    BalanceChange,
    Commit,
    NewEvent,
    OrderRow,
    RecordedEvent,
    Store,
    StoredAnswer,
)
from support.events import now

WRITERS = ("append", "commit")


def order_row(stream_id: str, version: int, at: datetime, *, status: str = "placed") -> OrderRow:
    """A minimal hand-made ``order_view`` row for ``stream_id`` at ``version``."""
    return OrderRow(
        order_id=stream_id,
        version=version,
        status=status,
        buyer_id=f"pty_buyer_{stream_id}",
        supplier_id=f"pty_supplier_{stream_id}",
        currency="USD",
        total=125_000,
        next_timer_at=None,
        dispute_status=None,
        dispute_opened_at=None,
        created_at=at,
        updated_at=at,
        state={"version": version, "status": status},
    )


def make_commit(
    stream_id: str,
    expected: int,
    events: Sequence[NewEvent],
    *,
    recorded_at: datetime | None = None,
    balances: Sequence[BalanceChange] = (),
    answer: StoredAnswer | None = None,
) -> Commit:
    at = recorded_at or now()
    return Commit(
        stream_id=stream_id,
        expected_version=expected,
        events=list(events),
        view=order_row(stream_id, expected + len(events), at),
        balances=list(balances),
        recorded_at=at,
        answer=answer,
    )


async def commit(store: Store, commit: Commit) -> list[RecordedEvent]:
    """One command session's write, as the command service makes it."""
    async with store.command() as session:
        return await session.commit(commit)


@dataclass(frozen=True)
class Writer:
    """Writes events to a stream through ``append`` or a command session's ``commit``."""

    name: str
    store: Store

    async def __call__(
        self,
        stream_id: str,
        expected: int,
        events: Sequence[NewEvent],
        *,
        recorded_at: datetime | None = None,
    ) -> list[RecordedEvent]:
        at = recorded_at or now()
        if self.name == "append":
            return await self.store.append(stream_id, expected, events, recorded_at=at)
        return await commit(self.store, make_commit(stream_id, expected, events, recorded_at=at))
