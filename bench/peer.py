"""Peer comparison at library level, same lifecycle, same PostgreSQL, same concurrency.

- ``eventsourcing`` (its PostgreSQL persistence, psycopg 3): an Order aggregate whose methods
  record Placed, Accepted, Paid, Shipped, Delivered, Confirmed; the application saves after
  each command (the library's recommended style). It is synchronous, so workers are threads.
- ours: CommandService.execute for PlaceOrder, AcceptOrder, RecordPayment, ShipOrder,
  ReportDelivery, ConfirmReceipt; workers are asyncio tasks on one uvloop event loop (the
  loop `escrow serve` runs commands on).
"""

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import uvloop
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from escrow_core.application.commands import CommandService
from escrow_core.application.upcasting import event_upcasters
from escrow_core.domain import commands as c
from escrow_core.domain.roles import Actor, Role
from escrow_core.domain.terms import LineItem, PaymentMethod
from escrow_core.store import open_store

STEPS = 6


class Order(Aggregate):
    @event("Placed")
    def __init__(self, buyer_id: str, supplier_id: str, total: int) -> None:
        self.buyer_id, self.supplier_id, self.total = buyer_id, supplier_id, total
        self.status, self.paid = "placed", 0

    @event("Accepted")
    def accept(self) -> None:
        self.status = "accepted"

    @event("Paid")
    def pay(self, amount: int, provider_ref: str) -> None:
        self.paid += amount
        self.status = "held"

    @event("Shipped")
    def ship(self, carrier: str, tracking_number: str) -> None:
        self.status = "shipped"

    @event("Delivered")
    def deliver(self) -> None:
        self.status = "delivered"

    @event("Confirmed")
    def confirm(self) -> None:
        self.status = "completed"


class Orders(Application):
    def place(self, total: int) -> uuid.UUID:
        order = Order("pty_buyer", "pty_supplier", total)
        self.save(order)
        return order.id

    def act(self, order_id: uuid.UUID, do: Callable[[Order], None]) -> None:
        order: Order = self.repository.get(order_id)
        do(order)
        self.save(order)

    def lifecycle(self) -> None:
        order_id = self.place(125_000)
        self.act(order_id, lambda o: o.accept())
        self.act(order_id, lambda o: o.pay(125_000, uuid.uuid4().hex))
        self.act(order_id, lambda o: o.ship("DHL", "JD1"))
        self.act(order_id, lambda o: o.deliver())
        self.act(order_id, lambda o: o.confirm())


def peer_commands_per_second(dbname: str, workers: int, seconds: float) -> float:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_POOL_SIZE": str(max(workers, 2)),
        "CREATE_TABLE": "y",
    }
    app = Orders(env=env)
    app.lifecycle()  # warm up: tables, connections
    done = [0] * workers
    stop = time.perf_counter() + seconds

    def work(index: int) -> None:
        while time.perf_counter() < stop:
            app.lifecycle()
            done[index] += STEPS

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    app.close()
    return sum(done) / elapsed


async def ours_commands_per_second(url: str, workers: int, seconds: float) -> float:
    store = open_store(url, pool_size=max(workers, 2), upcasters=event_upcasters())
    service = CommandService(store)
    buyer = Actor(role=Role.BUYER, party_id="pty_buyer")
    supplier = Actor(role=Role.SUPPLIER, party_id="pty_supplier")
    payments = Actor(role=Role.PAYMENTS)
    ship_by = (datetime.now(UTC) + timedelta(days=30)).date()

    async def lifecycle() -> None:
        placed = await service.place_order(
            c.PlaceOrder(
                actor=buyer,
                buyer_id="pty_buyer",
                supplier_id="pty_supplier",
                supplier_trade_assurance=True,
                currency="USD",
                currency_exponent=2,
                items=(LineItem(sku="LED", quantity=10, unit_price=12_500),),
                incoterm="FOB",
                quality_terms="AQL 2.5",
                ship_by=ship_by,
                inspection_days=15,
            )
        )
        order_id = placed.order_id
        for command in (
            c.AcceptOrder(actor=supplier),
            c.RecordPayment(
                actor=payments,
                amount=125_000,
                method=PaymentMethod.BANK_TRANSFER,
                provider_ref=uuid.uuid4().hex,
            ),
            c.ShipOrder(actor=supplier, carrier="DHL", tracking_number="JD1"),
            c.ReportDelivery(actor=supplier),
            c.ConfirmReceipt(actor=buyer),
        ):
            await service.execute(order_id, command)

    await lifecycle()
    done = [0] * workers
    stop = time.perf_counter() + seconds

    async def work(index: int) -> None:
        while time.perf_counter() < stop:
            await lifecycle()
            done[index] += STEPS

    started = time.perf_counter()
    await asyncio.gather(*(work(i) for i in range(workers)))
    elapsed = time.perf_counter() - started
    await store.dispose()
    return sum(done) / elapsed


def compare(peer_db: str, ours_url: str, seconds: float) -> list[dict[str, Any]]:
    rows = []
    for workers in (1, 4):
        peer = peer_commands_per_second(peer_db, workers, seconds)
        # Our side runs on uvloop, the loop `escrow serve` runs every command on.
        ours = uvloop.run(ours_commands_per_second(ours_url, workers, seconds))
        rows.append(
            {
                "workers": workers,
                "peer_cps": round(peer, 1),
                "ours_cps": round(ours, 1),
                "ratio": round(ours / peer, 2),
            }
        )
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(compare(sys.argv[1], sys.argv[2], float(os.environ.get("BENCH_SECONDS", 10)))))
