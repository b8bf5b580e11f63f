"""An order's amounts are in the minor units it recorded when placed: ISO 4217's for a new
order, the exponent it was priced under for one placed before ``order.placed`` schema 2."""

from typing import Any

import sqlalchemy as sa

from escrow_core.store import Store, schema
from support.api import order_terms
from support.legacy import LEGACY_TOTAL, write_legacy_order
from support.tables import view_row

from .world import World

IQD_ORDER = {
    "currency": "IQD",
    "items": [{"sku": "DATES-1", "quantity": 4, "unit_price": 250}],
    "shipping_fee": 0,
    "payment_schedule": None,
}


async def stored_placed(store: Store, order_id: str) -> tuple[int, Any]:
    """The ``order.placed`` row as stored: its schema version and recorded exponent."""
    events = schema.events
    query = sa.select(events.c.schema_version, events.c.data).where(
        events.c.stream_id == order_id, events.c.type == "order.placed"
    )
    async with store.read() as conn:
        version, data = (await conn.execute(query)).one()
    return version, data.get("currency_exponent")


async def test_a_new_iqd_order_is_priced_in_iso_4217s_three_digits(
    world: World, store: Store
) -> None:
    placed = await world.call(
        "POST", "/v1/orders", world.as_("buyer"), order_terms(world.supplier_id, **IQD_ORDER)
    )

    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    assert (placed.json()["currency_exponent"], placed.json()["total"]) == (3, 1_000)
    assert await stored_placed(store, order_id) == (3, 3)
    read = await world.call("GET", f"/v1/orders/{order_id}", world.as_("buyer"))
    assert read.json()["currency_exponent"] == 3


async def test_an_iqd_order_placed_under_the_old_rule_keeps_exponent_0(
    world: World, store: Store
) -> None:
    # Given an IQD order placed when the service served CLDR's 0 digits for IQD
    order_id = await write_legacy_order(store, world.buyer_id, world.supplier_id, "IQD")
    buyer = world.as_("buyer")

    # Then it reads back, alone and listed, in the exponent it was priced under
    read = await world.call("GET", f"/v1/orders/{order_id}", buyer)
    assert read.status_code == 200, read.text
    order = read.json()
    assert (order["currency"], order["currency_exponent"]) == ("IQD", 0)
    assert (order["total"], order["amounts"]["total"]) == (LEGACY_TOTAL, LEGACY_TOTAL)
    assert [i["unit_price"] for i in order["items"]] == [250]
    listed = await world.call("GET", f"/v1/orders?buyer_id={world.buyer_id}&limit=100", buyer)
    [shown] = [o for o in listed.json()["data"] if o["id"] == order_id]
    assert (shown["currency_exponent"], shown["total"]) == (0, LEGACY_TOTAL)
    timeline = await world.call("GET", f"/v1/orders/{order_id}/events", buyer)
    assert timeline.json()["data"][0]["data"]["currency_exponent"] == 0

    # When the supplier accepts it, the old snapshot is read and written back with exponent 0
    accepted = await world.step(order_id, "accept", "supplier")
    assert (accepted["status"], accepted["currency_exponent"]) == ("accepted", 0)
    row = await view_row(store, order_id)
    assert row is not None
    assert row["state"]["terms"]["currency_exponent"] == 0

    # and its stored event is left as it was written
    assert await stored_placed(store, order_id) == (1, None)


async def test_balances_sum_old_and_new_iqd_orders_in_iso_minor_units(
    world: World, store: Store
) -> None:
    # Given an IQD order priced under the old rule (1,000 dinars) and a new one (1.000 dinar),
    # both paid in full
    legacy = await write_legacy_order(store, world.buyer_id, world.supplier_id, "IQD")
    new = await world.place(**IQD_ORDER)
    for order_id in (legacy, new):
        await world.step(order_id, "accept", "supplier")
        paid = await world.call(
            "POST",
            f"/v1/orders/{order_id}/payments",
            world.as_("payments"),
            {"amount": 1_000, "method": "card", "provider_ref": f"pay-{order_id}"},
        )
        assert paid.status_code == 200, paid.text

    # Then the buyer's IQD balance holds 1,001 dinars, written in ISO's three digits
    answer = await world.call("GET", f"/v1/parties/{world.buyer_id}/balances", world.admin)
    assert answer.status_code == 200, answer.text
    [iqd] = [b for b in answer.json()["balances"] if b["currency"] == "IQD"]
    assert (iqd["currency_exponent"], iqd["held"]) == (3, LEGACY_TOTAL * 1_000 + 1_000)
