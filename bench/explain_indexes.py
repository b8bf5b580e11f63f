"""EXPLAIN (ANALYZE) every query the service runs on events, order_view, party_balances,
money_out and ledger_postings, and print the index lines of each plan (bench/README.md,
"fewer index entries per command").

    createdb -h 127.0.0.1 -U postgres idx
    ESCROW_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/idx escrow migrate
    psql -h 127.0.0.1 -U postgres -d idx -f bench/index_seed.sql
    python -m bench.explain_indexes idx
"""

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from escrow_core.store import money_statements as mq
from escrow_core.store import statements as q
from escrow_core.store.postgres import sql
from escrow_core.store.records import DisputeQuery, MoneyOutQuery, OrderQuery
from escrow_core.store.schema import order_view

DB = sys.argv[1]
now = datetime.now(UTC)
mid = now - timedelta(minutes=10000)


def meta(key, value):
    return order_view.c.metadata.op("@>")(
        sa.cast(sa.literal(f'{{"{key}": "{value}"}}'), postgresql.JSONB)
    )


def compile_(stmt):
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def named(n, **values):
    text = n.sql if hasattr(n, "sql") else str(n)
    return text


LOG = sql.READ_LOG.named if hasattr(sql.READ_LOG, "sql") else None

queries = {}


def orders(**kw: Any) -> str:
    return compile_(q.order_page(OrderQuery(limit=50, **kw), meta))


queries["orders: admin, no filter"] = orders()
queries["orders: admin, cursor"] = orders(before=(mid, "ord_00010000"))
queries["orders: party (buyer_7)"] = orders(parties=frozenset({"buyer_7"}))
queries["orders: party (supp_7), cursor"] = orders(
    parties=frozenset({"supp_7"}), before=(mid, "ord_00010000")
)
queries["orders: party + status=shipped"] = orders(parties=frozenset({"supp_7"}), status="shipped")
queries["orders: status=completed"] = orders(status="completed")
queries["orders: status=disputed, cursor"] = orders(status="disputed", before=(mid, "ord_00010000"))
queries["orders: status=placed"] = orders(status="placed")
queries["orders: buyer_id=buyer_7"] = orders(buyer_id="buyer_7")
queries["orders: supplier_id=supp_7"] = orders(supplier_id="supp_7")
queries["orders: supplier_id + cursor"] = orders(supplier_id="supp_7", before=(mid, "ord_00010000"))
queries["orders: buyer_parties + client_reference"] = orders(
    buyer_parties=frozenset({"buyer_8"}), client_reference="ref-808"
)
queries["orders: metadata po"] = orders(metadata=(("po", "PO-42"),))
queries["orders: party + metadata team (common)"] = orders(
    parties=frozenset({"buyer_7"}), metadata=(("team", "t3"),)
)
queries["orders: created range"] = orders(created_gte=mid - timedelta(days=1), created_lt=mid)
queries["orders: snapshot by id"] = "SELECT state FROM order_view WHERE order_id = 'ord_00012345'"
queries["orders: client_reference lookup"] = compile_(
    q.order_with_client_reference("buyer_8", "ref-808")
)
queries["orders: parties_of"] = compile_(q.parties_of(["ord_00000001", "ord_00012345"]))
queries["disputes queue"] = compile_(q.dispute_page(DisputeQuery(limit=50)))
queries["disputes queue, status=open, cursor"] = compile_(
    q.dispute_page(DisputeQuery(limit=50, status="open", after=(mid, "ord_00010000")))
)
queries["timers due"] = compile_(q.due_for_timers(now, 100))
queries["balances: one party"] = compile_(q.balances("supp_7"))
queries["balances: all"] = compile_(q.balances(None))


def money(**kw: Any) -> str:
    return compile_(mq.money_out_page(MoneyOutQuery(limit=50, **kw)))


queries["payouts: admin"] = money(kind="payout")
queries["payouts: admin, cursor"] = money(kind="payout", before=(mid, "po_10001"))
queries["payouts: party"] = money(kind="payout", parties=frozenset({"supp_7"}))
queries["payouts: status=failed"] = money(kind="payout", status="failed")
queries["refunds: order_id"] = money(kind="refund", order_id="ord_00000003")
queries["refunds: party_id"] = money(kind="refund", party_id="buyer_3")
queries["money_out: find by id"] = compile_(mq.find_money_out("po_10001", "payout"))
queries["ledger: account page"] = compile_(mq.ledger_page(["supplier:supp_7:available"], None, 50))
queries["ledger: account page, after"] = compile_(
    mq.ledger_page(["supplier:supp_7:available"], 30000, 50)
)
queries["ledger: account balances (party)"] = compile_(
    mq.account_balances(["supplier:supp_7:available"])
)
queries["ledger: postings_after (export)"] = compile_(mq.postings_after(1000, 500))


def sub(text, **vals):
    for k, v in vals.items():
        text = re.sub(rf":{k}\b", v, text)
    return text


queries["log: READ_LOG (dispatcher, feed)"] = sub(
    sql.READ_LOG.named, transaction_id="'80000'", position="0", limit="500"
)
queries["log: READ_LOG from start"] = sub(
    sql.READ_LOG.named, transaction_id="'0'", position="0", limit="500"
)
queries["log: feed type=payout.paid"] = sub(
    sql.READ_LOG_OF_TYPES.named,
    types="ARRAY['payout.paid']",
    transaction_id="'0'",
    position="0",
    limit="100",
)
queries["log: feed order_id"] = sub(
    sql.READ_LOG_OF_STREAM.named,
    stream_id="'ord_00012345'",
    types="ARRAY[]::text[]",
    transaction_id="'0'",
    position="0",
    limit="100",
)
queries["log: LOG_HEAD"] = sql.LOG_HEAD.named
queries["log: LAST_WRITER"] = sql.LAST_WRITER.named
queries["events: stream"] = "SELECT * FROM events WHERE stream_id = 'ord_00012345' ORDER BY version"
queries["events: by event ids"] = (
    "SELECT * FROM events WHERE event_id IN "
    "(SELECT event_id FROM events WHERE position IN (5, 77777)) ORDER BY position"
)
queries["events: max version (write)"] = (
    "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = 'ord_00012345'"
)

for name, text in queries.items():
    out = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            DB,
            "-tAX",
            "-c",
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + text,
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        print(f"## {name}: ERROR {out.stderr.strip()}\n{text}\n")
        continue
    lines = out.stdout.splitlines()
    idx = [line.strip() for line in lines if re.search(r"Index|Seq Scan|Bitmap|Sort Key", line)]
    ex = [line for line in lines if "Execution Time" in line]
    print(f"## {name} [{ex[0].split(':')[1].strip() if ex else ''}]")
    for line in idx:
        print("   ", line)
