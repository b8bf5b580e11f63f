"""SQLAlchemy Core statements both adapters run alike, and their parameters built by name."""

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store.records import (
    BalanceChange,
    BalanceTotals,
    DisputeQuery,
    KeyClaim,
    NewEvent,
    OrderQuery,
    StoredAnswer,
)
from escrow_core.store.schema import (
    EVENT_ID_KEY,
    STREAM_VERSION_KEY,
    events,
    idempotency_keys,
    order_view,
    parties,
    party_balances,
    service_clock,
    webhook_dispatch_checkpoint,
)
from escrow_core.store.types import JSONDocument, UTCDateTime, UUIDText

c = events.c
EVENT_KEYS = (STREAM_VERSION_KEY, EVENT_ID_KEY)


def wall_clock() -> datetime:
    return datetime.now(UTC)


class EventStatements:
    """The statements on ``events``, with the backend's spelling of the transaction id (text
    of the xid8 on PostgreSQL, 0 on SQLite) and of the commit-safe log read."""

    def __init__(self, transaction_id: sa.ColumnElement[Any], log: sa.Executable) -> None:
        self.transaction_id = transaction_id
        self.columns = event_columns(transaction_id)
        self.stream = (
            sa.select(*self.columns)
            .where(c.stream_id == sa.bindparam("stream_id", type_=sa.Text))
            .where(c.version > sa.bindparam("after_version", type_=sa.Integer))
            .order_by(c.version)
        )
        self.stream_up_to = self.stream.where(c.version <= sa.bindparam("up_to", type_=sa.Integer))
        self.by_id = (
            sa.select(*self.columns)
            .where(c.event_id.in_(sa.bindparam("event_ids", type_=UUIDText, expanding=True)))
            .order_by(c.position)
        )
        self.log = log
        self._appends: dict[int, sa.Insert] = {}

    def append(self, count: int) -> sa.Insert:
        """Insert ``count`` events only if the stream is at the expected version and no id is
        taken (see ``_append``); built once per count."""
        if count not in self._appends:
            self._appends[count] = _append(count, self.transaction_id)
        return self._appends[count]


def event_columns(transaction_id: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
    """A stored event's columns, in the order ``CoreStore.recorded`` reads them."""
    return [
        c.position, c.stream_id, c.version, c.event_id, c.type, c.schema_version, c.data,
        c.metadata, c.recorded_at, transaction_id,
    ]  # fmt: skip


def _append(count: int, transaction_id: sa.ColumnElement[Any]) -> sa.Insert:
    """
        WITH new_events(version, event_id, ...) AS (VALUES (...), (...))
        INSERT INTO events (...) SELECT :stream_id, new_events.*, :recorded_at FROM new_events
        WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = :stream_id)
              = :expected_version
          AND NOT EXISTS (SELECT 1 FROM events JOIN new_events USING (event_id))
        ORDER BY version RETURNING position, version, transaction_id

    The conditions do not depend on the row, so it inserts every event or none: a partial
    append (a gap in the stream) cannot happen, and ORDER BY makes positions follow versions.
    ``ON CONFLICT DO NOTHING`` is deliberately not used: it would insert the rows that do not
    conflict. A concurrent writer's uncommitted row makes the insert wait on the unique key
    and then fail, which the store turns into ``ConcurrencyError``.
    """
    names = ("version", "event_id", "type", "schema_version", "data", "metadata")
    types = (sa.Integer, UUIDText, sa.Text, sa.Integer, JSONDocument, JSONDocument)
    rows = [
        tuple(sa.bindparam(f"{name}_{i}", type_=t) for name, t in zip(names, types, strict=True))
        for i in range(count)
    ]
    new_events = (
        sa.values(
            *(sa.column(name, t) for name, t in zip(names, types, strict=True)), name="new_events"
        )
        .data(rows)
        .cte("new_events")
    )
    n = new_events.c
    taken = (
        sa.select(sa.literal(1))
        .select_from(events.join(new_events, c.event_id == n.event_id))
        .exists()
    )
    selected = (
        sa.select(
            sa.bindparam("stream_id", type_=sa.Text),
            *(n[name] for name in names),
            sa.bindparam("recorded_at", type_=UTCDateTime),
        )
        .where(sa.bindparam("expected_version", type_=sa.Integer) == _CURRENT_VERSION, ~taken)
        .order_by(n.version)
    )
    return (
        sa.insert(events)
        .from_select(["stream_id", *names, "recorded_at"], selected)
        .returning(c.position, c.version, transaction_id.label("transaction_id"))
    )


_CURRENT_VERSION = (
    sa.select(sa.func.coalesce(sa.func.max(c.version), 0))
    .where(c.stream_id == sa.bindparam("stream_id", type_=sa.Text))
    .scalar_subquery()
)
STREAM_VERSION = sa.select(_CURRENT_VERSION)
COUNT_EVENTS = sa.select(sa.func.count()).select_from(events)


def check_append(expected_version: int, new: Sequence[NewEvent], recorded_at: datetime) -> None:
    if expected_version < 0:
        raise ValueError("expected_version is 0 for a new stream, never negative")
    if recorded_at.tzinfo is None:
        raise ValueError("recorded_at must be timezone-aware")
    ids = [event.event_id for event in new]
    if len(set(ids)) != len(ids):
        raise ValueError("an append cannot carry the same event id twice")


def append_params(
    stream_id: str, expected_version: int, new: Sequence[NewEvent], recorded_at: datetime
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "stream_id": stream_id,
        "expected_version": expected_version,
        "recorded_at": recorded_at,
    }
    for index, event in enumerate(new):
        params[f"version_{index}"] = expected_version + 1 + index
        params[f"event_id_{index}"] = event.event_id
        params[f"type_{index}"] = event.type
        params[f"schema_version_{index}"] = event.schema_version
        params[f"data_{index}"] = event.data
        params[f"metadata_{index}"] = event.metadata
    return params


def violated_key(error: sa.exc.IntegrityError) -> str | None:
    """The unique key an insert broke, from asyncpg's error or SQLite's message."""
    driver_error = getattr(error.orig, "orig", None) or error.orig
    name = getattr(driver_error, "constraint_name", None)
    if name is not None:
        return str(name)
    # SQLite names the columns, not the constraint.
    message = str(driver_error)
    if "UNIQUE constraint failed: events.stream_id, events.version" in message:
        return STREAM_VERSION_KEY
    if "UNIQUE constraint failed: events.event_id" in message:
        return EVENT_ID_KEY
    return None


# --- order_view ------------------------------------------------------------------------------
v = order_view.c


async def snapshot(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    query = sa.select(v.state).where(v.order_id == order_id)
    document: dict[str, Any] | None = (await conn.execute(query)).scalar_one_or_none()
    return document


def order_page(query: OrderQuery) -> sa.Select[Any]:
    select = sa.select(v.order_id, v.state).order_by(v.created_at.desc(), v.order_id.desc())
    if query.parties is not None:
        select = select.where(
            sa.or_(v.buyer_id.in_(query.parties), v.supplier_id.in_(query.parties))
        )
    for column, value in ((v.status, query.status), (v.buyer_id, query.buyer_id),
                          (v.supplier_id, query.supplier_id)):  # fmt: skip
        if value is not None:
            select = select.where(column == value)
    if query.before is not None:
        created_at, order_id = query.before
        select = select.where(
            sa.or_(
                v.created_at < created_at,
                sa.and_(v.created_at == created_at, v.order_id < order_id),
            )
        )
    return select.limit(query.limit)


def dispute_page(query: DisputeQuery) -> sa.Select[Any]:
    select = (
        sa.select(v.order_id, v.state)
        .where(v.dispute_status.is_not(None))
        .order_by(v.dispute_opened_at, v.order_id)
    )
    if query.status is not None:
        select = select.where(v.dispute_status == query.status)
    if query.after is not None:
        opened_at, order_id = query.after
        select = select.where(
            sa.or_(
                v.dispute_opened_at > opened_at,
                sa.and_(v.dispute_opened_at == opened_at, v.order_id > order_id),
            )
        )
    return select.limit(query.limit)


def parties_of(order_ids: Iterable[str]) -> sa.Select[Any]:
    return sa.select(v.order_id, v.buyer_id, v.supplier_id).where(v.order_id.in_(order_ids))


def due_for_timers(now: datetime, limit: int) -> sa.Select[Any]:
    return (
        sa.select(v.order_id, v.version)
        .where(v.next_timer_at <= now)
        .order_by(v.next_timer_at)
        .limit(limit)
    )


def order_row(row: Any) -> dict[str, Any]:
    """An ``OrderRow`` as the values of an insert into ``order_view``."""
    return asdict(row)


# --- party_balances --------------------------------------------------------------------------
b = party_balances.c
_SUMS = (sa.func.sum(b.held), sa.func.sum(b.released), sa.func.sum(b.refunded), sa.func.sum(b.fees))


def balances(party_id: str | None) -> sa.Select[Any]:
    """Summed balances per (party, currency): one party's, or everyone's."""
    select = sa.select(b.party_id, b.currency, *_SUMS).group_by(b.party_id, b.currency)
    if party_id is not None:
        select = select.where(b.party_id == party_id)
    return select.order_by(b.party_id, b.currency)


def balance_totals(rows: Iterable[Any]) -> list[BalanceTotals]:
    return [BalanceTotals(row[0], row[1], *(int(value) for value in row[2:])) for row in rows]


def balance_row(change: BalanceChange) -> dict[str, Any]:
    if change.position is None:
        raise ValueError("a balance change is written with its event's position")
    row = asdict(change)
    del row["event_version"]
    return row


# --- parties, the clock ------------------------------------------------------------------------
PARTY = sa.select(
    parties.c.id,
    parties.c.kind,
    parties.c.name,
    parties.c.trade_assurance,
    parties.c.managed_by,
    parties.c.created_at,
).where(parties.c.id == sa.bindparam("party_id", type_=sa.Text))

CLOCK_OFFSET = sa.select(service_clock.c.offset_seconds).where(service_clock.c.id == 1)
ADVANCE_CLOCK = (
    service_clock.update()
    .where(service_clock.c.id == 1)
    .values(
        offset_seconds=service_clock.c.offset_seconds + sa.bindparam("seconds", type_=sa.BigInteger)
    )
    .returning(service_clock.c.offset_seconds)
)


# --- idempotency_keys ------------------------------------------------------------------------
k = idempotency_keys.c


def fresh_claim(claim: KeyClaim) -> dict[str, Any]:
    return {
        "scope": claim.scope,
        "key": claim.key,
        "body_hash": claim.body_hash,
        "status": "in_flight",
        "response_status": None,
        "response_body": None,
        "response_headers": None,
        "created_at": claim.now,
        "expires_at": claim.expires_at,
    }


def take_over(claim: KeyClaim) -> sa.Update:
    """Claim a key whose record expired, or whose claim was abandoned (a crashed process)."""
    stale = sa.or_(
        k.expires_at < claim.now,
        sa.and_(k.status == "in_flight", k.created_at < claim.abandoned_before),
    )
    return (
        idempotency_keys.update()
        .where(k.scope == claim.scope, k.key == claim.key, stale)
        .values(
            {
                name: sa.bindparam(name)
                for name in fresh_claim(claim)
                if name not in ("scope", "key")
            }
        )
    )


def key_record(scope: str, key: str) -> sa.Select[Any]:
    return sa.select(idempotency_keys).where(k.scope == scope, k.key == key)


SAVE_ANSWER = (
    idempotency_keys.update()
    .where(k.scope == sa.bindparam("a_scope"), k.key == sa.bindparam("a_key"))
    .values(
        status="done",
        response_status=sa.bindparam("a_status"),
        response_body=sa.bindparam("a_body"),
        response_headers=sa.bindparam("a_headers", type_=JSONDocument),
    )
)


def answer_params(answer: StoredAnswer) -> dict[str, Any]:
    return {
        "a_scope": answer.scope,
        "a_key": answer.key,
        "a_status": answer.status,
        "a_body": answer.body.decode(),
        "a_headers": answer.headers,
    }


RELEASE_KEY = idempotency_keys.delete().where(
    k.scope == sa.bindparam("scope"), k.key == sa.bindparam("key"), k.status == "in_flight"
)


def purge_answers(now: datetime, limit: int) -> sa.Delete:
    expired = sa.select(k.scope, k.key).where(k.expires_at < now).limit(limit)
    return idempotency_keys.delete().where(sa.tuple_(k.scope, k.key).in_(expired))


# --- checkpoints -----------------------------------------------------------------------------
def checkpoint(name: str, *, lock: bool) -> sa.Select[Any]:
    cp = webhook_dispatch_checkpoint.c
    query = sa.select(cp.transaction_id, cp.position).where(cp.name == name)
    # SKIP LOCKED: a second dispatcher skips its turn instead of waiting. SQLAlchemy renders
    # no FOR UPDATE on SQLite, whose writers are serialised by BEGIN IMMEDIATE anyway.
    return query.with_for_update(skip_locked=True) if lock else query
