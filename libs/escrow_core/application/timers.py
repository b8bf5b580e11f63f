"""Deadlines fire as ordinary commands, each carrying the version its timer saw.

A timer's events name their cause: ``causation_id`` is the id of the event that set the
deadline which fired (the latest event of the order after which that deadline ran at the time
it fired: the placement, an acceptance, a delivery, an extension ...), and they carry that
event's ``correlation_id`` on, so a client's correlation id follows what its request set off.
"""

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from escrow_core.application.commands import (
    CommandContext,
    CommandResult,
    CommandService,
    VersionMismatch,
    decode,
)
from escrow_core.domain.errors import DomainError
from escrow_core.domain.order import OrderState, deadlines, due_timer_commands, evolve
from escrow_core.domain.order.timers import TIMER_COMMANDS
from escrow_core.store import RecordedEvent, Store

TIMER_CONTEXT = CommandContext(principal={"role": "system", "timer": True})
log = logging.getLogger("escrow.timers")


@dataclass(frozen=True, slots=True)
class FiredTimer:
    """A deadline whose timer fired (for the worker's metrics)."""

    kind: str  # the deadline kind: accept_by, ship_by, inspection_ends ...
    deadline_at: datetime
    fired_at: datetime  # the service clock when its command was decided

    @property
    def lag_seconds(self) -> float:
        return max(0.0, (self.fired_at - self.deadline_at).total_seconds())


async def fire_due_timers(
    commands: CommandService,
    *,
    limit: int = 100,
    on_fired: Callable[[FiredTimer], None] | None = None,
) -> list[CommandResult]:
    """Fire every deadline due now, each as a system command carrying the version it saw.

    A person acting at the same moment gets exactly one outcome: if the order moves first
    the timer's command is refused (VersionMismatch) and dropped; if the timer commits
    first the person's command is re-decided on the new state. One order's trouble (a
    refusal, contention, a lost connection) is logged and skipped, never allowed to hold
    back the rest: every due order is visited, ``limit`` at a time, soonest first.
    ``on_fired`` hears of every timer that fired, with its deadline.
    """
    store = commands.store
    fired: list[CommandResult] = []
    visited: set[tuple[str, int]] = set()
    while True:
        # Orders already tried this round and still due (a timer that cannot move them
        # yet) come first again, so the window grows past them to reach the others.
        window = limit + len(visited)
        now = await store.now()
        due = await store.due_for_timers(now, window)
        fresh = [pair for pair in due if pair not in visited]
        if not fresh:
            return fired
        # A fired timer may leave the order due again (a tranche overdue, then its first
        # payment's deadline): the next pass sees it at its new version.
        for order_id, version in fresh:
            visited.add((order_id, version))
            result = await _fire(commands, order_id, version, now, on_fired)
            if result is not None:
                fired.append(result)


async def _fire(
    commands: CommandService,
    order_id: str,
    version: int,
    now: datetime,
    on_fired: Callable[[FiredTimer], None] | None,
) -> CommandResult | None:
    state = await commands.get_order(order_id)
    if state is None or state.version != version:
        return None  # moved on since we looked: the next round sees the new state
    due = due_timer_commands(state, now)
    if not due:
        return None
    try:
        cause = await _cause(commands.store, order_id, version, due[0].kind)
        result = await commands.execute(
            order_id, due[0], context=_context(cause), expected_version=version
        )
    except (VersionMismatch, DomainError):
        return None  # someone acted first (or the deadline moved); their outcome stands
    except Exception:
        log.exception("timer failed", extra={"order_id": order_id})
        return None
    if on_fired is not None and result.events:
        # due[0] is the command of the soonest running timer deadline (both soonest first).
        deadline = next(d for d in deadlines(state) if d.kind in TIMER_COMMANDS)
        try:
            on_fired(FiredTimer(deadline.kind.value, deadline.at, result.at))
        except Exception:  # a listener's fault must not hold back the other timers
            log.exception("a fired timer's listener failed", extra={"order_id": order_id})
    return result


def _context(cause: RecordedEvent | None) -> CommandContext:
    if cause is None:
        return TIMER_CONTEXT
    correlation_id = cause.metadata.get("correlation_id")
    return dataclasses.replace(
        TIMER_CONTEXT,
        causation_id=f"evt_{cause.event_id.hex}",
        correlation_id=correlation_id if isinstance(correlation_id, str) else None,
    )


async def _cause(store: Store, order_id: str, version: int, kind: str) -> RecordedEvent | None:
    """The event that set the ``kind`` deadline as it runs at ``version``: one read of the
    stream (a few dozen events) and a fold, only for a timer that fires."""
    state: OrderState | None = None
    running: datetime | None = None
    cause: RecordedEvent | None = None
    for recorded in await store.stream(order_id, up_to_version=version):
        state = evolve(state, decode(recorded))
        at = next((d.at for d in deadlines(state) if d.kind.value == kind), None)
        if at is not None and at != running:
            cause = recorded
        running = at
    return cause
