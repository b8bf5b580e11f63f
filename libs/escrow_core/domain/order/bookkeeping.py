"""The buyer's bookkeeping on an order: ``metadata`` it merges in, in any status (DESIGN 7.3).

Placement records the first ``metadata`` and the ``client_reference`` (``lifecycle.place``);
the rules of both are ``escrow_core.domain.metadata``'s.
"""

from datetime import datetime

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain import metadata
from escrow_core.domain.order.rules import guard
from escrow_core.domain.order.state import OrderState


def update_metadata(state: OrderState, cmd: c.UpdateMetadata, now: datetime) -> list[e.AnyEvent]:
    """Any status, terminal ones too: the buyer's bookkeeping outlives the trade. A change
    that leaves the metadata as it was records nothing."""
    guard(state, cmd)
    after = metadata.merged(state.metadata, cmd.metadata)
    if after == state.metadata:
        return []
    return [e.OrderMetadataUpdated(at=now, metadata=after)]


def metadata_updated(state: OrderState, event: e.OrderMetadataUpdated) -> OrderState:
    return state.model_copy(update={"metadata": event.metadata})
