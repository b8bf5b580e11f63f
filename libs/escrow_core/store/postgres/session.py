"""One attempt at a command on PostgreSQL: a pooled asyncpg connection and no transaction held
while deciding. The snapshot is one query; everything the command writes is ONE statement
(``sql.COMMIT``), atomic by itself and guarded by the stream version. That is the same
optimistic concurrency a transaction at READ COMMITTED around the read would give (it guards
nothing more), in two round trips. A race lost at the unique key aborts the whole statement.
"""

import asyncio
import hashlib
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from escrow_core.store import event_sql as ev
from escrow_core.store.bookkeeping import key_record
from escrow_core.store.errors import ConcurrencyError, DuplicateClientReference, KeyBusy
from escrow_core.store.interface import EVENTS_CHANNEL
from escrow_core.store.postgres import sql
from escrow_core.store.records import (
    Commit,
    KeyRecord,
    MoneyOutRow,
    Posting,
    RecordedEvent,
    StoredAnswer,
)
from escrow_core.store.schema import CLIENT_REFERENCE_KEY, EVENT_ID_KEY, STREAM_VERSION_KEY

if TYPE_CHECKING:
    from escrow_core.store.postgres.store import PostgresStore

KEY_POLL_SECONDS = 0.02


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


class PostgresSession:
    def __init__(self, store: "PostgresStore", connection: asyncpg.Connection) -> None:
        self.store = store
        self.connection = connection
        self.held_lock: int | None = None  # the advisory lock of the Idempotency-Key held
        # The snapshot read with the key's turn (``hold_key``'s ``snapshot_of``), by order id,
        # handed out once by ``snapshot``.
        self.prefetched: tuple[str, dict[str, Any] | None] | None = None

    async def hold_key(
        self,
        scope: str,
        key: str,
        now: datetime,
        *,
        wait_seconds: float,
        snapshot_of: str | None = None,
    ) -> KeyRecord | None:
        lock = lock_id(scope, key)
        values = {"lock_id": lock, "scope": scope, "key": key, "now": now, "order_id": snapshot_of}
        statement = sql.HOLD_KEY if snapshot_of is None else sql.HOLD_KEY_AND_SNAPSHOT
        deadline = time.monotonic() + wait_seconds
        while True:
            row = await self.connection.fetchrow(statement.sql, *statement.args(values))
            if row["held"]:
                self.held_lock = lock
                if row["status"] is not None:
                    return key_record(row)
                if snapshot_of is not None:
                    self.prefetched = (snapshot_of, row["state"])
                return None
            if time.monotonic() >= deadline:
                raise KeyBusy(f"Idempotency-Key {key!r} is held by another request")
            await asyncio.sleep(KEY_POLL_SECONDS)

    async def release_key(self) -> None:
        if self.held_lock is not None:
            await self.connection.fetchval(sql.UNLOCK_KEY.sql, self.held_lock)
            self.held_lock = None

    async def snapshot(self, order_id: str) -> dict[str, Any] | None:
        if self.prefetched is not None and self.prefetched[0] == order_id:
            document = self.prefetched[1]
            self.prefetched = None
            return document
        stored: dict[str, Any] | None = await self.connection.fetchval(sql.SNAPSHOT.sql, order_id)
        return stored

    async def stream(self, order_id: str) -> list[RecordedEvent]:
        rows = await self.connection.fetch(sql.STREAM.sql, order_id)
        return [self.store.recorded(row) for row in rows]

    async def now(self) -> datetime:
        moment: datetime = await self.store.now_raw(self.connection)
        return moment

    async def commit(self, commit: Commit) -> list[RecordedEvent]:
        ev.check_commit(commit)
        values = {**commit_values(commit), "lock_id": self.held_lock}
        try:
            rows = await self.connection.fetch(sql.COMMIT.sql, *sql.COMMIT.args(values))
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name in (STREAM_VERSION_KEY, EVENT_ID_KEY):
                raise ConcurrencyError(commit.stream_id, commit.expected_version) from error
            if error.constraint_name == CLIENT_REFERENCE_KEY:
                raise DuplicateClientReference(
                    commit.view.buyer_id, commit.view.client_reference
                ) from error
            raise
        if not rows:  # the stream moved on, or the key got its answer from a duplicate
            raise ConcurrencyError(commit.stream_id, commit.expected_version)
        if rows[0]["unlocked"]:
            self.held_lock = None
        self.store.signal_soon(EVENTS_CHANNEL)
        stored = {int(row["version"]): row for row in rows}
        return [
            ev.written(
                new,
                commit.stream_id,
                version,
                stored[version]["position"],
                stored[version]["transaction_id"],
                commit.recorded_at,
                self.store.upcasters,
            )
            for version, new in enumerate(commit.events, start=commit.expected_version + 1)
        ]

    async def save_answer(self, answer: StoredAnswer) -> None:
        await self.connection.execute(
            sql.KEEP_ANSWER.sql, *sql.KEEP_ANSWER.args(answer_values(answer))
        )


def lock_id(scope: str, key: str) -> int:
    """The advisory lock of an Idempotency-Key: 64 bits of its hash (a collision only makes
    two keys take turns)."""
    digest = hashlib.sha256(f"{scope}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def answer_values(answer: StoredAnswer | None) -> dict[str, Any]:
    return {
        "a_scope": answer.scope if answer else None,
        "a_key": answer.key if answer else None,
        "a_body_hash": answer.body_hash if answer else None,
        "a_status": answer.status if answer else None,
        "a_body": answer.body.decode() if answer else None,
        "a_headers": json_text(answer.headers) if answer else None,
        "a_created_at": answer.created_at if answer else None,
        "a_expires_at": answer.expires_at if answer else None,
    }


def commit_values(commit: Commit) -> dict[str, Any]:
    """``sql.COMMIT``'s parameters, by name."""
    view, new, balances = commit.view, commit.events, commit.balances
    return {
        "order_id": commit.stream_id,
        "expected_version": commit.expected_version,
        "recorded_at": commit.recorded_at,
        "versions": list(
            range(commit.expected_version + 1, commit.expected_version + 1 + len(new))
        ),
        "event_ids": [e.event_id for e in new],
        "types": [e.type for e in new],
        "schema_versions": [e.schema_version for e in new],
        "datas": [json_text(e.data) for e in new],
        "metadatas": [json_text(e.metadata) for e in new],
        "version": view.version,
        "status": view.status,
        "buyer_id": view.buyer_id,
        "supplier_id": view.supplier_id,
        "currency": view.currency,
        "total": view.total,
        "next_timer_at": view.next_timer_at,
        "dispute_status": view.dispute_status,
        "dispute_opened_at": view.dispute_opened_at,
        "state": json_text(view.state),
        "client_reference": view.client_reference,
        "metadata": json_text(view.metadata),
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "b_versions": [b.event_version for b in balances],
        "b_parties": [b.party_id for b in balances],
        "b_currencies": [b.currency for b in balances],
        "b_held": [b.held for b in balances],
        "b_released": [b.released for b in balances],
        "b_refunded": [b.refunded for b in balances],
        "b_fees": [b.fees for b in balances],
        **posting_values(commit.postings),
        **money_out_values(commit.money_out),
        **answer_values(commit.answer),
    }


def posting_values(postings: Sequence[Posting]) -> dict[str, Any]:
    return {
        "p_transfer_ids": [p.transfer_id for p in postings],
        "p_event_ids": [p.event_id for p in postings],
        "p_ats": [p.at for p in postings],
        "p_accounts": [p.account for p in postings],
        "p_currencies": [p.currency for p in postings],
        "p_amounts": [p.amount for p in postings],
        "p_phases": [p.phase for p in postings],
        "p_pending_ids": [p.pending_id for p in postings],
        "p_legacy": [p.legacy for p in postings],
    }


def money_out_values(rows: Sequence[MoneyOutRow]) -> dict[str, Any]:
    return {
        "m_ids": [r.id for r in rows],
        "m_kinds": [r.kind for r in rows],
        "m_orders": [r.order_id for r in rows],
        "m_parties": [r.party_id for r in rows],
        "m_currencies": [r.currency for r in rows],
        "m_amounts": [r.amount for r in rows],
        "m_statuses": [r.status for r in rows],
        "m_provider_refs": [r.provider_ref for r in rows],
        "m_failure_reasons": [r.failure_reason for r in rows],
        "m_payment_refs": [r.payment_provider_ref for r in rows],
        "m_created_ats": [r.created_at for r in rows],
        "m_updated_ats": [r.updated_at for r in rows],
    }
