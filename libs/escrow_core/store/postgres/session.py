"""One attempt at a command on PostgreSQL: a pooled asyncpg connection and no transaction held
while deciding. The snapshot is one query; everything the command writes is ONE statement
(``sql.COMMIT``), atomic by itself and guarded by the stream version. That is the same
optimistic concurrency a transaction at READ COMMITTED around the read would give (it guards
nothing more), in two round trips. A race lost at the unique key aborts the whole statement.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from escrow_core.store import event_sql as ev
from escrow_core.store.errors import ConcurrencyError
from escrow_core.store.postgres import sql
from escrow_core.store.records import Commit, RecordedEvent, StoredAnswer
from escrow_core.store.schema import EVENT_ID_KEY, STREAM_VERSION_KEY

if TYPE_CHECKING:
    from escrow_core.store.postgres.store import PostgresStore


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


class PostgresSession:
    def __init__(self, store: "PostgresStore", connection: asyncpg.Connection) -> None:
        self.store = store
        self.connection = connection

    async def snapshot(self, order_id: str) -> dict[str, Any] | None:
        document: dict[str, Any] | None = await self.connection.fetchval(sql.SNAPSHOT.sql, order_id)
        return document

    async def stream(self, order_id: str) -> list[RecordedEvent]:
        rows = await self.connection.fetch(sql.STREAM.sql, order_id)
        return [self.store.recorded(row) for row in rows]

    async def now(self) -> datetime:
        moment: datetime = await self.store.now_raw(self.connection)
        return moment

    async def commit(self, commit: Commit) -> list[RecordedEvent]:
        ev.check_commit(commit)
        values = commit_values(commit)
        try:
            rows = await self.connection.fetch(sql.COMMIT.sql, *sql.COMMIT.args(values))
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name in (STREAM_VERSION_KEY, EVENT_ID_KEY):
                raise ConcurrencyError(commit.stream_id, commit.expected_version) from error
            raise
        if not rows:
            raise ConcurrencyError(commit.stream_id, commit.expected_version)
        stored = {int(row["version"]): row for row in rows}
        return [
            RecordedEvent(
                position=int(stored[version]["position"]),
                stream_id=commit.stream_id,
                version=version,
                event_id=new.event_id,
                type=new.type,
                schema_version=new.schema_version,
                data=new.data,
                metadata=new.metadata,
                recorded_at=commit.recorded_at,
                transaction_id=int(stored[version]["transaction_id"]),
            )
            for version, new in enumerate(commit.events, start=commit.expected_version + 1)
        ]

    async def save_answer(self, answer: StoredAnswer) -> None:
        await self.connection.execute(
            sql.SAVE_ANSWER.sql, *sql.SAVE_ANSWER.args(answer_values(answer))
        )


def answer_values(answer: StoredAnswer | None) -> dict[str, Any]:
    return {
        "a_scope": answer.scope if answer else None,
        "a_key": answer.key if answer else None,
        "a_status": answer.status if answer else None,
        "a_body": answer.body.decode() if answer else None,
        "a_headers": json_text(answer.headers) if answer else None,
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
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "b_versions": [b.event_version for b in balances],
        "b_parties": [b.party_id for b in balances],
        "b_currencies": [b.currency for b in balances],
        "b_held": [b.held for b in balances],
        "b_released": [b.released for b in balances],
        "b_refunded": [b.refunded for b in balances],
        "b_fees": [b.fees for b in balances],
        **answer_values(commit.answer),
    }
