"""The application layer: one command = one atomic write.

    load (the inline snapshot in ``order_view``; the stream if it is missing)
    -> decide -> append + update the inline projections + keep the answer, atomically

(escrow_core.unit_of_work says how each backend makes the write atomic.)

A concurrent writer turns the append into ``ConcurrencyError``; the command is then re-read and
re-decided, a bounded number of times, so the domain rule and not the race decides the outcome.
"""

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from escrow_core.clock import Clock
from escrow_core.domain.commands import Command, PlaceOrder
from escrow_core.domain.errors import DomainError
from escrow_core.domain.events import AnyEvent, event_from_data, event_to_data
from escrow_core.domain.order import OrderState, decide, due_timer_commands, fold
from escrow_core.idempotency import Remember
from escrow_core.ids import new_id
from escrow_core.projections import order_view, party_balances
from escrow_core.projections.party_balances import Balance
from escrow_core.snapshot_cache import SnapshotCache
from escrow_core.store import ConcurrencyError, Database, EventStore, NewEvent, RecordedEvent
from escrow_core.unit_of_work import CommandSession, Commit, command_session, read_session

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


def decode(recorded: RecordedEvent) -> AnyEvent:
    return event_from_data(recorded.type, recorded.data)


@dataclass(frozen=True, slots=True)
class _Request:
    """One command as asked, the same on every attempt."""

    order_id: str
    command: CommandOrBuilder
    context: CommandContext
    command_id: str
    expected_version: int | None
    remember: Remember | None


class _StaleSnapshot(Exception):
    """A cached snapshot refused or lost the write: decide again on the stored order."""


class EscrowService:
    def __init__(self, database: Database, store: EventStore, clock: Clock) -> None:
        self.database = database
        self.store = store
        self.clock = clock
        self.snapshots = SnapshotCache()

    async def place_order(
        self,
        command: PlaceOrder,
        *,
        context: CommandContext | None = None,
        remember: Remember | None = None,
    ) -> CommandResult:
        return await self.execute(new_id("ord"), command, context=context, remember=remember)

    async def execute(
        self,
        order_id: str,
        command: CommandOrBuilder,
        *,
        context: CommandContext | None = None,
        expected_version: int | None = None,
        remember: Remember | None = None,
    ) -> CommandResult:
        """Run ``command`` on ``order_id`` as one atomic write; DomainError if refused.

        ``remember`` stores the answer under an Idempotency-Key in that same write.
        """
        request = _Request(
            order_id,
            command,
            context or CommandContext(),
            str(uuid.uuid4()),
            expected_version,
            remember,
        )
        source = "cache"
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with command_session(self.database, self.store, self.clock) as session:
                    return await self._attempt(session, request, source)
            except _StaleSnapshot:
                source = "snapshot"
            except ConcurrencyError:
                # A lost race, or a row behind the log (restored from a backup, say) that
                # would lose every attempt: the retry folds the log, and rewrites the row.
                source = "stream"
                await asyncio.sleep(_backoff(attempt))
        raise TooMuchContention(f"order {order_id} kept changing; {MAX_ATTEMPTS} attempts lost")

    async def _attempt(
        self, session: CommandSession, request: _Request, source: str
    ) -> CommandResult:
        order_id = request.order_id
        if source != "cache":
            state = await self._load(session, order_id, source)
            return await self._decide_and_write(session, request, state)
        # A new order needs no read: its id was just made. Any other order this process
        # wrote last is in the cache. Either way the write checks the version it assumed.
        if isinstance(request.command, PlaceOrder):
            assumed = None
        elif (assumed := self.snapshots.get(order_id)) is None:
            return await self._attempt(session, request, "snapshot")
        try:
            result = await self._decide_and_write(session, request, assumed)
        except (DomainError, VersionMismatch, ConcurrencyError) as error:
            self.snapshots.forget(order_id)
            raise _StaleSnapshot from error
        if not result.events:  # a no-op's answer shows the order: show the stored one
            self.snapshots.forget(order_id)
            raise _StaleSnapshot
        return result

    async def _load(self, session: CommandSession, order_id: str, source: str) -> OrderState | None:
        state = await session.snapshot(order_id) if source != "stream" else None
        if state is None:
            # The log is the truth: no row (a new order, or a projection being rebuilt or
            # repaired), or a retry after a lost race.
            state = fold(decode(r) for r in await session.stream(order_id))
        return state

    async def _decide_and_write(
        self, session: CommandSession, request: _Request, state: OrderState | None
    ) -> CommandResult:
        order_id, remember = request.order_id, request.remember
        command = (
            request.command if isinstance(request.command, Command) else request.command(state)
        )
        version = state.version if state else 0
        expected = request.expected_version
        if expected is not None and expected != version:
            raise VersionMismatch(expected, version)
        now = await session.now()
        events = decide(state, command, now)
        if not events:
            assert state is not None
            if remember is not None:
                answer = remember.answer(order_id, state, now)
                await session.save_answer(remember.scope, remember.key, answer)
            self.snapshots.put(order_id, state)
            return CommandResult(order_id, state, [], now)
        after = fold(events, state)
        assert after is not None
        metadata = request.context.metadata(command, request.command_id)
        recorded = await session.commit(
            Commit(
                order_id=order_id,
                expected_version=version,
                events=[NewEvent(uuid.uuid4(), e.type, event_to_data(e), metadata) for e in events],
                after=after,
                balances=_balance_changes(after, events, version),
                recorded_at=now,
                answer=(
                    (remember.scope, remember.key, remember.answer(order_id, after, now))
                    if remember is not None
                    else None
                ),
            )
        )
        self.snapshots.put(order_id, after)
        return CommandResult(order_id, after, recorded, now)

    # --- queries --------------------------------------------------------------------------
    async def get_order(self, order_id: str, *, version: int | None = None) -> OrderState | None:
        """The order now, or as it stood at ``version``."""
        async with read_session(self.database, self.store, self.clock) as session:
            if version is None:
                snapshot = await session.snapshot(order_id)
                if snapshot is not None:
                    return snapshot
            recorded = await session.stream(order_id)
        if version is not None:
            if len(recorded) < version:
                return None
            recorded = recorded[:version]
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


def _balance_changes(
    order: OrderState, events: list[AnyEvent], version: int
) -> list[tuple[int, Balance]]:
    """Each money-moving event's change to the parties' balances, by the event's version."""
    changes = []
    for offset, event in enumerate(events, start=1):
        if (delta := party_balances.apply(order, event)) is not None:
            changes.append((version + offset, delta))
    return changes
