"""Which endpoints an event goes to.

An admin's endpoint (no owner) may receive every event; a party's receives the events of its
own orders; an agent's, those of the parties it manages; a payments key's, the money events
(``is_money_event``) of every order and nothing else. ``webhook_endpoint.disabled`` belongs
to the endpoint's owner. An order's money out goes to the sides DESIGN 7.6 shows it to
(``escrow_core.domain.visibility``). Every endpoint further filters by its ``event_types``,
and gets only events recorded once it existed (``replay`` reaches further back on request). A
``webhook.test`` goes to the one endpoint it names, whatever that endpoint subscribes to.
"""

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa

from escrow_core.domain.visibility import EVERYTHING, Viewer
from escrow_core.payouts import payout_parties, payout_party
from escrow_core.store import RecordedEvent, Store
from escrow_core.store.schema import events as event_table
from escrow_core.store.schema import parties
from escrow_core.webhooks.endpoints import (
    ENDPOINT_DISABLED,
    PAYMENTS_OWNER,
    WEBHOOK_TEST,
    Endpoint,
)
from escrow_core.webhooks.payload import ORDER_STREAM_PREFIX

#: What a payments key's endpoint receives: the money an order takes in, holds, releases and
#: refunds, and every event of a payout or a refund (``payout.paid``, ``refund.failed`` ...,
#: including types added later under these prefixes).
MONEY_EVENT_TYPES = frozenset({"payment.received", "funds.held", "funds.released", "refund.issued"})
MONEY_EVENT_PREFIXES = ("payout.", "refund.")


def is_money_event(event_type: str) -> bool:
    return event_type in MONEY_EVENT_TYPES or event_type.startswith(MONEY_EVENT_PREFIXES)


@dataclass(frozen=True, slots=True)
class Audience:
    """The parties an event concerns, and the agents that manage them."""

    parties: frozenset[str]
    agents: frozenset[str]
    buyer_side: frozenset[str] = frozenset()  # an order's buyer and its agent
    supplier_side: frozenset[str] = frozenset()  # its supplier and its agent
    payout_party_id: str | None = None  # who the payout a payout.* event names is paid to

    def includes(self, owner_party_id: str | None) -> bool:
        return owner_party_id is None or owner_party_id in self.parties | self.agents

    def viewer(self, owner_party_id: str | None) -> Viewer:
        """How an endpoint's owner stands to the event's order (an admin's sees all)."""
        if owner_party_id is None:
            return EVERYTHING
        return Viewer(
            buyer_side=owner_party_id in self.buyer_side,
            supplier_side=owner_party_id in self.supplier_side,
            own_parties=frozenset({owner_party_id}),
        )

    def shows(self, event: RecordedEvent, owner_party_id: str | None) -> bool:
        """Whether the owner may see the event (DESIGN 7.6)."""
        if event.type == ENDPOINT_DISABLED:
            return True
        return self.viewer(owner_party_id).sees_event(event.type, self.payout_party_id)


def matches(endpoint: Endpoint, event: RecordedEvent, audience: Audience, *, replay: bool) -> bool:
    if event.type == WEBHOOK_TEST:
        return event.data.get("endpoint_id") == endpoint.id
    return (
        endpoint.subscribes_to(event.type)
        and _reaches(endpoint, event, audience)
        and (replay or event.recorded_at >= endpoint.created_at)
    )


def _reaches(endpoint: Endpoint, event: RecordedEvent, audience: Audience) -> bool:
    """Whether the endpoint's owner may have the event (DESIGN 5 and 7.6)."""
    if endpoint.owner_role == PAYMENTS_OWNER:
        return event.stream_id.startswith(ORDER_STREAM_PREFIX) and is_money_event(event.type)
    return audience.includes(endpoint.owner_party_id) and audience.shows(
        event, endpoint.owner_party_id
    )


def _event_parties(event: RecordedEvent, owners: dict[str, tuple[str, str]]) -> frozenset[str]:
    if event.type in (ENDPOINT_DISABLED, WEBHOOK_TEST):
        owner = event.data.get("owner_party_id")
        return frozenset({owner}) if isinstance(owner, str) else frozenset()
    return frozenset(owners.get(event.stream_id, ()))


async def audiences(store: Store, events: Collection[RecordedEvent]) -> dict[int, Audience]:
    """Each event's audience, by position: two queries for the whole batch."""
    owners = await _order_parties(store, {e.stream_id for e in events})
    by_event = {e.position: _event_parties(e, owners) for e in events}
    managers = await _managers(store, frozenset[str]().union(*by_event.values()))
    payouts = await payout_parties(store, events)

    def side(party_id: str | None) -> frozenset[str]:
        if party_id is None:
            return frozenset()
        agent = managers.get(party_id)
        return frozenset({party_id, agent} if agent else {party_id})

    def audience(event: RecordedEvent) -> Audience:
        found = by_event[event.position]
        buyer_id, supplier_id = owners.get(event.stream_id, (None, None))
        return Audience(
            found,
            frozenset(managers[p] for p in found if p in managers),
            side(buyer_id),
            side(supplier_id),
            payout_party(event, payouts),
        )

    return {event.position: audience(event) for event in events}


async def _order_parties(store: Store, stream_ids: set[str]) -> dict[str, tuple[str, str]]:
    """(buyer_id, supplier_id) of each order, from its ``order.placed``: the log is the truth,
    while ``order_view`` (``Store.parties_of``) is emptied and refilled by a rebuild, and an
    order missing there would lose its parties' deliveries for good."""
    wanted = {s for s in stream_ids if s.startswith(ORDER_STREAM_PREFIX)}
    if not wanted:
        return {}
    c = event_table.c
    query = sa.select(c.stream_id, c.data).where(
        c.stream_id.in_(wanted), c.version == 1, c.type == "order.placed"
    )
    async with store.read() as conn:
        rows = (await conn.execute(query)).all()
    return {row.stream_id: (row.data["buyer_id"], row.data["supplier_id"]) for row in rows}


async def _managers(store: Store, party_ids: frozenset[str]) -> dict[str, str]:
    """The agent of each party that has one."""
    if not party_ids:
        return {}
    query = sa.select(parties.c.id, parties.c.managed_by).where(
        parties.c.id.in_(party_ids), parties.c.managed_by.is_not(None)
    )
    async with store.read() as conn:
        rows = (await conn.execute(query)).all()
    return {row.id: row.managed_by for row in rows}
