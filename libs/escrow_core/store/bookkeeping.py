"""The bookkeeping both adapters run alike (SQLAlchemy Core): the sandbox clock, the
Idempotency-Key records, the dispatcher's checkpoint and emptying the projections."""

from abc import abstractmethod
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store import statements as q
from escrow_core.store.errors import ClaimLost
from escrow_core.store.interface import DELIVERIES_CHANNEL, DeliveryPlanner, Store
from escrow_core.store.records import Checkpoint, KeyClaim, KeyRecord, RecordedEvent, StoredAnswer
from escrow_core.store.schema import (
    idempotency_keys,
    ledger_postings,
    money_out,
    order_view,
    party_balances,
    webhook_deliveries,
    webhook_dispatch_checkpoint,
)


class BatchHandler(Protocol):
    async def __call__(self, conn: AsyncConnection, batch: list[RecordedEvent]) -> int:
        """Write what a batch of the log makes, in ``conn``'s transaction; returns a count."""


def key_record(row: Mapping[str, Any]) -> KeyRecord:
    return KeyRecord(
        row["body_hash"],
        row["status"],
        row["response_status"],
        row["response_body"],
        dict(row["response_headers"] or {}),
    )


class BookkeepingStore(Store):
    """The half of ``CoreStore`` that keeps time, keys and checkpoints."""

    sandbox: bool

    @abstractmethod
    async def read_log_in(
        self, conn: AsyncConnection, after: Checkpoint, limit: int
    ) -> list[RecordedEvent]:
        """``read_log`` in ``conn``'s transaction."""

    # --- the clock ------------------------------------------------------------------------
    async def now(self) -> datetime:
        if not self.sandbox:
            return q.wall_clock()
        async with self.read() as conn:
            return await self.now_in(conn)

    async def now_in(self, conn: AsyncConnection) -> datetime:
        wall = q.wall_clock()
        if not self.sandbox:
            return wall
        offset = (await conn.execute(q.CLOCK_OFFSET)).scalar_one_or_none()
        return wall + timedelta(seconds=offset or 0)

    async def advance_clock(self, seconds: int, conn: AsyncConnection | None = None) -> int:
        if not self.sandbox:
            raise RuntimeError("the clock moves only in sandbox mode")
        if conn is None:
            async with self.transaction() as own:
                return await self.advance_clock(seconds, own)
        return int((await conn.execute(q.ADVANCE_CLOCK, {"seconds": seconds})).scalar_one())

    # --- Idempotency-Key answers ----------------------------------------------------------
    async def claim_key(self, claim: KeyClaim) -> KeyRecord | None:
        fresh = q.fresh_claim(claim)
        async with self.transaction() as conn:
            if await self.insert_ignoring(conn, idempotency_keys, [fresh], ["scope", "key"]):
                return None
            if (await conn.execute(q.take_over(claim), fresh)).rowcount == 1:
                return None
            row = (await conn.execute(q.key_record(claim.scope, claim.key))).one()
        return key_record(row._mapping)

    async def complete_claim(self, answer: StoredAnswer, conn: AsyncConnection) -> None:
        if (await conn.execute(q.COMPLETE_CLAIM, q.answer_params(answer))).rowcount != 1:
            raise ClaimLost(f"the claim on Idempotency-Key {answer.key!r} was taken over")

    async def release_key(self, scope: str, key: str, holder: str) -> None:
        async with self.transaction() as conn:
            await conn.execute(q.RELEASE_KEY, {"scope": scope, "key": key, "holder": holder})

    async def keep_answer(self, conn: AsyncConnection, answer: StoredAnswer) -> bool:
        """An order command's answer, in ``conn``'s transaction; False if a live one is kept."""
        result = await conn.execute(q.keep_answer(self.upsert(idempotency_keys), answer))
        return bool(result.rowcount)

    async def live_answer_in(
        self, conn: AsyncConnection, scope: str, key: str, now: datetime
    ) -> KeyRecord | None:
        row = (await conn.execute(q.live_answer(scope, key, now))).first()
        return None if row is None else key_record(row._mapping)

    async def purge_answers(self, now: datetime, *, limit: int) -> int:
        async with self.transaction() as conn:
            result = await conn.execute(q.purge_answers(now, limit))
        return int(result.rowcount)

    # --- checkpoints and projections ------------------------------------------------------
    async def follow_log(
        self, name: str, handle: BatchHandler, *, batch_size: int
    ) -> tuple[int, int]:
        """The log readers' one step (the webhook dispatcher, the asynchronous projections):
        read the log after checkpoint ``name`` with the commit-order-safe reader, let
        ``handle`` write what the batch makes in the same transaction, and move the checkpoint
        there too. A crash leaves both as they were and the batch is read again. Returns
        (events read, what ``handle`` reports); (0, 0) when another reader has the turn."""
        # Look before taking the lock: an idle poll then costs one read, not a write
        # transaction (a transaction id on PostgreSQL, the write lock on SQLite).
        async with self.read() as conn:
            row = (await conn.execute(q.checkpoint(name, lock=False))).one()
            if not await self.read_log_in(conn, Checkpoint(int(row[0]), int(row[1])), 1):
                return 0, 0
        async with self.transaction() as conn:
            # Held to the commit: one reader at a time (SKIP LOCKED: another skips its turn).
            row = (await conn.execute(q.checkpoint(name, lock=True))).first()
            if row is None:
                return 0, 0
            batch = await self.read_log_in(conn, Checkpoint(int(row[0]), int(row[1])), batch_size)
            if not batch:
                return 0, 0
            written = await handle(conn, batch)
            await self.move_checkpoint(conn, name, batch[-1].checkpoint)
        return len(batch), written

    async def follow_with(
        self, name: str, handle: BatchHandler, batch: list[RecordedEvent]
    ) -> tuple[int, int]:
        """``follow_log`` with a batch read elsewhere (a rebuild streams ``whole_log``): waits
        for the checkpoint's lock, hands ``handle`` the events of ``batch`` after the
        checkpoint (a reader that moved on meanwhile has applied the rest) and moves it."""
        async with self.transaction() as conn:
            row = (await conn.execute(q.checkpoint(name, lock=True, wait=True))).one()
            at = Checkpoint(int(row[0]), int(row[1]))
            unread = [event for event in batch if event.checkpoint > at]
            if not unread:
                return 0, 0
            written = await handle(conn, unread)
            await self.move_checkpoint(conn, name, unread[-1].checkpoint)
        return len(unread), written

    async def move_checkpoint(self, conn: AsyncConnection, name: str, to: Checkpoint) -> None:
        await conn.execute(
            webhook_dispatch_checkpoint.update()
            .where(webhook_dispatch_checkpoint.c.name == name)
            .values(transaction_id=to.transaction_id, position=to.position)
        )

    async def dispatch(
        self, name: str, plan: DeliveryPlanner, *, batch_size: int
    ) -> tuple[int, int]:
        async def deliveries(conn: AsyncConnection, batch: list[RecordedEvent]) -> int:
            rows = await plan(batch)
            written = await self.insert_ignoring(
                conn, webhook_deliveries, rows, ["endpoint_id", "event_id"]
            )
            if written:
                await self.signal_in(conn, DELIVERIES_CHANNEL)  # every worker's sender
            return written

        return await self.follow_log(name, deliveries, batch_size=batch_size)

    async def reset_projections(self) -> None:
        async with self.transaction() as conn:
            await conn.execute(order_view.delete())
            await conn.execute(party_balances.delete())
            await conn.execute(ledger_postings.delete())
            await conn.execute(money_out.delete())
