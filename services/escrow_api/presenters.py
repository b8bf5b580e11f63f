"""Shape domain state and stored events as the API's JSON (DESIGN section 4)."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from fastapi import Response

from escrow_api.jsonresponse import JSONResponse
from escrow_core.accounts import ApiKey, IssuedKey, Party
from escrow_core.application.pagination import Page
from escrow_core.application.principal import Principal
from escrow_core.domain.order import OrderState, allowed_actions, deadlines, next_deadline_at
from escrow_core.domain.roles import Actor

T = TypeVar("T")


class StoredEvent(Protocol):
    """An event as read from the log (the fields shown of it)."""

    @property
    def position(self) -> int: ...
    @property
    def stream_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def metadata(self) -> dict[str, Any]: ...
    @property
    def recorded_at(self) -> datetime: ...


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
        "currency_exponent": terms["currency_exponent"],
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
        "next_deadline_at": iso(next_deadline_at(order)),
        "allowed_actions": allowed_actions(order, actor, now) if actor else [],
        "created_at": doc["placed_at"],
        "updated_at": doc["updated_at"],
    }


def order_response(
    principal: Principal, order_id: str, order: OrderState, now: datetime, *, status: int = 200
) -> Response:
    """The order as the caller sees it, with its ETag (and Location once created)."""
    headers = {"ETag": f'"{order.version}"'}
    if status == 201:
        headers["Location"] = f"/v1/orders/{order_id}"
    body = order_json(order_id, order, principal.viewer_on(order), now)
    return JSONResponse(body, status_code=status, headers=headers)


def event_json(recorded: StoredEvent) -> dict[str, Any]:
    principal = recorded.metadata.get("principal") or {}
    actor = recorded.metadata.get("actor") or {}
    data = dict(recorded.data)
    created_at = data.pop("at", None) or iso(recorded.recorded_at)
    return {
        "id": f"evt_{recorded.event_id.hex}",
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
        "correlation_id": recorded.metadata.get("correlation_id"),
        "causation_id": recorded.metadata.get("causation_id"),
    }


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def page_response(page: Page[T], show: Callable[[T], Any]) -> Response:
    """A list's page as ``{data, next_cursor, has_more}``."""
    return JSONResponse(
        {
            "data": [show(item) for item in page.items],
            "next_cursor": page.next_cursor,
            "has_more": page.has_more,
        }
    )


def party_json(party: Party) -> dict[str, Any]:
    return {
        "id": party.id,
        "kind": party.kind.value,
        "name": party.name,
        "trade_assurance": party.trade_assurance,
        "managed_by": party.managed_by,
        "metadata": dict(party.metadata),
        "created_at": party.created_at,
        "deactivated_at": party.deactivated_at,
    }


def key_json(key: ApiKey, secret: str | None) -> dict[str, Any]:
    return {
        "id": key.id,
        "key": secret,
        "role": key.role.value,
        "party_id": key.party_id,
        "scope": key.scope.value,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
    }


def issued_key(issued: IssuedKey) -> tuple[Response, Any]:
    """A new key's answer, and what a replay shows: the same key, its secret null."""
    shown = key_json(issued.key, issued.secret)
    return JSONResponse(shown, status_code=201), {**shown, "key": None}
