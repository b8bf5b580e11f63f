"""Who the payouts named by a batch of ``payout.*`` events are paid to: what a reader of the
log (the feed, webhooks) needs to show an agent its own agency-fee payouts (DESIGN 7.6)."""

from collections.abc import Iterable

from escrow_core.domain.visibility import PAYOUT_EVENTS
from escrow_core.projections.money_out import PAYOUT
from escrow_core.store import RecordedEvent, Store


async def payout_parties(store: Store, events: Iterable[RecordedEvent]) -> dict[str, str]:
    """payout_id -> the party it is paid to, for every payout a ``payout.*`` event names."""
    ids = {e.data.get("payout_id") for e in events if e.type in PAYOUT_EVENTS}
    found = {}
    for payout_id in sorted(i for i in ids if isinstance(i, str)):
        row = await store.find_money_out(payout_id, PAYOUT)
        if row is not None:
            found[payout_id] = row.party_id
    return found


def payout_party(event: RecordedEvent, parties: dict[str, str]) -> str | None:
    """The party of the payout ``event`` names, if it names one found in ``parties``."""
    payout_id = event.data.get("payout_id")
    return parties.get(payout_id) if isinstance(payout_id, str) else None
