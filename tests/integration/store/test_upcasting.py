"""Old event data is upgraded by registered functions as it is read."""

from typing import Any

import pytest

from escrow_core.store import LOG_START, Store, Upcasters, open_store
from support.events import new_event, new_stream_id, now, tail_log


def money_as_object(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: amount and currency become one money object."""
    rest = {k: v for k, v in data.items() if k not in ("amount", "currency")}
    return {**rest, "amount": {"amount": data["amount"], "currency": data["currency"]}}


def add_method(data: dict[str, Any]) -> dict[str, Any]:
    """v2 -> v3: a method field appears, defaulting to bank transfer."""
    return {**data, "method": "bank_transfer"}


def payment_upcasters() -> Upcasters:
    upcasters = Upcasters()
    upcasters.register("payment.received", 2, add_method)
    upcasters.register("payment.received", 1, money_as_object)
    return upcasters


def test_upcasters_apply_their_chain_in_order() -> None:
    upcasters = payment_upcasters()

    assert upcasters.upcast("payment.received", 1, {"amount": 5, "currency": "EUR"}) == (
        3,
        {"amount": {"amount": 5, "currency": "EUR"}, "method": "bank_transfer"},
    )
    assert upcasters.upcast("payment.received", 2, {"amount": {}}) == (
        3,
        {"amount": {}, "method": "bank_transfer"},
    )
    assert upcasters.upcast("payment.received", 3, {"x": 1}) == (3, {"x": 1})
    assert upcasters.upcast("order.placed", 1, {"x": 1}) == (1, {"x": 1})


def test_a_step_is_registered_once() -> None:
    upcasters = payment_upcasters()

    with pytest.raises(ValueError, match="already registered"):
        upcasters.register("payment.received", 1, add_method)
    with pytest.raises(ValueError, match="start at 1"):
        upcasters.register("payment.received", 0, add_method)


async def test_old_events_are_read_upgraded_and_stored_unchanged(fresh_store: Store) -> None:
    stream_id = new_stream_id()
    old = new_event("payment.received", {"amount": 700, "currency": "USD"}, schema_version=1)
    current = new_event(
        "payment.received",
        {"amount": {"amount": 1, "currency": "USD"}, "method": "card"},
        schema_version=3,
    )
    await fresh_store.append(stream_id, 0, [old, current], recorded_at=now())
    upcasting = open_store(fresh_store.url, upcasters=payment_upcasters())

    try:
        from_stream = await upcasting.stream(stream_id)
        async with upcasting.command() as session:
            from_session = await session.stream(stream_id)
        from_log, _ = await tail_log(upcasting, LOG_START, count=2)
        from_whole_log = [e async for batch in upcasting.whole_log(batch_size=1) for e in batch]
    finally:
        await upcasting.dispose()
    as_stored = await fresh_store.stream(stream_id)

    upgraded = {"amount": {"amount": 700, "currency": "USD"}, "method": "bank_transfer"}
    for events in (from_stream, from_session, from_log, from_whole_log):
        assert [(e.schema_version, e.data) for e in events] == [(3, upgraded), (3, current.data)]
    assert [(e.schema_version, e.data) for e in as_stored] == [
        (1, old.data),
        (3, current.data),
    ]
