"""The global feed: every event after a cursor that the caller may see, in commit order.

Filters (``types``, ``order_id``) narrow the read in the store itself, in the same
commit-safe order, so a filtered page's cursor is an ordinary checkpoint: it may be used with
other filters, or none. ``from_head`` answers an empty page whose cursor is the commit-safe
head of the log: a consumer starts tailing from now without reading the past.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from escrow_core.application import visibility
from escrow_core.application.errors import Invalid
from escrow_core.application.pagination import Page, Scan, encode_cursor, paginate, require
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.domain.events import EVENT_TYPES
from escrow_core.payouts import payout_parties, payout_party
from escrow_core.store import LOG_START, Checkpoint, LogFilter, RecordedEvent
from escrow_core.webhooks.endpoints import ENDPOINT_DISABLED, WEBHOOK_TEST

# A party's events are a thin slice of a busy log: one request reads at most this many
# events looking for them, then answers what it found with a cursor to go on from.
SCAN_BUDGET = 5000
READ_BATCH = 500
MAX_CURSOR_VALUE = 2**63
#: Every type the log holds: the order's events and the webhook endpoints' own. A
#: ``webhook.test`` is only for the endpoint it was sent to: a filter may name it, and finds
#: nothing, as the feed never shows one.
FEED_TYPES = frozenset({*EVENT_TYPES, ENDPOINT_DISABLED, WEBHOOK_TEST})

LogReader = Callable[[Checkpoint, int], Awaitable[list[RecordedEvent]]]


async def events(
    runtime: Runtime,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    types: Sequence[str] = (),
    order_id: str | None = None,
    from_head: bool = False,
) -> Page[RecordedEvent]:
    """Events after ``cursor`` (an empty page may still have more; the cursor is always given,
    so a consumer polls the feed from it for what comes next), of ``types`` (any if empty) and
    of ``order_id`` (any if None); or, ``from_head``, none and the cursor of the head."""
    only = LogFilter(_known_types(types), order_id)
    if from_head:
        if cursor is not None:
            raise Invalid(
                "cursor_with_from_head",
                "Send either a cursor or from=head, not both.",
                field="from",
                where="query",
            )
        return Page([], encode_cursor(list(await runtime.store.log_head())), False)
    store = runtime.store

    async def read(after: Checkpoint, wanted: int) -> list[RecordedEvent]:
        if only.types or only.stream_id is not None:
            return await store.read_log_matching(after, only, limit=wanted)
        return await store.read_log(after, limit=wanted)

    async def scan(after: Checkpoint | None, wanted: int) -> Scan[RecordedEvent]:
        return await _scan(runtime, principal, read, after or LOG_START, wanted)

    return await paginate(
        scan, limit=limit, cursor=cursor, parse=_checkpoint, key=lambda e: list(e.checkpoint)
    )


def _known_types(types: Sequence[str]) -> tuple[str, ...]:
    unknown = [t for t in types if t not in FEED_TYPES]
    if unknown:
        raise Invalid(
            "unknown_event_type",
            f"Unknown event type {unknown[0]!r}.",
            field="type",
            where="query",
        )
    return tuple(dict.fromkeys(types))


async def _scan(
    runtime: Runtime, principal: Principal, read: LogReader, after: Checkpoint, wanted: int
) -> Scan[RecordedEvent]:
    store = runtime.store
    found: list[RecordedEvent] = []
    scanned = 0
    while len(found) < wanted and scanned < SCAN_BUDGET:
        batch = await read(after, READ_BATCH)
        if not batch:
            return Scan(found, list(after), exhausted=True)
        owners = await store.parties_of({e.stream_id for e in batch})
        payouts = {}
        if not principal.sees_everything and visibility.may_own_payouts(principal):
            payouts = await payout_parties(store, batch)
        for event in batch:
            after = event.checkpoint
            scanned += 1
            if event.type == WEBHOOK_TEST:
                continue
            parties = owners.get(event.stream_id)
            if _sees(principal, event, parties, payouts):
                found.append(_as_seen(principal, event, parties))
                if len(found) == wanted:
                    break
        if len(batch) < READ_BATCH and after == batch[-1].checkpoint:
            return Scan(found, list(after), exhausted=True)  # read to the end of the log
    return Scan(found, list(after), exhausted=False)


def _sees(
    principal: Principal,
    event: RecordedEvent,
    order_parties: tuple[str, str] | None,
    payouts: dict[str, str],
) -> bool:
    """An order's event to its sides, as DESIGN 7.6 cuts its money out; any other to its
    owner."""
    if principal.sees_everything:
        return True
    if order_parties is None:
        return any(map(principal.can_see_party, _owner_of(event)))
    if not any(map(principal.can_see_party, order_parties)):
        return False
    view = visibility.viewer(principal, *order_parties)
    return view.sees_event(event.type, payout_party(event, payouts))


def _as_seen(
    principal: Principal, event: RecordedEvent, order_parties: tuple[str, str] | None
) -> RecordedEvent:
    if principal.sees_everything or order_parties is None:
        return event
    return visibility.as_seen(visibility.viewer(principal, *order_parties), event)


def _owner_of(event: RecordedEvent) -> tuple[str, ...]:
    """A non-order event's party (a disabled webhook endpoint's owner), if it has one."""
    owner = event.data.get("owner_party_id")
    return (owner,) if isinstance(owner, str) else ()


def _checkpoint(raw: Any) -> Checkpoint:
    require(
        isinstance(raw, list)
        and len(raw) == 2
        and all(isinstance(v, int) and 0 <= v < MAX_CURSOR_VALUE for v in raw)
    )
    return Checkpoint(*raw)
