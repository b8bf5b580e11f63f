"""Statements on ``money_out`` and ``ledger_postings`` that read and write the same on both
backends (PostgreSQL's command writes them inside its one COMMIT statement instead)."""

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from escrow_core.store.records import AccountBalance, MoneyOutQuery, MoneyOutRow, Posting
from escrow_core.store.schema import ledger_postings, money_out

m = money_out.c
p = ledger_postings.c

# What a later report changes on a payout or refund; the rest never changes once created.
MONEY_OUT_CHANGES = ("status", "provider_ref", "failure_reason", "updated_at")
POSTING_COLUMNS = tuple(f.name for f in fields(Posting) if f.name != "id")


def money_out_values(row: MoneyOutRow) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


def posting_values(posting: Posting) -> dict[str, Any]:
    return {name: getattr(posting, name) for name in POSTING_COLUMNS}


def upsert_money_out(insert: Any, rows: Sequence[MoneyOutRow]) -> tuple[Any, list[dict[str, Any]]]:
    """The upsert of ``rows`` with a backend's ``insert`` construct, and its parameters."""
    statement = insert.on_conflict_do_update(
        index_elements=["id"], set_={name: insert.excluded[name] for name in MONEY_OUT_CHANGES}
    )
    return statement, [money_out_values(row) for row in rows]


def money_out_row(row: Any) -> MoneyOutRow:
    return MoneyOutRow(**{f.name: getattr(row, f.name) for f in fields(MoneyOutRow)})


def find_money_out(object_id: str, kind: str) -> sa.Select[Any]:
    return sa.select(money_out).where(m.id == object_id, m.kind == kind)


def money_out_page(query: MoneyOutQuery) -> sa.Select[Any]:
    select = (
        sa.select(money_out).where(m.kind == query.kind).order_by(m.created_at.desc(), m.id.desc())
    )
    if query.parties is not None:
        select = select.where(m.party_id.in_(query.parties))
    for column, value in ((m.status, query.status), (m.party_id, query.party_id),
                          (m.order_id, query.order_id)):  # fmt: skip
        if value is not None:
            select = select.where(column == value)
    if query.before is not None:  # a row comparison: the index range starts at the cursor
        select = select.where(sa.tuple_(m.created_at, m.id) < query.before)
    return select.limit(query.limit)


def posting(row: Any) -> Posting:
    return Posting(**{f.name: getattr(row, f.name) for f in fields(Posting)})


def ledger_page(accounts: Sequence[str], after: int | None, limit: int) -> sa.Select[Any]:
    """Postings on ``accounts``, oldest first, after posting id ``after``."""
    select = sa.select(ledger_postings).where(p.account.in_(accounts)).order_by(p.id)
    if after is not None:
        select = select.where(p.id > after)
    return select.limit(limit)


def postings_after(after: int, limit: int, since: datetime | None = None) -> sa.Select[Any]:
    """Every posting after id ``after`` (at or after ``since``), oldest first: the export."""
    select = sa.select(ledger_postings).where(p.id > after).order_by(p.id).limit(limit)
    return select if since is None else select.where(p.at >= since)


def account_balances(
    accounts: Sequence[str] | None, before: datetime | None = None
) -> sa.Select[Any]:
    """Posted and pending sums per (account, currency) (TigerBeetle's phases: a posted or
    voided leg naming a pending one takes it off ``pending``), of ``accounts`` or of all,
    counting postings before ``before`` when given (opening balances)."""
    posted = sa.func.sum(sa.case((p.phase == "posted", p.amount), else_=0))
    pending = sa.func.sum(
        sa.case(
            (p.phase == "pending", p.amount),
            (p.pending_id.is_not(None), -p.amount),
            else_=0,
        )
    )
    # A party's money that went to the bank: the posted legs that settle a pending one, the
    # pre-1.1 payouts and refunds, and the reversals of returned payouts.
    to_the_bank = sa.and_(
        p.phase == "posted",
        p.account != "external",
        sa.or_(p.pending_id.is_not(None), p.legacy, p.transfer_id.like("%:returned")),
    )
    paid_out = sa.func.sum(sa.case((to_the_bank, -p.amount), else_=0))
    select = (
        sa.select(p.account, p.currency, posted, pending, paid_out)
        .group_by(p.account, p.currency)
        .order_by(p.account, p.currency)
    )
    if accounts is not None:
        select = select.where(p.account.in_(accounts))
    if before is not None:
        select = select.where(p.at < before)
    return select


def balances(rows: Iterable[Any]) -> list[AccountBalance]:
    return [AccountBalance(row[0], row[1], int(row[2]), int(row[3]), int(row[4])) for row in rows]


def order_account_sums() -> sa.Select[Any]:
    """(order_id, account, currency, posted, pending) over the whole ledger: ``escrow verify``
    compares each order's with its amounts, and checks each transfer sums to zero."""
    posted = sa.func.sum(sa.case((p.phase == "posted", p.amount), else_=0))
    pending = sa.func.sum(
        sa.case((p.phase == "pending", p.amount), (p.pending_id.is_not(None), -p.amount), else_=0)
    )
    return sa.select(p.order_id, p.account, p.currency, posted, pending).group_by(
        p.order_id, p.account, p.currency
    )


def unbalanced_transfers() -> sa.Select[Any]:
    """Transfers whose legs do not sum to zero in some currency (there must be none)."""
    return (
        sa.select(p.transfer_id, p.currency, sa.func.sum(p.amount))
        .group_by(p.transfer_id, p.currency)
        .having(sa.func.sum(p.amount) != 0)
    )
