"""Orders built through the service, one command at a time, for the service and CLI tests.

    cast = Cast.new()                         # a buyer and a supplier no other test uses
    orders = Orders(service, cast)
    order_id = await orders.up_to("delivered")  # placed, accepted, paid in two tranches ...
    await orders.run(order_id, c.ConfirmReceipt(actor=cast.buyer))

The order: 10 x USD 100.00 + USD 250.00 shipping = 125_000 cents, paid 50_000 + 75_000, a
10-day inspection window and a 2.5% fee (250 bps: 3_125 on the whole total).
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from escrow_core.application.commands import CommandResult, CommandService, decode
from escrow_core.domain import commands as c
from escrow_core.domain.order import OrderState, fold
from escrow_core.domain.roles import Actor, Role
from escrow_core.domain.terms import DisputeReason, LineItem, PaymentMethod
from escrow_core.store import (
    CommandSession,
    Commit,
    KeyRecord,
    RecordedEvent,
    Store,
    StoredAnswer,
)

TOTAL = 125_000
DEPOSIT = 50_000
BALANCE = TOTAL - DEPOSIT
FEE_BPS = 250
INSPECTION_DAYS = 10
PAYMENTS = Actor(role=Role.PAYMENTS)
MEDIATOR = Actor(role=Role.MEDIATOR)


@dataclass(frozen=True)
class Cast:
    buyer: Actor
    supplier: Actor

    @classmethod
    def new(cls) -> "Cast":
        tag = uuid.uuid4().hex[:12]
        return cls(
            buyer=Actor(role=Role.BUYER, party_id=f"pty_buyer_{tag}"),
            supplier=Actor(role=Role.SUPPLIER, party_id=f"pty_supplier_{tag}"),
        )

    @property
    def buyer_id(self) -> str:
        assert self.buyer.party_id
        return self.buyer.party_id

    @property
    def supplier_id(self) -> str:
        assert self.supplier.party_id
        return self.supplier.party_id


def place_order(cast: Cast, **changes: Any) -> c.PlaceOrder:
    fields: dict[str, Any] = {
        "actor": cast.buyer,
        "buyer_id": cast.buyer_id,
        "supplier_id": cast.supplier_id,
        "supplier_trade_assurance": True,
        "currency": "USD",
        "currency_exponent": 2,
        "items": (
            LineItem(sku="VALVE-20", description="brass valve", quantity=10, unit_price=10_000),
        ),
        "shipping_fee": 25_000,
        "incoterm": "FOB",
        "quality_terms": "brass CW617N, pressure-tested to 16 bar",
        # Far enough ahead that a sandbox clock moved on by weeks still finds it in the future.
        "ship_by": date.today() + timedelta(days=60),
        "inspection_days": INSPECTION_DAYS,
        "fee_bps": FEE_BPS,
    }
    return c.PlaceOrder(**{**fields, **changes})


def pay(amount: int, ref: str) -> c.RecordPayment:
    return c.RecordPayment(
        actor=PAYMENTS, amount=amount, method=PaymentMethod.BANK_TRANSFER, provider_ref=ref
    )


def open_dispute(cast: Cast, refund: int) -> c.OpenDispute:
    return c.OpenDispute(
        actor=cast.buyer,
        reason=DisputeReason.QUALITY,
        description="valves leak at 10 bar",
        requested_refund=refund,
    )


def main_line(cast: Cast) -> list[tuple[str, c.Command]]:
    """(status after, command) from placed to delivered."""
    return [
        ("accepted", c.AcceptOrder(actor=cast.supplier)),
        ("partially_paid", pay(DEPOSIT, "pay_deposit")),
        ("held", pay(BALANCE, "pay_balance")),
        ("shipped", c.ShipOrder(actor=cast.supplier, carrier="Maersk", tracking_number="MAEU1")),
        ("delivered", c.ReportDelivery(actor=cast.supplier)),
    ]


@dataclass
class Orders:
    service: CommandService
    cast: Cast

    async def place(self, **changes: Any) -> str:
        return (await self.service.place_order(place_order(self.cast, **changes))).order_id

    async def run(self, order_id: str, *commands: c.Command) -> CommandResult:
        results = [await self.service.execute(order_id, command) for command in commands]
        return results[-1]

    async def up_to(self, status: str, **changes: Any) -> str:
        """A new order taken along the main line until it is ``status``."""
        order_id = await self.place(**changes)
        if status == "placed":
            return order_id
        for reached, command in main_line(self.cast):
            result = await self.service.execute(order_id, command)
            assert result.state.status == reached, result.state.status
            if reached == status:
                return order_id
        raise ValueError(f"{status} is not on the main line")


# --- racing -------------------------------------------------------------------------------
class WatchedSession:
    """A command session whose loads are counted, and whose ``now()`` (read after loading the
    order, before deciding) is counted and may first run ``before_deciding``; everything goes
    to the real session."""

    def __init__(self, session: CommandSession, watched: "WatchedStore") -> None:
        self.session = session
        self.watched = watched

    async def snapshot(self, order_id: str) -> dict[str, Any] | None:
        self.watched.loads.append("snapshot")
        return await self.session.snapshot(order_id)

    async def stream(self, order_id: str) -> list[RecordedEvent]:
        self.watched.loads.append("stream")
        return await self.session.stream(order_id)

    async def now(self) -> datetime:
        self.watched.reads += 1
        await self.watched.before_deciding(self.watched.reads)
        return await self.session.now()

    async def commit(self, commit: Commit) -> list[RecordedEvent]:
        return await self.session.commit(commit)

    async def save_answer(self, answer: StoredAnswer) -> None:
        await self.session.save_answer(answer)

    async def hold_key(
        self,
        scope: str,
        key: str,
        now: datetime,
        *,
        wait_seconds: float,
        snapshot_of: str | None = None,
    ) -> KeyRecord | None:
        self.watched.held.append(snapshot_of)
        return await self.session.hold_key(
            scope, key, now, wait_seconds=wait_seconds, snapshot_of=snapshot_of
        )


class WatchedStore:
    """A Store whose command sessions are ``WatchedSession``s: ``reads`` counts the attempts
    that got as far as deciding, ``loads`` lists what they read the order from (``snapshot``,
    ``stream``), ``held`` the ``snapshot_of`` of each Idempotency-Key turn. Everything but
    ``command()`` is the real store's."""

    def __init__(
        self, store: Store, before_deciding: Callable[[int], Awaitable[None]] | None = None
    ) -> None:
        self.store = store
        self.reads = 0
        self.loads: list[str] = []
        self.held: list[str | None] = []  # each Idempotency-Key turn: the snapshot read with it
        self.before_deciding = before_deciding or _nothing

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def command(self) -> AbstractAsyncContextManager[CommandSession]:
        return self._command()

    @asynccontextmanager
    async def _command(self) -> AsyncIterator[CommandSession]:
        async with self.store.command() as session:
            yield WatchedSession(session, self)


async def _nothing(read: int) -> None:
    return None


def counting_store(store: Store) -> WatchedStore:
    return WatchedStore(store)


def racing_store(store: Store, parties: int) -> WatchedStore:
    """The first ``parties`` command attempts wait for one another after loading the order and
    before deciding, so they all decide on the same version and really race to commit. Retries
    go through without waiting.

    On SQLite a command session holds the write lock from BEGIN, so the others could never
    arrive: there the commands queue instead, and the store only counts.
    """
    if store.dialect != "postgresql":
        return WatchedStore(store)
    barrier = asyncio.Barrier(parties)

    async def rendezvous(read: int) -> None:
        if read <= parties:
            await asyncio.wait_for(barrier.wait(), timeout=30)

    return WatchedStore(store, rendezvous)


def service_on(store: WatchedStore) -> CommandService:
    """A command service (a process of its own: nothing remembered) on a watched store."""
    return CommandService(cast(Store, store))


# --- reading what the database holds -----------------------------------------------------
async def folded(store: Store, order_id: str) -> OrderState:
    """The order folded from its stream, ignoring every projection."""
    state = fold(decode(r) for r in await store.stream(order_id))
    assert state is not None
    return state


async def event_types(store: Store, order_id: str) -> list[str]:
    return [r.type for r in await store.stream(order_id)]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
