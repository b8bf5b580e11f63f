"""Which endpoints an event goes to.

An admin's endpoint (no owner) may receive every event; a party's receives the events of its
own orders; an agent's, those of the parties it manages. ``webhook_endpoint.disabled`` belongs
to the endpoint's owner. Every endpoint further filters by its ``event_types``, and gets only
events recorded once it existed (``replay`` reaches further back on request).
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store import RecordedEvent
from escrow_core.store.schema import events, parties
from escrow_core.webhooks.endpoints import ENDPOINT_DISABLED, Endpoint
from escrow_core.webhooks.payload import ORDER_STREAM_PREFIX


@dataclass(frozen=True, slots=True)
class Audience:
    """The parties an event concerns, and the agents that manage them."""

    parties: frozenset[str]
    agents: frozenset[str]

    def includes(self, owner_party_id: str | None) -> bool:
        return owner_party_id is None or owner_party_id in self.parties | self.agents


def matches(endpoint: Endpoint, event: RecordedEvent, audience: Audience, *, replay: bool) -> bool:
    return (
        endpoint.subscribes_to(event.type)
        and audience.includes(endpoint.owner_party_id)
        and (replay or event.recorded_at >= endpoint.created_at)
    )


def _event_parties(event: RecordedEvent, owners: dict[str, tuple[str, str]]) -> frozenset[str]:
    if event.type == ENDPOINT_DISABLED:
        owner = event.data.get("owner_party_id")
        return frozenset({owner}) if isinstance(owner, str) else frozenset()
    return frozenset(owners.get(event.stream_id, ()))


async def audiences(
    conn: AsyncConnection, events: Collection[RecordedEvent]
) -> dict[int, Audience]:
    """Each event's audience, by position: two queries for the whole batch."""
    owners = await _order_parties(conn, {e.stream_id for e in events})
    by_event = {e.position: _event_parties(e, owners) for e in events}
    managers = await _managers(conn, set().union(*by_event.values()) if by_event else set())
    return {
        position: Audience(found, frozenset(managers[p] for p in found if p in managers))
        for position, found in by_event.items()
    }


async def _order_parties(conn: AsyncConnection, stream_ids: set[str]) -> dict[str, tuple[str, str]]:
    """(buyer_id, supplier_id) of each order, from its ``order.placed`` (the log is the truth;
    the order_view projection may be being rebuilt)."""
    wanted = {s for s in stream_ids if s.startswith(ORDER_STREAM_PREFIX)}
    if not wanted:
        return {}
    query = sa.select(events.c.stream_id, events.c.data).where(
        events.c.stream_id.in_(wanted), events.c.version == 1, events.c.type == "order.placed"
    )
    rows: Any = await conn.execute(query)
    return {row.stream_id: (row.data["buyer_id"], row.data["supplier_id"]) for row in rows}


async def _managers(conn: AsyncConnection, party_ids: Iterable[str]) -> dict[str, str]:
    """The agent of each party that has one."""
    wanted = set(party_ids)
    if not wanted:
        return {}
    query = sa.select(parties.c.id, parties.c.managed_by).where(
        parties.c.id.in_(wanted), parties.c.managed_by.is_not(None)
    )
    rows: Any = await conn.execute(query)
    return {row.id: row.managed_by for row in rows}
