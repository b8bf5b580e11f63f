"""Upgrades of stored event data to the current schema version, one step each (pure)."""

from collections.abc import Callable
from typing import Any

from escrow_core.domain.legacy_exponents import legacy_cldr_exponent

Upcast = Callable[[dict[str, Any]], dict[str, Any]]


def placed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Before schema 2 the exponent was looked up when read, from CLDR; an old order keeps the
    one it was priced under, so its stored amounts mean what they meant."""
    return {**data, "currency_exponent": legacy_cldr_exponent(data["currency"])}


def placed_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Before schema 3 no order had an agency fee, a retention, metadata or a client
    reference."""
    return {
        **data,
        "agency_id": None,
        "agency_fee_bps": 0,
        "retention": None,
        "metadata": {},
        "client_reference": None,
    }


def dispute_opened_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Before schema 2 every dispute was one before receipt."""
    return {**data, "kind": "dispute"}


def delivered_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Before schema 2 the inspection window started at ``delivered_at`` whoever reported it;
    an old event keeps the window it was given."""
    return {**data, "inspection_starts_at": data["delivered_at"]}


def released_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Before schema 2 a release named no payouts: its net was paid out untracked (None, not
    an empty list, which a schema 2 release of a zero net has)."""
    return {**data, "agency_fee": 0, "payouts": None}


def refund_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Before schema 2 a refund had no reason and went back untracked; every v1 refund came
    out of the money held."""
    return {**data, "reason": None, "refunds": None}


# (event type, the schema version it upgrades from) -> the step to the next version.
UPCASTS: dict[tuple[str, int], Upcast] = {
    ("order.placed", 1): placed_v1_to_v2,
    ("order.placed", 2): placed_v2_to_v3,
    ("dispute.opened", 1): dispute_opened_v1_to_v2,
    ("order.delivered", 1): delivered_v1_to_v2,
    ("funds.released", 1): released_v1_to_v2,
    ("refund.issued", 1): refund_v1_to_v2,
}
