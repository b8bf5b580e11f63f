"""The caller's view of an order's money out (the rule: escrow_core.domain.visibility), and
whether the caller may be paid by an order it is no side of."""

from dataclasses import replace

from escrow_core.accounts import KeyRole
from escrow_core.application.principal import Principal
from escrow_core.domain.visibility import Viewer
from escrow_core.store import RecordedEvent


def viewer(principal: Principal, buyer_id: str, supplier_id: str) -> Viewer:
    """How the caller stands to an order of ``buyer_id`` and ``supplier_id``."""
    own = frozenset(p for p in (principal.party_id, principal.agent_id) if p is not None)
    return Viewer(
        everything=principal.sees_everything,
        buyer_side=principal.can_see_party(buyer_id),
        supplier_side=principal.can_see_party(supplier_id),
        own_parties=own,
    )


def may_own_payouts(principal: Principal) -> bool:
    """Only an agent is paid by an order it is no side of (its agency fee)."""
    return principal.agent_id is not None or principal.role is KeyRole.AGENT


def as_seen(view: Viewer, event: RecordedEvent) -> RecordedEvent:
    """The event with the data ``view`` may see of it (``order.placed`` without the buyer's
    bookkeeping for the supplier side)."""
    data = view.event_data(event.type, event.data)
    return event if data is event.data else replace(event, data=data)
