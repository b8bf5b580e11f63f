"""The domain's upcasts, registered with the store so every reader sees current event data."""

from escrow_core.domain.upcasts import UPCASTS
from escrow_core.store import Upcasters


def event_upcasters() -> Upcasters:
    upcasters = Upcasters()
    for (event_type, from_version), step in UPCASTS.items():
        upcasters.register(event_type, from_version, step)
    return upcasters
