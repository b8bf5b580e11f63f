"""The application layer: one command = one transaction.

    load (the inline snapshot in ``order_view``; the stream if it is missing)
    -> decide -> append -> update the inline projections -> commit

A concurrent writer turns the append into ``ConcurrencyError``; the command is then re-read and
re-decided, a bounded number of times, so the domain rule and not the race decides the outcome.
"""

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.clock import Clock
from escrow_core.domain.commands import Command, PlaceOrder
from escrow_core.domain.errors import DomainError
from escrow_core.domain.events import AnyEvent, event_from_data, event_to_data
from escrow_core.domain.order import OrderState, decide, due_timer_commands, fold
from escrow_core.ids import new_id
from escrow_core.projections import order_view, party_balances
from escrow_core.store import ConcurrencyError, Database, EventStore, NewEvent, RecordedEvent

MAX_ATTEMPTS = 8
_timer_log = logging.getLogger("escrow.timers")
# Losers of a race all fail at the winner's commit; retrying at once, they would collide again
# in lockstep (one more winner per round). Full jitter spreads them out: before retry n, wait
# a random time up to min(cap, base * 2**n).
RETRY_BACKOFF_BASE_SECONDS = 0.005
RETRY_BACKOFF_CAP_SECONDS = 0.1


class VersionMismatch(Exception):
    """The caller named a version (If-Match, a timer) and the order has moved on."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected version {expected}, the order is at version {actual}")
        self.expected = expected
        self.actual = actual


class TooMuchContention(Exception):
    """Every attempt lost the race to a concurrent writer of the same order."""


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Who asked and on what request; copied into every event's metadata."""

    principal: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None

    def metadata(self, command: Command, command_id: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "command": type(command).__name__,
            "command_id": command_id,
            "actor": command.actor.model_dump(mode="json"),
            "principal": self.principal,
        }
        for name in ("request_id", "idempotency_key", "correlation_id", "causation_id"):
            if (value := getattr(self, name)) is not None:
                meta[name] = value
        return meta


@dataclass(frozen=True, slots=True)
class CommandResult:
    order_id: str
    state: OrderState
    events: list[RecordedEvent]  # empty when the command was already carried out
    at: datetime  # the service clock when the command was decided


# A command, or what builds it from the order as loaded (to authorise against the order
# inside the command's own transaction, without a separate read).
CommandOrBuilder = Command | Callable[[OrderState | None], Command]


TIMER_CONTEXT = CommandContext(principal={"role": "system", "timer": True})

# Extra writes that must commit with the command (the idempotency record).
Within = Callable[[AsyncConnection, CommandResult], Awaitable[None]]


def decode(recorded: RecordedEvent) -> AnyEvent:
    return event_from_data(recorded.type, recorded.data)


class EscrowService:
    def __init__(self, database: Database, store: EventStore, clock: Clock) -> None:
        self.database = database
        self.store = store
        self.clock = clock

    async def place_order(
        self,
        command: PlaceOrder,
        *,
        context: CommandContext | None = None,
        within: Within | None = None,
    ) -> CommandResult:
        return await self.execute(new_id("ord"), command, context=context, within=within)

    async def execute(
        self,
        order_id: str,
        command: CommandOrBuilder,
        *,
        context: CommandContext | None = None,
        expected_version: int | None = None,
        within: Within | None = None,
    ) -> CommandResult:
        """Run ``command`` on ``order_id`` in one transaction; DomainError if refused."""
        context = context or CommandContext()
        command_id = str(uuid.uuid4())
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with self.database.transaction() as conn:
                    result = await self._attempt(
                        conn,
                        order_id,
                        command,
                        context,
                        command_id,
                        expected_version,
                        from_stream=attempt > 0,
                    )
                    if within is not None:
                        await within(conn, result)
                    return result
            except ConcurrencyError:
                await asyncio.sleep(_backoff(attempt))
        raise TooMuchContention(f"order {order_id} kept changing; {MAX_ATTEMPTS} attempts lost")

    async def _attempt(
        self,
        conn: AsyncConnection,
        order_id: str,
        command_or_builder: CommandOrBuilder,
        context: CommandContext,
        command_id: str,
        expected_version: int | None,
        *,
        from_stream: bool,
    ) -> CommandResult:
        snapshot = await order_view.load(conn, order_id)
        state = snapshot
        if snapshot is None or from_stream:
            # The log is the truth. No row: a new order, or a projection being rebuilt or
            # repaired. A retry: the race was lost, and a row behind the log (restored from
            # a backup, say) would lose every attempt; this one rewrites it.
            state = await self._fold_stream(conn, order_id)
        command = (
            command_or_builder
            if isinstance(command_or_builder, Command)
            else command_or_builder(state)
        )
        version = state.version if state else 0
        if expected_version is not None and expected_version != version:
            raise VersionMismatch(expected_version, version)
        now = await self.clock.now(conn)
        events = decide(state, command, now)
        if not events:
            assert state is not None
            return CommandResult(order_id, state, [], now)
        metadata = context.metadata(command, command_id)
        recorded = await self.store.append(
            conn,
            order_id,
            version,
            [NewEvent(uuid.uuid4(), ev.type, event_to_data(ev), metadata) for ev in events],
            recorded_at=now,
        )
        after = fold(events, state)
        assert after is not None
        await order_view.save(conn, order_id, after, existed=snapshot is not None)
        await party_balances.insert(conn, _balance_rows(order_id, after, events, recorded))
        return CommandResult(order_id, after, recorded, now)

    async def _fold_stream(self, conn: AsyncConnection, order_id: str) -> OrderState | None:
        return fold(decode(r) for r in await self.store.read_stream(conn, order_id))

    # --- queries --------------------------------------------------------------------------
    async def get_order(self, order_id: str, *, version: int | None = None) -> OrderState | None:
        """The order now, or as it stood at ``version``."""
        async with self.database.read() as conn:
            if version is None:
                snapshot = await order_view.load(conn, order_id)
                return snapshot if snapshot is not None else await self._fold_stream(conn, order_id)
            recorded = await self.store.read_stream(conn, order_id, up_to_version=version)
        if len(recorded) < version:
            return None
        return fold(decode(r) for r in recorded)

    async def order_events(self, order_id: str) -> list[RecordedEvent]:
        async with self.database.read() as conn:
            return await self.store.read_stream(conn, order_id)

    # --- timers ---------------------------------------------------------------------------
    async def fire_due_timers(self, *, limit: int = 100) -> list[CommandResult]:
        """Fire every deadline due now, each as a system command carrying the version it saw.

        A person acting at the same moment gets exactly one outcome: if the order moves first
        the timer's command is refused (VersionMismatch) and dropped; if the timer commits
        first the person's command is re-decided on the new state. One order's trouble (a
        refusal, contention, a lost connection) is logged and skipped, never allowed to hold
        back the rest: every due order is visited, ``limit`` at a time, soonest first.
        """
        fired: list[CommandResult] = []
        visited: set[tuple[str, int]] = set()
        while True:
            # Orders already tried this round and still due (a timer that cannot move them
            # yet) come first again, so the window grows past them to reach the others.
            window = limit + len(visited)
            async with self.database.read() as conn:
                now = await self.clock.now(conn)
                due = await order_view.due_for_timers(conn, now, window)
            for order_id, version in due:
                if (order_id, version) in visited:
                    continue
                visited.add((order_id, version))
                result = await self._fire_timer(order_id, version, now)
                if result is not None:
                    fired.append(result)
            if len(due) < window:
                return fired

    async def _fire_timer(self, order_id: str, version: int, now: datetime) -> CommandResult | None:
        state = await self.get_order(order_id)
        if state is None or state.version != version:
            return None  # moved on since we looked: the next round sees the new state
        commands = due_timer_commands(state, now)
        if not commands:
            return None
        try:
            return await self.execute(
                order_id, commands[0], context=TIMER_CONTEXT, expected_version=version
            )
        except (VersionMismatch, DomainError):
            return None  # someone acted first (or the deadline moved); their outcome stands
        except Exception:
            _timer_log.exception("timer failed", extra={"order_id": order_id})
            return None


def _backoff(attempt: int) -> float:
    return random.uniform(
        0, min(RETRY_BACKOFF_CAP_SECONDS, RETRY_BACKOFF_BASE_SECONDS * 2**attempt)
    )


def _balance_rows(
    order_id: str, order: OrderState, events: list[AnyEvent], recorded: list[RecordedEvent]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for event, stored in zip(events, recorded, strict=True):
        if (delta := party_balances.apply(order, event)) is not None:
            rows.extend(party_balances.rows_for(order_id, order, delta, stored.position))
    return rows
