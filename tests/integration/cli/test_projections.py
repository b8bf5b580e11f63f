"""``escrow projections rebuild`` and ``escrow verify`` as an operator runs them.

rebuild empties order_view and party_balances and refills them from the log, with a progress
bar; verify replays every stream, checks the money invariant at each command boundary and
compares the projections rebuilt in memory with the live ones: exit 0 when all agree, else
non-zero with every difference named.

Each command runs as a real ``escrow`` process in one test (the first and the third); the
tests that run the commands again and again run them in process (``escrow_in_process``).
"""

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from service.story import Orders

from escrow_core.application.commands import CommandService
from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.store import DuplicateClientReference, NewEvent, OrderRow, Store, schema
from support.legacy import LEGACY_TOTAL, write_legacy_order

from .busy_log import BusyLog, escrow, escrow_in_process


async def projections(store: Store) -> tuple[dict[str, OrderRow], list[tuple[Any, ...]]]:
    """Every order_view row, and every ledger row without its surrogate id."""
    t = schema.party_balances
    views = await store.all_order_rows()
    async with store.read() as conn:
        ledger = await conn.execute(
            sa.select(
                t.c.party_id, t.c.currency, t.c.order_id, t.c.position,
                t.c.held, t.c.released, t.c.refunded, t.c.fees,
            ).order_by(t.c.position, t.c.party_id)
        )  # fmt: skip
        return views, [tuple(row) for row in ledger]


async def test_rebuild_refills_the_projections_as_the_commands_wrote_them(
    fresh_store: Store, busy_log: BusyLog
) -> None:
    # Given the projections the commands wrote, then lost
    written = await projections(fresh_store)
    async with fresh_store.transaction() as conn:
        await conn.execute(schema.order_view.delete())
        await conn.execute(schema.party_balances.delete())

    # When the operator rebuilds them
    rebuilt = await escrow(fresh_store.url, "projections", "rebuild")

    # Then they are exactly what the commands had written, and progress was shown
    assert rebuilt.returncode == 0, rebuilt.stderr
    count = await fresh_store.count_events()
    assert "rebuilding" in rebuilt.stderr
    assert f"rebuilt projections from {count} events" in rebuilt.stderr
    assert await projections(fresh_store) == written
    assert len(written[0]) == len(busy_log.order_ids)


async def test_verify_names_each_corrupted_projection_and_rebuild_repairs_them(
    fresh_store: Store, busy_log: BusyLog
) -> None:
    # Given projections as the commands wrote them, which verify finds consistent
    consistent = await escrow_in_process(fresh_store.url, "verify")
    assert consistent.returncode == 0, consistent.stderr
    assert f"{len(busy_log.order_ids)} orders" in consistent.stderr
    assert "OK" in consistent.stderr

    # When an order's status, another's snapshot and a party's balance are tampered with
    view, ledger = schema.order_view, schema.party_balances
    stranger = "pty_stranger"
    async with fresh_store.transaction() as conn:
        await conn.execute(
            view.update().where(view.c.order_id == busy_log.held).values(status="completed")
        )
        placed_state = (
            await conn.execute(sa.select(view.c.state).where(view.c.order_id == busy_log.placed))
        ).scalar_one()
        await conn.execute(
            view.update()
            .where(view.c.order_id == busy_log.placed)
            .values(state={**placed_state, "status": "cancelled"})
        )
        await conn.execute(
            ledger.insert().values(
                party_id=stranger, currency="USD", order_id=busy_log.completed,
                position=1, held=0, released=99, refunded=0, fees=0,
            )
        )  # fmt: skip
    broken = await escrow_in_process(fresh_store.url, "verify")

    # Then verify fails and names every difference
    assert broken.returncode != 0
    output = broken.stderr
    assert f"order_view {busy_log.held}.status: live 'completed', log says 'held'" in output
    assert (
        f"order_view {busy_log.placed}.state.status: live 'cancelled', log says 'placed'" in output
    )
    assert f"party_balances {stranger}/USD" in output
    assert "3 problems" in output

    # When the operator rebuilds the projections, verify passes again
    rebuilt = await escrow_in_process(fresh_store.url, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    repaired = await escrow_in_process(fresh_store.url, "verify")
    assert repaired.returncode == 0, repaired.stderr
    assert "OK" in repaired.stderr


async def test_verify_reports_a_broken_money_invariant_at_the_command_boundary(
    fresh_store: Store, busy_log: BusyLog
) -> None:
    # Given a forged command appended straight to the log: funds held that nobody paid
    version = len(await fresh_store.stream(busy_log.cancelled))
    forged = e.FundsHeld(at=datetime.now(UTC), amount=75_000, held_total=125_000)
    await fresh_store.append(
        busy_log.cancelled,
        version,
        [NewEvent(uuid4(), forged.type, e.event_to_data(forged), {"command_id": "forged"})],
        recorded_at=forged.at,
    )

    # When the operator verifies
    result = await escrow(fresh_store.url, "verify")

    # Then verify fails, naming the order, the version and the broken equation
    assert result.returncode != 0
    expected = f"{busy_log.cancelled} v{version + 1}: paid 50000 != held 125000"
    assert expected in result.stderr


async def test_an_order_placed_before_order_placed_schema_2_verifies_and_rebuilds(
    fresh_store: Store, busy_log: BusyLog
) -> None:
    # Given an IQD order as the service wrote it under the old rule: a v1 event, an old snapshot
    legacy = await write_legacy_order(
        fresh_store, busy_log.cast.buyer_id, busy_log.cast.supplier_id
    )

    # Then verify finds the snapshot as the upcast log says, and rebuild writes exponent 0
    verified = await escrow_in_process(fresh_store.url, "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"{len(busy_log.order_ids) + 1} orders" in verified.stderr
    rebuilt = await escrow_in_process(fresh_store.url, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    row = (await fresh_store.all_order_rows())[legacy]
    assert (row.currency, row.total) == ("IQD", LEGACY_TOTAL)
    assert row.state["terms"]["currency_exponent"] == 0
    again = await escrow_in_process(fresh_store.url, "verify")
    assert again.returncode == 0, again.stderr


async def test_rebuild_refills_the_bookkeeping_columns_and_verify_checks_them(
    fresh_store: Store, busy_log: BusyLog
) -> None:
    # Given an order with the buyer's metadata and client_reference, its metadata updated
    cast = busy_log.cast
    orders = Orders(CommandService(fresh_store), cast)
    order_id = await orders.place(
        metadata={"po": "PO-9", "region": "south"}, client_reference="PO-9"
    )
    await orders.run(order_id, c.UpdateMetadata(actor=cast.buyer, metadata={"region": ""}))
    written = await projections(fresh_store)
    row = written[0][order_id]
    assert (row.client_reference, row.metadata) == ("PO-9", {"po": "PO-9"})

    # When the columns are lost, verify names them; a rebuild refills them from the log
    view = schema.order_view
    async with fresh_store.transaction() as conn:
        await conn.execute(
            view.update()
            .where(view.c.order_id == order_id)
            .values(client_reference=None, metadata={})
        )
    broken = await escrow(fresh_store.url, "verify")
    assert broken.returncode != 0
    assert f"order_view {order_id}.client_reference: live None, log says 'PO-9'" in broken.stderr
    assert f"order_view {order_id}.metadata" in broken.stderr
    async with fresh_store.transaction() as conn:
        await conn.execute(schema.order_view.delete())
        await conn.execute(schema.party_balances.delete())
    rebuilt = await escrow(fresh_store.url, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr

    # Then the rows are as the commands wrote them, and the unique reference still holds
    assert await projections(fresh_store) == written
    assert await fresh_store.order_with_client_reference(cast.buyer_id, "PO-9") == order_id
    with pytest.raises(DuplicateClientReference):
        await orders.place(client_reference="PO-9")
    verified = await escrow(fresh_store.url, "verify")
    assert verified.returncode == 0, verified.stderr
