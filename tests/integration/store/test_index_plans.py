"""The plans migration 0011 counts on (PostgreSQL): the log head is one step of the log index,
a list page starts its index range at the cursor, and the metadata filter reads the partial
GIN index. bench/README.md has the whole inventory (bench/explain_indexes.py)."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from escrow_core.store import Store
from escrow_core.store import money_statements as mq
from escrow_core.store import statements as q
from escrow_core.store.postgres import PostgresStore, sql
from escrow_core.store.records import DisputeQuery, MoneyOutQuery, OrderQuery
from escrow_core.store.schema import order_view

pytestmark = pytest.mark.postgres_only

SEED = """
INSERT INTO events (stream_id, version, event_id, type, data, metadata, recorded_at)
SELECT 'ord_' || (g / 10), g % 10 + 1, gen_random_uuid(), 'order.placed', '{}', '{}', now()
FROM generate_series(0, 19999) g;
INSERT INTO order_view (order_id, version, status, buyer_id, supplier_id, currency, total,
    dispute_status, dispute_opened_at, metadata, state, created_at, updated_at)
SELECT 'ord_' || lpad(g::text, 6, '0'), 1,
       CASE WHEN g % 100 = 3 THEN 'disputed' ELSE (ARRAY['placed', 'held', 'completed'])[1 + g % 3]
       END,
       'buyer_' || (g % 100), 'supp_' || (g % 20), 'USD', 100,
       CASE WHEN g % 100 = 3 THEN 'open' END,
       CASE WHEN g % 100 = 3 THEN timestamptz '2026-01-01' + g * interval '1 minute' END,
       CASE WHEN g % 2 = 0 THEN jsonb_build_object('po', 'PO-' || g) END, '{}',
       timestamptz '2026-01-01' + g * interval '1 minute', now()
FROM generate_series(1, 20000) g;
INSERT INTO money_out (id, kind, order_id, party_id, currency, amount, status, created_at,
    updated_at)
SELECT 'po_' || g, 'payout', 'ord_' || g, 'supp_' || (g % 20), 'USD', 1, 'paid',
       timestamptz '2026-01-01' + g * interval '1 minute', now()
FROM generate_series(1, 20000) g;
ANALYZE events; ANALYZE order_view; ANALYZE money_out;
"""
MIDDLE = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=10_000)


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


def _text(statement: sa.Select[Any]) -> str:
    compiled = statement.compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    return str(compiled)


def _metadata_has(key: str, value: str) -> sa.ColumnElement[bool]:
    wanted = sa.cast(sa.literal(json.dumps({key: value})), postgresql.JSONB)
    return order_view.c.metadata.op("@>")(wanted)


@pytest.fixture
async def seeded(fresh_store: Store) -> PostgresStore:
    assert isinstance(fresh_store, PostgresStore)
    async with fresh_store.raw() as conn:
        await conn.execute(SEED)
    return fresh_store


async def _plan(store: PostgresStore, text: str) -> list[dict[str, Any]]:
    async with store.raw() as conn:
        explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {text}")
    document = json.loads(explained) if isinstance(explained, str) else explained
    return _nodes(document[0]["Plan"])


async def test_the_log_head_is_one_step_of_the_log_index(seeded: PostgresStore) -> None:
    nodes = await _plan(seeded, sql.LOG_HEAD.sql)
    assert "Sort" not in {node["Node Type"] for node in nodes}  # not a sort of the whole log
    scans = [node for node in nodes if node.get("Relation Name") == "events"]
    assert [(n["Index Name"], n["Scan Direction"]) for n in scans] == [
        ("events_transaction_id_position_idx", "Backward")
    ]


@pytest.mark.parametrize(
    ("statement", "index"),
    [
        (
            q.order_page(OrderQuery(limit=50, before=(MIDDLE, "ord_010000")), _metadata_has),
            "order_view_created_idx",
        ),
        (
            q.order_page(
                OrderQuery(limit=50, status="disputed", before=(MIDDLE, "ord_010000")),
                _metadata_has,
            ),
            "order_view_status_idx",
        ),
        (
            q.dispute_page(DisputeQuery(limit=50, after=(MIDDLE, "ord_010000"))),
            "order_view_dispute_idx",
        ),
        (
            mq.money_out_page(MoneyOutQuery(kind="payout", limit=50, before=(MIDDLE, "po_1"))),
            "money_out_kind_idx",
        ),
    ],
    ids=["orders", "orders by status", "disputes", "payouts"],
)
async def test_a_page_starts_its_index_range_at_the_cursor(
    seeded: PostgresStore, statement: sa.Select[Any], index: str
) -> None:
    nodes = await _plan(seeded, _text(statement))
    scans = [node for node in nodes if node.get("Index Name") == index]
    assert len(scans) == 1, [node["Node Type"] for node in nodes]
    assert "ROW(" in scans[0]["Index Cond"]  # the cursor bounds the range: no Filter on it
    assert "Sort" not in {node["Node Type"] for node in nodes}


async def test_the_metadata_filter_reads_the_partial_gin_index(seeded: PostgresStore) -> None:
    statement = q.order_page(OrderQuery(limit=50, metadata=(("po", "PO-42"),)), _metadata_has)
    nodes = await _plan(seeded, _text(statement))
    assert "order_view_metadata_idx" in {node.get("Index Name") for node in nodes}
    async with seeded.raw() as conn:
        definition = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'order_view_metadata_idx'"
        )
    assert definition.endswith("WHERE (metadata IS NOT NULL)")
