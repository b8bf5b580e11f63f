"""The command service: one command = one atomic write.

    load (a remembered order, the inline snapshot in ``order_view``, or the stream)
    -> decide -> append + update the inline projections + keep the answer, atomically

(``Store.command`` says how each backend makes the write atomic.)

A concurrent writer turns the write into ``ConcurrencyError``; the command is then re-read and
re-decided, a bounded number of times, so the domain rule and not the race decides the outcome.
"""

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from escrow_core.application.idempotency import (
    DUPLICATE_WAIT_SECONDS,
    Remember,
    Replayed,
    in_flight,
)
from escrow_core.application.snapshot_cache import SnapshotCache
from escrow_core.domain.commands import Command, PlaceOrder
from escrow_core.domain.errors import DomainError
from escrow_core.domain.events import AnyEvent, event_from_data, event_to_data, schema_version
from escrow_core.domain.order import NewIds, OrderState, decide, fold
from escrow_core.ids import new_id
from escrow_core.projections import ledger, money_out, order_view, party_balances
from escrow_core.store import (
    BalanceChange,
    CommandSession,
    Commit,
    ConcurrencyError,
    KeyBusy,
    NewEvent,
    RecordedEvent,
    Store,
)

MAX_ATTEMPTS = 8
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
# inside the command's own attempt, without a separate read).
CommandOrBuilder = Command | Callable[[OrderState | None], Command]


def decode(recorded: RecordedEvent) -> AnyEvent:
    return event_from_data(recorded.type, recorded.data)


class Source(Enum):
    """Where an attempt takes the order from."""

    MEMORY = "memory"  # the order as this process last wrote it (checked by the write)
    SNAPSHOT = "snapshot"  # the order_view row
    STREAM = "stream"  # the log itself: after a lost race, or with no row


@dataclass(frozen=True, slots=True)
class _Request:
    """One command as asked, the same on every attempt."""

    order_id: str
    command: CommandOrBuilder
    context: CommandContext
    command_id: str
    expected_version: int | None
    remember: Remember | None


@dataclass(frozen=True, slots=True)
class _Retry:
    source: Source
    backoff: bool


@dataclass(frozen=True, slots=True)
class _Answered:
    """The attempt ends without a write of events: a kept answer to replay, or a refusal by
    the order's rules (its answer kept). Raised once the session has ended, so SQLite commits
    the kept answer rather than rolling it back."""

    outcome: Replayed | DomainError


class CommandService:
    """Runs commands on orders, and reads orders back."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.memory = SnapshotCache()

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

        ``remember`` keeps the answer under an Idempotency-Key in that same write (a refusal
        by the order's rules in a write of its own); ``Replayed`` when the key has an answer.
        """
        request = _Request(
            order_id,
            command,
            context or CommandContext(),
            str(uuid.uuid4()),
            expected_version,
            remember,
        )
        source = Source.MEMORY
        for attempt in range(MAX_ATTEMPTS):
            async with self.store.command() as session:
                outcome = await self._attempt(session, request, source)
            if isinstance(outcome, CommandResult):
                return outcome
            if isinstance(outcome, _Answered):
                raise outcome.outcome
            source = outcome.source
            if outcome.backoff:
                await asyncio.sleep(_backoff(attempt))
        raise TooMuchContention(f"order {order_id} kept changing; {MAX_ATTEMPTS} attempts lost")

    async def _attempt(
        self, session: CommandSession, request: _Request, source: Source
    ) -> CommandResult | _Retry | _Answered:
        order_id, remember = request.order_id, request.remember
        if remember is not None:
            # An order this process does not remember has its snapshot read with the key's
            # turn, one round trip for both (PostgreSQL).
            reads_snapshot = (
                source is not Source.STREAM
                and not isinstance(request.command, PlaceOrder)
                and (source is Source.SNAPSHOT or self.memory.get(order_id) is None)
            )
            try:
                found = await session.hold_key(
                    remember.scope,
                    remember.key,
                    datetime.now(UTC),
                    wait_seconds=DUPLICATE_WAIT_SECONDS,
                    snapshot_of=order_id if reads_snapshot else None,
                )
            except KeyBusy:
                raise in_flight() from None
            if found is not None:
                return _Answered(remember.replay(found))
        # A new order needs no read: its id was just made, so nothing is stored under it.
        if isinstance(request.command, PlaceOrder):
            state, remembered = None, False
        elif source is Source.MEMORY and (state := self.memory.get(order_id)) is not None:
            remembered = True
        else:
            state, remembered = await self._load(session, order_id, source), False
        try:
            result = await self._decide_and_write(session, request, state)
        except ConcurrencyError:
            # A lost race, or a row behind the log (restored from a backup, say) that would
            # lose every attempt: the retry folds the log, and the write rewrites the row.
            self.memory.forget(order_id)
            return (
                _Retry(Source.SNAPSHOT, backoff=False)
                if remembered
                else _Retry(Source.STREAM, backoff=True)
            )
        except DomainError as refused:
            if remembered:
                self.memory.forget(order_id)  # a refusal is only answered on the stored order
                return _Retry(Source.SNAPSHOT, backoff=False)
            if remember is not None and (answer := remember.refusal(refused)) is not None:
                await session.save_answer(remember.stored(answer))
            return _Answered(refused)
        except VersionMismatch:
            if not remembered:
                raise
            self.memory.forget(order_id)
            return _Retry(Source.SNAPSHOT, backoff=False)
        if not result.events:
            if remembered:  # a no-op's answer shows the stored order
                self.memory.forget(order_id)
                return _Retry(Source.SNAPSHOT, backoff=False)
            if remember is not None:
                answer = remember.answer(order_id, result.state, result.at)
                await session.save_answer(remember.stored(answer))
            self.memory.put(order_id, result.state)
        return result

    async def _load(
        self, session: CommandSession, order_id: str, source: Source
    ) -> OrderState | None:
        if source is not Source.STREAM and (document := await session.snapshot(order_id)):
            return order_view.from_document(document)
        # The log is the truth: no row (a new order, or a projection being rebuilt or
        # repaired), or a retry after a lost race.
        return fold(decode(r) for r in await session.stream(order_id))

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
        events = decide(state, command, now, NewIds(new_id("x")[2:]))
        if not events:
            if state is None:
                raise RuntimeError(f"{type(command).__name__} decided nothing on no order")
            return CommandResult(order_id, state, [], now)
        after = fold(events, state)
        if after is None:
            raise RuntimeError(f"{type(command).__name__} left no order behind")
        metadata = request.context.metadata(command, request.command_id)
        new_events = [
            NewEvent(uuid.uuid4(), e.type, event_to_data(e), metadata, schema_version(e.type))
            for e in events
        ]
        recorded = await session.commit(
            Commit(
                stream_id=order_id,
                expected_version=version,
                events=new_events,
                view=order_view.row_for(order_id, after),
                balances=_balance_changes(order_id, after, events, version),
                postings=ledger.postings_of_command(
                    order_id, state, events, [str(new.event_id) for new in new_events]
                ),
                money_out=money_out.rows_for(order_id, after, money_out.touched(events)),
                recorded_at=now,
                answer=(
                    remember.stored(remember.answer(order_id, after, now))
                    if remember is not None
                    else None
                ),
            )
        )
        self.memory.put(order_id, after)
        return CommandResult(order_id, after, recorded, now)

    # --- queries --------------------------------------------------------------------------
    async def get_order(self, order_id: str, *, version: int | None = None) -> OrderState | None:
        """The order now, or as it stood at ``version``."""
        if version is None and (document := await self.store.snapshot(order_id)) is not None:
            # The state this process last wrote or read at that version is this document
            # already: validating it again was most of a GET's Python (bench/README.md).
            known = self.memory.get(order_id)
            if known is not None and known.version == document.get("version"):
                return known
            order = order_view.from_document(document)
            self.memory.put(order_id, order)
            return order
        recorded = await self.store.stream(order_id, up_to_version=version)
        if version is not None and len(recorded) < version:
            return None
        return fold(decode(r) for r in recorded)


def _backoff(attempt: int) -> float:
    return random.uniform(
        0, min(RETRY_BACKOFF_CAP_SECONDS, RETRY_BACKOFF_BASE_SECONDS * 2**attempt)
    )


def _balance_changes(
    order_id: str, order: OrderState, events: list[AnyEvent], version: int
) -> list[BalanceChange]:
    """Each money-moving event's change to the parties' balances, by the event's version."""
    return [
        change
        for offset, event in enumerate(events, start=1)
        for change in party_balances.changes(order_id, order, event, version + offset)
    ]
