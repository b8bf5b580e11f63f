"""The deadlines that make escrow fair, fired by the worker as ordinary commands.

The sandbox clock moves time forward (every process on the database sees it); each test has
its own database, so its clock is its own.
"""

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from escrow_core.application.commands import VersionMismatch
from escrow_core.application.timers import TIMER_CONTEXT, fire_due_timers
from escrow_core.domain.commands import AutoConfirmReceipt
from escrow_core.domain.errors import DomainError
from escrow_core.store import Store
from support.receiver import Receiver

from .conftest import Cast, Hooks, hooks_on

DAY = 86_400


@pytest.fixture
async def sandbox(fresh_store: Store, receiver: Receiver) -> AsyncIterator[Hooks]:
    async with hooks_on(fresh_store, receiver, sandbox=True) as hooks:
        yield hooks


async def advance(hooks: Hooks, days: float) -> None:
    response = await hooks.api.client.post(
        "/v1/sandbox/clock", json={"advance_seconds": int(days * DAY)}, headers=hooks.api.admin
    )
    assert response.status_code == 200, response.text


async def order(hooks: Hooks, order_id: str) -> dict[str, Any]:
    response = await hooks.api.client.get(f"/v1/orders/{order_id}", headers=hooks.api.admin)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def types(hooks: Hooks, order_id: str) -> list[str]:
    return [e.type for e in await hooks.store.stream(order_id)]


async def fire(hooks: Hooks) -> int:
    return len(await fire_due_timers(hooks.runtime.commands))


async def test_an_order_not_accepted_in_time_is_cancelled(sandbox: Hooks) -> None:
    cast = await Cast.new(sandbox.api)
    order_id = await cast.place()
    assert await fire(sandbox) == 0

    await advance(sandbox, 31)
    assert await fire(sandbox) == 1

    assert (await order(sandbox, order_id))["status"] == "cancelled"
    assert await fire(sandbox) == 0  # once


async def test_an_order_not_paid_in_time_is_cancelled_and_the_part_paid_refunded(
    sandbox: Hooks,
) -> None:
    cast = await Cast.new(sandbox.api)
    order_id = await cast.place()
    await cast.to(order_id, "accepted")
    await cast.post(
        f"/v1/orders/{order_id}/payments",
        cast.payments,
        {"amount": 100_000, "method": "card", "provider_ref": "part"},
    )

    await advance(sandbox, 61)
    await fire(sandbox)

    cancelled = await order(sandbox, order_id)
    assert cancelled["status"] == "cancelled"
    assert cancelled["amounts"]["refunded"] == 100_000
    assert cancelled["amounts"]["held"] == 0
    assert "refund.issued" in await types(sandbox, order_id)


async def test_a_shipment_not_made_by_ship_by_is_marked_overdue(sandbox: Hooks) -> None:
    cast = await Cast.new(sandbox.api)
    order_id = await cast.place()
    await cast.to(order_id, "held")

    await advance(sandbox, 32)
    await fire(sandbox)

    assert (await types(sandbox, order_id))[-1] == "shipment.overdue"
    assert (await order(sandbox, order_id))["shipment_overdue"] is True


async def test_the_inspection_window_running_out_confirms_and_releases(sandbox: Hooks) -> None:
    cast = await Cast.new(sandbox.api)
    order_id = await cast.place()
    await cast.to(order_id, "delivered")
    await advance(sandbox, 14)
    assert await fire(sandbox) == 0  # the window (15 days) is still open

    await advance(sandbox, 2)
    await fire(sandbox)

    completed = await order(sandbox, order_id)
    assert completed["status"] == "completed"
    assert completed["amounts"]["released"] == completed["amounts"]["total"]
    assert (await types(sandbox, order_id))[-2:] == ["receipt.confirmed", "funds.released"]
    confirmed = (await sandbox.store.stream(order_id))[-2]
    assert confirmed.data["auto"] is True
    assert confirmed.metadata["principal"] == {"role": "system", "timer": True}


async def test_a_shipment_never_reported_delivered_completes_after_60_days(
    sandbox: Hooks,
) -> None:
    cast = await Cast.new(sandbox.api)
    order_id = await cast.place()
    await cast.to(order_id, "shipped")

    await advance(sandbox, 61)
    await fire(sandbox)

    assert (await order(sandbox, order_id))["status"] == "completed"
    assert (await types(sandbox, order_id))[-2:] == ["receipt.confirmed", "funds.released"]


async def test_a_dispute_left_open_is_escalated(sandbox: Hooks) -> None:
    cast = await Cast.new(sandbox.api)
    order_id = await cast.place()
    await cast.to(order_id, "delivered")
    await cast.post(
        f"/v1/orders/{order_id}/dispute",
        cast.buyer_auth,
        {"reason": "quality", "description": "cracked", "requested_refund": 50_000},
    )

    await advance(sandbox, 8)
    await fire(sandbox)

    disputed = await order(sandbox, order_id)
    assert disputed["status"] == "disputed"
    assert disputed["dispute"]["status"] == "escalated"
    assert (await types(sandbox, order_id))[-1] == "dispute.escalated"


async def test_the_worker_fires_due_timers_on_its_own(sandbox: Hooks) -> None:
    cast = await Cast.new(sandbox.api)
    order_id = await cast.place()
    await cast.to(order_id, "delivered")
    await advance(sandbox, 16)

    async with sandbox.worker():
        for _ in range(100):
            if (await order(sandbox, order_id))["status"] == "completed":
                break
            await asyncio.sleep(0.05)

    assert (await order(sandbox, order_id))["status"] == "completed"


async def test_a_stuck_order_does_not_hold_back_the_others(
    sandbox: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    cast = await Cast.new(sandbox.api)
    orders = [await cast.place() for _ in range(5)]
    await advance(sandbox, 31)
    service = sandbox.runtime.commands
    real_execute = service.execute
    stuck = set(orders[:3])

    async def flaky(order_id: str, *args: Any, **kwargs: Any) -> Any:
        if order_id in stuck:
            raise ConnectionError("the database went away for this one")
        return await real_execute(order_id, *args, **kwargs)

    monkeypatch.setattr(service, "execute", flaky)

    fired = await fire_due_timers(service, limit=2)  # the stuck ones come first, in a small page

    assert sorted(r.order_id for r in fired) == sorted(orders[3:])


@pytest.mark.postgres_only
async def test_a_buyer_confirming_as_the_window_closes_gets_one_outcome(sandbox: Hooks) -> None:
    cast = await Cast.new(sandbox.api)
    orders = [await cast.place() for _ in range(20)]
    for order_id in orders:
        await cast.to(order_id, "delivered")
    await advance(sandbox, 16)
    service = sandbox.runtime.commands
    rng = random.Random(7)

    async def buyer(order_id: str) -> str:
        await asyncio.sleep(rng.uniform(0, 0.004))
        response = await sandbox.api.client.post(
            f"/v1/orders/{order_id}/confirm-receipt", headers=cast.buyer_auth
        )
        assert response.status_code in (200, 409), response.text  # won, or found it done
        return "buyer" if response.status_code == 200 else "-"

    seen = {order_id: (await order(sandbox, order_id))["version"] for order_id in orders}

    async def timer(order_id: str) -> str:
        # Exactly what a worker's tick does for one order: the command with the version seen.
        await asyncio.sleep(rng.uniform(0, 0.004))
        try:
            await service.execute(
                order_id,
                AutoConfirmReceipt(),
                context=TIMER_CONTEXT,
                expected_version=seen[order_id],
            )
        except (VersionMismatch, DomainError):
            return "-"
        return "timer"

    races = [asyncio.gather(buyer(o), timer(o)) for o in orders]
    results = await asyncio.gather(*races, fire_due_timers(service), fire_due_timers(service))

    winners = Counter(w for pair in results[: len(orders)] for w in pair if w != "-")
    late_ticks = sum(len(fired) for fired in results[len(orders) :])
    for order_id in orders:
        counts = Counter(await types(sandbox, order_id))
        assert counts["receipt.confirmed"] == 1, order_id
        assert counts["funds.released"] == 1, order_id
        assert (await order(sandbox, order_id))["status"] == "completed"
    assert winners["buyer"] + winners["timer"] + late_ticks == len(orders)
    print(f"\nrace: buyer won {winners['buyer']}, timer {winners['timer'] + late_ticks}")
