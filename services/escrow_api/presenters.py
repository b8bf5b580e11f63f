"""Shape domain state and stored events as the API's JSON (DESIGN section 4)."""

from datetime import datetime
from typing import Any

from escrow_core.currency import exponent
from escrow_core.domain.order import OrderState, allowed_actions, deadlines, next_deadline_at
from escrow_core.domain.roles import Actor
from escrow_core.store import RecordedEvent


def order_json(
    order_id: str, order: OrderState, actor: Actor | None, now: datetime
) -> dict[str, Any]:
    """The order as ``actor`` sees it at ``now`` (``allowed_actions`` is for that caller)."""
    doc = order.model_dump(mode="json")
    terms = doc["terms"]
    dispute = doc["dispute"]
    if dispute is not None:
        for internal in ("status_before", "paused_remaining"):
            dispute.pop(internal)
    return {
        "id": order_id,
        "version": order.version,
        "status": order.status.value,
        "buyer_id": terms["buyer_id"],
        "supplier_id": terms["supplier_id"],
        "currency": terms["currency"],
        "currency_exponent": exponent(order.terms.currency),
        "items": terms["items"],
        "shipping_fee": terms["shipping_fee"],
        "total": terms["total"],
        "incoterm": terms["incoterm"],
        "quality_terms": terms["quality_terms"],
        "ship_by": terms["ship_by"],
        "inspection_days": terms["inspection_days"],
        "payment_schedule": terms["payment_schedule"],
        "remarks": terms["remarks"],
        "fee_bps": terms["fee_bps"],
        "amounts": {"total": order.terms.total, **doc["amounts"]},
        "shipment": doc["shipment"],
        "shipment_overdue": order.shipment_overdue,
        "dispute": dispute,
        "cancellation_reason": order.cancellation_reason,
        "deadlines": [d.model_dump(mode="json") for d in deadlines(order)],
        "next_deadline_at": _iso(next_deadline_at(order)),
        "allowed_actions": allowed_actions(order, actor, now) if actor else [],
        "created_at": doc["placed_at"],
        "updated_at": doc["updated_at"],
    }


def event_json(recorded: RecordedEvent) -> dict[str, Any]:
    principal = recorded.metadata.get("principal") or {}
    actor = recorded.metadata.get("actor") or {}
    data = dict(recorded.data)
    created_at = data.pop("at", None) or _iso(recorded.recorded_at)
    return {
        "id": event_public_id(recorded),
        "type": recorded.type,
        "order_id": recorded.stream_id if recorded.stream_id.startswith("ord_") else None,
        "sequence": recorded.version,
        "position": recorded.position,
        "created_at": created_at,
        "data": data,
        "actor": {
            "role": actor.get("role") or principal.get("role"),
            "party_id": actor.get("party_id"),
            "on_behalf_of": principal.get("on_behalf_of"),
        },
    }


def event_public_id(recorded: RecordedEvent) -> str:
    return f"evt_{recorded.event_id.hex}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
