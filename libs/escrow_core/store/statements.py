"""SQLAlchemy Core statements on the projections and the bookkeeping tables that both adapters
run alike, and their parameters built by name."""

from collections.abc import Callable, Iterable
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store.records import (
    BalanceChange,
    BalanceTotals,
    DisputeQuery,
    KeyClaim,
    OrderQuery,
    OrderRow,
    StoredAnswer,
)
from escrow_core.store.schema import (
    idempotency_keys,
    order_view,
    parties,
    party_balances,
    service_clock,
    webhook_dispatch_checkpoint,
)
from escrow_core.store.types import JSONDocument


def wall_clock() -> datetime:
    return datetime.now(UTC)


# --- order_view ------------------------------------------------------------------------------
v = order_view.c


async def snapshot(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    query = sa.select(v.state).where(v.order_id == order_id)
    document: dict[str, Any] | None = (await conn.execute(query)).scalar_one_or_none()
    return document


def order_page(
    query: OrderQuery, metadata_has: Callable[[str, str], sa.ColumnElement[bool]]
) -> sa.Select[Any]:
    """A page of orders; ``metadata_has(key, value)`` is the backend's metadata test."""
    select = sa.select(v.order_id, v.state).order_by(v.created_at.desc(), v.order_id.desc())
    if query.parties is not None:
        select = select.where(
            sa.or_(v.buyer_id.in_(query.parties), v.supplier_id.in_(query.parties))
        )
    if query.buyer_parties is not None:
        select = select.where(v.buyer_id.in_(query.buyer_parties))
    for column, value in ((v.status, query.status), (v.buyer_id, query.buyer_id),
                          (v.supplier_id, query.supplier_id),
                          (v.client_reference, query.client_reference)):  # fmt: skip
        if value is not None:
            select = select.where(column == value)
    for key, value in query.metadata:
        select = select.where(metadata_has(key, value))
    if query.created_gte is not None:
        select = select.where(v.created_at >= query.created_gte)
    if query.created_lt is not None:
        select = select.where(v.created_at < query.created_lt)
    if query.before is not None:
        # A row comparison, not (a < x OR a = x AND b < y): PostgreSQL then starts the index
        # range at the cursor instead of filtering every row newer than it (migration 0011).
        select = select.where(sa.tuple_(v.created_at, v.order_id) < query.before)
    return select.limit(query.limit)


def order_with_client_reference(buyer_id: str, reference: str) -> sa.Select[Any]:
    return sa.select(v.order_id).where(v.buyer_id == buyer_id, v.client_reference == reference)


def dispute_page(query: DisputeQuery) -> sa.Select[Any]:
    select = (
        sa.select(v.order_id, v.state)
        .where(v.dispute_status.is_not(None))
        .order_by(v.dispute_opened_at, v.order_id)
    )
    if query.status is not None:
        select = select.where(v.dispute_status == query.status)
    if query.after is not None:  # a row comparison: the index range starts at the cursor
        select = select.where(sa.tuple_(v.dispute_opened_at, v.order_id) > query.after)
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


def order_row(row: OrderRow) -> dict[str, Any]:
    """An ``OrderRow`` as the values of an insert into ``order_view`` (shallow: ``asdict``
    would deep-copy the state document on every SQLite command)."""
    return {field.name: getattr(row, field.name) for field in fields(row)}


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


def position_of(change: BalanceChange) -> int:
    """A balance change is written with its event's position (ValueError without one)."""
    if change.position is None:
        raise ValueError("a balance change is written with its event's position")
    return change.position


def balance_row(change: BalanceChange) -> dict[str, Any]:
    position_of(change)
    row = asdict(change)
    del row["event_version"]
    return row


# --- parties, the clock ------------------------------------------------------------------------
PARTY_COLUMNS = (
    parties.c.id,
    parties.c.kind,
    parties.c.name,
    parties.c.trade_assurance,
    parties.c.managed_by,
    parties.c.created_at,
    parties.c["metadata"],
    parties.c.deactivated_at,
)
PARTY = sa.select(*PARTY_COLUMNS).where(parties.c.id == sa.bindparam("party_id", type_=sa.Text))
PARTIES = sa.select(*PARTY_COLUMNS).where(
    parties.c.id.in_(sa.bindparam("party_ids", expanding=True))
)

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
        "holder": claim.holder,
        "response_status": None,
        "response_body": None,
        "response_headers": None,
        "created_at": claim.now,
        "expires_at": claim.expires_at,
    }


def take_over(claim: KeyClaim) -> sa.Update:
    """Claim a key whose record expired, or whose claim of this same body was abandoned (its
    holder died): a different body never takes a claim over."""
    stale = sa.or_(
        k.expires_at < claim.now,
        sa.and_(
            k.status == "in_flight",
            k.created_at < claim.abandoned_before,
            k.body_hash == claim.body_hash,
        ),
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


def live_answer(scope: str, key: str, now: datetime) -> sa.Select[Any]:
    """The answer kept under a key, unless it expired."""
    return key_record(scope, key).where(k.status == "done", k.expires_at >= now)


COMPLETE_CLAIM = (
    idempotency_keys.update()
    .where(
        k.scope == sa.bindparam("a_scope"),
        k.key == sa.bindparam("a_key"),
        k.status == "in_flight",
        k.holder == sa.bindparam("a_holder"),
    )
    .values(
        status="done",
        holder=None,
        response_status=sa.bindparam("a_status"),
        response_body=sa.bindparam("a_body"),
        response_headers=sa.bindparam("a_headers", type_=JSONDocument),
    )
)


def answer_params(answer: StoredAnswer) -> dict[str, Any]:
    return {
        "a_scope": answer.scope,
        "a_key": answer.key,
        "a_holder": answer.holder,
        "a_status": answer.status,
        "a_body": answer.body.decode(),
        "a_headers": answer.headers,
    }


def answer_row(answer: StoredAnswer) -> dict[str, Any]:
    """An order command's answer as the key's whole record (it takes no claim first)."""
    return {
        "scope": answer.scope,
        "key": answer.key,
        "body_hash": answer.body_hash,
        "status": "done",
        "holder": None,
        "response_status": answer.status,
        "response_body": answer.body.decode(),
        "response_headers": answer.headers,
        "created_at": answer.created_at,
        "expires_at": answer.expires_at,
    }


def keep_answer(insert: Any, answer: StoredAnswer) -> Any:
    """Insert an order command's answer; over an existing record only if that one expired
    (a live answer is never overwritten: the statement then writes nothing)."""
    statement = insert.values(answer_row(answer))
    return statement.on_conflict_do_update(
        index_elements=["scope", "key"],
        set_={
            name: statement.excluded[name]
            for name in answer_row(answer)
            if name not in ("scope", "key")
        },
        where=sa.or_(k.status != "done", k.expires_at < answer.created_at),
    )


RELEASE_KEY = idempotency_keys.delete().where(
    k.scope == sa.bindparam("scope"),
    k.key == sa.bindparam("key"),
    k.status == "in_flight",
    k.holder == sa.bindparam("holder"),
)


def purge_answers(now: datetime, limit: int) -> sa.Delete:
    expired = sa.select(k.scope, k.key).where(k.expires_at < now).limit(limit)
    return idempotency_keys.delete().where(sa.tuple_(k.scope, k.key).in_(expired))


# --- checkpoints -----------------------------------------------------------------------------
def checkpoint(name: str, *, lock: bool, wait: bool = False) -> sa.Select[Any]:
    cp = webhook_dispatch_checkpoint.c
    query = sa.select(cp.transaction_id, cp.position).where(cp.name == name)
    # SKIP LOCKED: a second dispatcher skips its turn instead of waiting (``wait``: a rebuild
    # or verify waits for it). SQLAlchemy renders no FOR UPDATE on SQLite, whose writers are
    # serialised by BEGIN IMMEDIATE anyway.
    return query.with_for_update(skip_locked=not wait) if lock else query
