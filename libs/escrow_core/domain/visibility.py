"""Who sees which fact of an order (DESIGN 7.6), for every reader alike: the order's answer,
its timeline, the feed and webhooks.

    payouts, payout.* events    the supplier side; on the buyer side only payouts to the
                                caller's own party (an agent's agency fee)
    refunds, refund.succeeded/failed/retried    the buyer side
    metadata, client_reference, order.metadata_updated    the buyer side (the supplier side
                                reads ``order.placed`` without them: ``event_data``)
    everything else (refund.issued too)         both sides

Payments, admin and mediator see everything.
"""

from dataclasses import dataclass
from typing import Any

PAYOUT_EVENTS = frozenset({"payout.paid", "payout.failed", "payout.returned", "payout.retried"})
REFUND_PROGRESS_EVENTS = frozenset({"refund.succeeded", "refund.failed", "refund.retried"})
METADATA_EVENTS = frozenset({"order.metadata_updated"})
# The buyer's bookkeeping as ``order.placed`` records it.
PLACED_BOOKKEEPING = ("metadata", "client_reference")


@dataclass(frozen=True, slots=True)
class Viewer:
    """How a reader stands to one order: ``everything`` for payments, admin and mediator;
    ``own_parties`` are the parties whose payouts are the reader's own."""

    everything: bool = False
    buyer_side: bool = False
    supplier_side: bool = False
    own_parties: frozenset[str] = frozenset()

    @property
    def sees_payouts(self) -> bool:
        return self.everything or self.supplier_side

    @property
    def sees_refunds(self) -> bool:
        return self.everything or self.buyer_side

    @property
    def sees_metadata(self) -> bool:
        return self.everything or self.buyer_side

    def sees_payout_to(self, party_id: str | None) -> bool:
        return self.sees_payouts or (party_id is not None and party_id in self.own_parties)

    def needs_payout_party(self, event_type: str) -> bool:
        """Whether ``sees_event`` needs the payout's party to decide on this event."""
        return event_type in PAYOUT_EVENTS and not self.sees_payouts and bool(self.own_parties)

    def sees_event(self, event_type: str, payout_party_id: str | None = None) -> bool:
        """Whether the reader sees an event of this order (``payout_party_id``: who the
        payout a ``payout.*`` event names is paid to, when ``needs_payout_party``)."""
        if event_type in PAYOUT_EVENTS:
            return self.sees_payout_to(payout_party_id)
        if event_type in REFUND_PROGRESS_EVENTS:
            return self.sees_refunds
        if event_type in METADATA_EVENTS:
            return self.sees_metadata
        return True

    def event_data(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """An event's data as the reader may see it: ``order.placed`` without the buyer's
        bookkeeping for a reader who may not see it (the data itself if nothing is cut)."""
        if event_type != "order.placed" or self.sees_metadata:
            return data
        return {name: value for name, value in data.items() if name not in PLACED_BOOKKEEPING}


EVERYTHING = Viewer(everything=True)
