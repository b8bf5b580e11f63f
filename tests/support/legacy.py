"""An order as the service wrote it before ``order.placed`` schema 2: its v1 event (no
``currency_exponent``) and its ``order_view`` snapshot without the terms' exponent."""

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from escrow_core.domain.events import event_from_data
from escrow_core.domain.order import evolve
from escrow_core.domain.policy import TimerPolicy
from escrow_core.domain.upcasts import placed_v1_to_v2
from escrow_core.projections import order_view
from escrow_core.store import NewEvent, Store

LEGACY_TOTAL = 1_000  # 4 x 250, in the minor units the order was priced under


def placed_v1(buyer_id: str, supplier_id: str, currency: str, at: datetime) -> NewEvent:
    ship_by = (at + timedelta(days=30)).date()
    data = {
        "at": at.isoformat().replace("+00:00", "Z"),
        "buyer_id": buyer_id,
        "supplier_id": supplier_id,
        "currency": currency,
        "items": [{"sku": "DATES-1", "description": "dates", "quantity": 4, "unit_price": 250}],
        "shipping_fee": 0,
        "total": LEGACY_TOTAL,
        "incoterm": "FOB",
        "quality_terms": "grade A",
        "ship_by": date.isoformat(ship_by),
        "inspection_days": 15,
        "payment_schedule": [{"name": "full", "amount": LEGACY_TOTAL}],
        "remarks": "",
        "fee_bps": 0,
        "policy": TimerPolicy().model_dump(mode="json"),
    }
    metadata = {"command_id": uuid.uuid4().hex, "actor": {"role": "buyer", "party_id": buyer_id}}
    return NewEvent(uuid.uuid4(), "order.placed", data, metadata, schema_version=1)


async def write_legacy_order(
    store: Store, buyer_id: str, supplier_id: str, currency: str = "IQD"
) -> str:
    """The order's id; its event and snapshot stored in the shapes of before schema 2."""
    order_id = f"ord_{uuid.uuid4().hex}"
    at = datetime.now(UTC)
    placed = placed_v1(buyer_id, supplier_id, currency, at)
    await store.append(order_id, 0, [placed], recorded_at=at)
    state = evolve(None, event_from_data(placed.type, placed_v1_to_v2(placed.data)))
    row = order_view.row_for(order_id, state)
    old_terms = {k: v for k, v in row.state["terms"].items() if k != "currency_exponent"}
    await store.write_projections([replace(row, state={**row.state, "terms": old_terms})], [])
    return order_id
