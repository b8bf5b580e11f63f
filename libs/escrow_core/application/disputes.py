"""The mediation queue: orders in open or escalated dispute, oldest dispute first."""

from datetime import datetime
from typing import Any

from escrow_core.accounts import KeyRole
from escrow_core.application.errors import Forbidden
from escrow_core.application.ids import well_formed
from escrow_core.application.pagination import Page, cursor_time, paginate, require
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.domain.order import Dispute
from escrow_core.projections import order_view
from escrow_core.store import DisputeQuery

QUEUE_ROLES = frozenset({KeyRole.MEDIATOR, KeyRole.ADMIN})


async def queue(
    runtime: Runtime,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    status: str | None = None,
) -> Page[tuple[str, Dispute]]:
    """(order id, dispute) of each order in the queue, paged in the database."""
    if principal.role not in QUEUE_ROLES:
        raise Forbidden("forbidden", "The mediation queue is for mediators and admins.")

    async def fetch(after: tuple[datetime, str] | None, limit: int) -> list[tuple[str, Dispute]]:
        listed = await runtime.store.list_disputes(DisputeQuery(limit, status, after))
        return [_disputed(order_id, document) for order_id, document in listed]

    return await paginate(
        fetch,
        limit=limit,
        cursor=cursor,
        parse=_dispute_key,
        key=lambda row: [row[1].opened_at.isoformat(), row[0]],
    )


def _disputed(order_id: str, document: dict[str, Any]) -> tuple[str, Dispute]:
    dispute = order_view.from_document(document).dispute
    if dispute is None:
        raise RuntimeError(f"order {order_id} is in the mediation queue without a dispute")
    return order_id, dispute


def _dispute_key(raw: Any) -> tuple[datetime, str]:
    require(isinstance(raw, list) and len(raw) == 2 and all(isinstance(v, str) for v in raw))
    opened_at = cursor_time(raw[0])
    require(well_formed(raw[1], "ord"))
    return opened_at, raw[1]
