"""Supplier performance (DESIGN 7.2, 7.7): what any key may read of a supplier's record, and
the worker's step that keeps it. The figures come from an asynchronous projection of the log
(``projections.supplier_performance``); ``as_of_position`` says how far it has read."""

from dataclasses import dataclass

from escrow_core import accounts
from escrow_core.accounts import PartyKind
from escrow_core.application.errors import NotFound, party_not_found
from escrow_core.application.ids import well_formed
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.projections import supplier_performance as perf
from escrow_core.projections import supplier_performance_log
from escrow_core.store import Store


@dataclass(frozen=True)
class Performance:
    party_id: str
    figures: perf.Figures
    as_of_position: int


def party_not_supplier() -> NotFound:
    return NotFound(
        "party_not_supplier", "The party is not a supplier: only suppliers have a performance."
    )


async def of_supplier(runtime: Runtime, principal: Principal, party_id: str) -> Performance:
    """The supplier's figures as the projection has them (any key may read them)."""
    del principal  # every role may read a supplier's record
    party = (
        await accounts.find_party(runtime.store, party_id) if well_formed(party_id, "pty") else None
    )
    if party is None:
        raise party_not_found()
    if party.kind is not PartyKind.SUPPLIER:
        raise party_not_supplier()
    at, counts, shipping = await runtime.store.performance_of(party_id)
    return Performance(party_id, perf.figures(counts, shipping), at.position)


async def project_performance(store: Store) -> bool:
    """The worker's step: apply the next batch of the log; True when more is probably waiting."""
    batch_size = supplier_performance_log.BATCH_SIZE
    return await supplier_performance_log.project_once(store, batch_size=batch_size) == batch_size
