"""Shape domain state and stored events as the API's JSON (DESIGN section 4)."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from fastapi import Response

from escrow_api.jsonresponse import JSONResponse
from escrow_core.accounts import ApiKey, IssuedKey, Party
from escrow_core.application import visibility
from escrow_core.application.pagination import Page
from escrow_core.application.principal import Principal
from escrow_core.domain.order import OrderState, allowed_actions, deadlines, next_deadline_at
from escrow_core.domain.order.state import Payout, Refund
from escrow_core.domain.roles import Actor
from escrow_core.domain.visibility import Viewer

T = TypeVar("T")


class MoneyOut(Protocol):
    """A payout or refund as the application reads it (the fields shown of it)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def order_id(self) -> str: ...
    @property
    def party_id(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def provider_ref(self) -> str | None: ...
    @property
    def failure_reason(self) -> str | None: ...
    @property
    def payment_provider_ref(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


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
    order_id: str, order: OrderState, actor: Actor | None, now: datetime, view: Viewer
) -> dict[str, Any]:
    """The order as ``actor`` sees it at ``now`` (``allowed_actions`` is for that caller;
    ``view`` says which of its payouts and refunds it sees, DESIGN 7.6)."""
    head, tail = _caller_independent(order_id, order)
    return {
        **head,
        "allowed_actions": allowed_actions(order, actor, now) if actor else [],
        **tail,
        **money_out_of(order, view),
        **bookkeeping_of(order, view),
    }


# The part of an order's answer that is the same for every caller, by order id: a state is
# frozen, so it is dumped once per version (a read or a command's answer dumped the whole
# state each time). Bounded like the snapshot memory; only read, never changed, once made.
_RENDERED_MAX = 4096
_rendered: dict[str, tuple[OrderState, dict[str, Any], dict[str, Any]]] = {}


def _caller_independent(order_id: str, order: OrderState) -> tuple[dict[str, Any], dict[str, Any]]:
    known = _rendered.get(order_id)
    if known is not None and known[0] is order:
        return known[1], known[2]
    head, tail = _dump(order_id, order)
    if len(_rendered) >= _RENDERED_MAX and order_id not in _rendered:
        del _rendered[next(iter(_rendered))]
    _rendered[order_id] = (order, head, tail)
    return head, tail


def _dump(order_id: str, order: OrderState) -> tuple[dict[str, Any], dict[str, Any]]:
    doc = order.model_dump(
        mode="json", exclude={"payouts", "refunds", "metadata", "client_reference"}
    )
    terms = doc["terms"]
    dispute = doc["dispute"]
    if dispute is not None:
        for internal in ("status_before", "paused_remaining"):
            dispute.pop(internal)
    head = {
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
        "agency_id": terms["agency_id"],
        "agency_fee_bps": terms["agency_fee_bps"],
        "retention": terms["retention"],
        "amounts": {"total": order.terms.total, **doc["amounts"]},
        "shipment": doc["shipment"],
        "shipment_overdue": order.shipment_overdue,
        "dispute": dispute,
        "cancellation_reason": order.cancellation_reason,
        "deadlines": [d.model_dump(mode="json") for d in deadlines(order)],
        "next_deadline_at": iso(next_deadline_at(order)),
    }
    return head, {"created_at": doc["placed_at"], "updated_at": doc["updated_at"]}


def bookkeeping_of(order: OrderState, view: Viewer) -> dict[str, Any]:
    """The buyer's ``metadata`` and ``client_reference``, omitted for the supplier side."""
    if not view.sees_metadata:
        return {}
    return {"metadata": dict(order.metadata), "client_reference": order.client_reference}


def money_out_of(order: OrderState, view: Viewer) -> dict[str, Any]:
    """``payouts`` and ``refunds`` as far as ``view`` sees them: a list it may not see is
    omitted, and of payouts a buyer-side agent sees only its own (its agency fee)."""
    shown: dict[str, Any] = {}
    payouts = [p for p in order.payouts if view.sees_payout_to(p.party_id)]
    if view.sees_payouts or payouts:
        shown["payouts"] = [
            {"id": p.id, "party_id": p.party_id, "amount": p.amount, "status": p.status.value}
            for p in payouts
        ]
    if view.sees_refunds:
        shown["refunds"] = [
            {
                "id": r.id,
                "payment_provider_ref": r.payment_provider_ref,
                "amount": r.amount,
                "status": r.status.value,
            }
            for r in order.refunds
        ]
    return shown


def viewer_of(principal: Principal, order: OrderState) -> Viewer:
    return visibility.viewer(principal, order.terms.buyer_id, order.terms.supplier_id)


def caller_order_json(
    principal: Principal, order_id: str, order: OrderState, now: datetime
) -> dict[str, Any]:
    """The order as the caller sees it."""
    return order_json(order_id, order, principal.viewer_on(order), now, viewer_of(principal, order))


def payout_json(order_id: str, order: OrderState, payout: Payout) -> dict[str, Any]:
    return {
        "id": payout.id,
        "object": "payout",
        "order_id": order_id,
        "party_id": payout.party_id,
        "amount": payout.amount,
        "currency": order.terms.currency,
        "status": payout.status.value,
        "provider_ref": payout.provider_ref,
        "failure_reason": payout.failure_reason,
        "created_at": iso(payout.created_at),
        "updated_at": iso(payout.updated_at),
    }


def refund_json(order_id: str, order: OrderState, refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "object": "refund",
        "order_id": order_id,
        "party_id": order.terms.buyer_id,
        "payment_provider_ref": refund.payment_provider_ref,
        "amount": refund.amount,
        "currency": order.terms.currency,
        "status": refund.status.value,
        "provider_ref": refund.provider_ref,
        "failure_reason": refund.failure_reason,
        "created_at": iso(refund.created_at),
        "updated_at": iso(refund.updated_at),
    }


def money_out_json(row: MoneyOut) -> dict[str, Any]:
    """A payout or refund as listed or read (the same shape as the order renders it)."""
    shown: dict[str, Any] = {
        "id": row.id,
        "object": row.kind,
        "order_id": row.order_id,
        "party_id": row.party_id,
        "amount": row.amount,
        "currency": row.currency,
        "status": row.status,
        "provider_ref": row.provider_ref,
        "failure_reason": row.failure_reason,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
    if row.kind == "refund":
        shown["payment_provider_ref"] = row.payment_provider_ref
    return shown


def order_response(
    principal: Principal, order_id: str, order: OrderState, now: datetime, *, status: int = 200
) -> Response:
    """The order as the caller sees it, with its ETag (and Location once created)."""
    headers = {"ETag": f'"{order.version}"'}
    if status == 201:
        headers["Location"] = f"/v1/orders/{order_id}"
    body = caller_order_json(principal, order_id, order, now)
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
