"""Orders: place one, run a command on one, read one, list them, read a timeline.

A party sees only its own orders; anything it may not see is "not found", never forbidden.
The buyer's bookkeeping (``metadata``, ``client_reference``) is the buyer side's (DESIGN 7.6):
the list's filters on it find only orders the caller is on the buyer side of (a supplier
filtering by them finds nothing, so learns nothing), and the timeline shows the supplier side
``order.placed`` without it and never ``order.metadata_updated``.
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from escrow_core import accounts, currency
from escrow_core.application import visibility
from escrow_core.application.commands import CommandContext, CommandResult
from escrow_core.application.errors import Conflict, Invalid, NotFound, order_not_found
from escrow_core.application.idempotency import Remember
from escrow_core.application.ids import well_formed
from escrow_core.application.pagination import Page, cursor_time, paginate, require
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.dates import within_span
from escrow_core.domain.commands import Command, PlaceOrder
from escrow_core.domain.errors import InvalidClientReference
from escrow_core.domain.metadata import check_client_reference, printable
from escrow_core.domain.order import OrderState
from escrow_core.domain.roles import Actor
from escrow_core.domain.terms import LineItem, Retention, Tranche
from escrow_core.payouts import payout_party
from escrow_core.projections import order_view
from escrow_core.store import DuplicateClientReference, OrderQuery, RecordedEvent

MAX_VERSION = 2**31


@dataclass(frozen=True, slots=True)
class NewOrder:
    """The terms a buyer proposes (``total`` is computed, never taken from the client)."""

    supplier_id: str
    currency: str
    items: Sequence[LineItem]
    shipping_fee: int
    incoterm: str
    quality_terms: str
    ship_by: date
    inspection_days: int | None = None
    payment_schedule: Sequence[Tranche] | None = None
    remarks: str = ""
    agency_fee_bps: int = 0  # an agent's fee on an order it places for its buyer
    metadata: Mapping[str, object] = dataclasses.field(default_factory=dict)
    client_reference: str | None = None
    retention: Retention | None = None


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """What ``GET /v1/orders`` narrows the list by (None: no filter)."""

    status: str | None = None
    buyer_id: str | None = None
    supplier_id: str | None = None
    client_reference: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()  # all must match
    created_gte: datetime | None = None
    created_lt: datetime | None = None

    @property
    def on_bookkeeping(self) -> bool:
        return self.client_reference is not None or bool(self.metadata)


@dataclass(frozen=True, slots=True)
class OrderAt:
    """An order as read at the service clock's ``at`` (for what may be done now)."""

    order_id: str
    state: OrderState
    at: datetime


async def place(
    runtime: Runtime,
    principal: Principal,
    new: NewOrder,
    *,
    context: CommandContext,
    remember: Remember | None = None,
) -> CommandResult:
    """Place an order for the calling buyer with a Trade-Assurance supplier."""
    actor = principal.actor_on_new_order()
    buyer_id = actor.party_id or ""
    # Both in one round trip: a deactivated buyer or supplier is party to no new order (the
    # buyer's key was checked when it was looked up, but that may be a few seconds ago).
    found = await accounts.find_parties(runtime.store, [buyer_id, new.supplier_id])
    supplier = found.get(new.supplier_id)
    if supplier is None or supplier.kind is not accounts.PartyKind.SUPPLIER:
        raise Invalid(
            "supplier_not_found",
            "supplier_id names no registered supplier.",
            field="supplier_id",
            where="body",
            message="no such supplier",
        )
    for party, field in ((found.get(buyer_id), None), (supplier, "supplier_id")):
        if party is not None and party.deactivated_at is not None:
            raise Invalid(
                "party_deactivated",
                f"The {party.kind.value} is deactivated: it cannot be party to a new order.",
                field=field,
                where="body" if field else None,
                message="the party is deactivated",
            )
    settings = runtime.settings
    command = PlaceOrder(
        actor=actor,
        buyer_id=buyer_id,
        supplier_id=supplier.id,
        supplier_trade_assurance=supplier.trade_assurance,
        currency=new.currency,
        currency_exponent=currency.exponent(new.currency),
        items=tuple(new.items),
        shipping_fee=new.shipping_fee,
        incoterm=new.incoterm,
        quality_terms=new.quality_terms,
        ship_by=new.ship_by,
        inspection_days=new.inspection_days or settings.inspection_days,
        payment_schedule=tuple(new.payment_schedule) if new.payment_schedule else None,
        remarks=new.remarks,
        fee_bps=settings.release_fee_bps,
        policy=settings.timer_policy,
        # An agent placing the order for a buyer it manages is the agency (DESIGN 7.2).
        agency_id=principal.agent_id,
        agency_fee_bps=new.agency_fee_bps,
        metadata=dict(new.metadata),
        client_reference=new.client_reference,
        retention=new.retention,
    )
    try:
        return await runtime.commands.place_order(command, context=context, remember=remember)
    except DuplicateClientReference:
        # The write was refused whole by the store's unique index; the order holding the
        # reference has committed, so it is there to be named.
        reference = new.client_reference or ""
        raise duplicate_client_reference(
            reference, await runtime.store.order_with_client_reference(buyer_id, reference)
        ) from None


def duplicate_client_reference(reference: str, order_id: str | None) -> Conflict:
    return Conflict(
        "duplicate_client_reference",
        f"The buyer's order {order_id} already has client_reference {reference!r}.",
        field="client_reference",
        where="body",
        extra={"order_id": order_id},
    )


async def execute(
    runtime: Runtime,
    principal: Principal,
    order_id: str,
    make: Callable[[Actor], Command],
    *,
    context: CommandContext,
    expected_version: int | None = None,
    remember: Remember | None = None,
) -> CommandResult:
    """Run ``make(actor)`` on the order as the caller's role on it, as one atomic write."""
    if not well_formed(order_id, "ord"):
        raise order_not_found()

    def build(order: OrderState | None) -> Command:
        # Authorised against the order as the attempt loaded it: no read of its own.
        if order is None or not principal.can_see(order):
            raise order_not_found()
        return make(principal.actor_on(order))

    return await runtime.commands.execute(
        order_id, build, context=context, expected_version=expected_version, remember=remember
    )


async def visible(runtime: Runtime, principal: Principal, order_id: str) -> OrderState:
    """The order now, if the caller may see it."""
    order = await runtime.commands.get_order(order_id) if well_formed(order_id, "ord") else None
    if order is None or not principal.can_see(order):
        raise order_not_found()
    return order


async def get(
    runtime: Runtime, principal: Principal, order_id: str, *, version: int | None = None
) -> OrderAt:
    """The order now, or as it stood at ``version``."""
    order = await visible(runtime, principal, order_id)
    if version is not None:
        found = await runtime.commands.get_order(order_id, version=version)
        if found is None:
            raise NotFound("version_not_found", f"The order has no version {version}.")
        order = found
    return OrderAt(order_id, order, await runtime.store.now())


async def list_page(
    runtime: Runtime,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    only: OrderFilter = OrderFilter(),
) -> Page[OrderAt]:
    """The orders the caller may see, newest first."""
    parties = None if principal.sees_everything else principal.visible_parties
    # A filter on the buyer's bookkeeping looks only where the caller sees it.
    buyer_parties = parties if only.on_bookkeeping else None
    now = await runtime.store.now()

    async def fetch(before: tuple[datetime, str] | None, limit: int) -> list[OrderAt]:
        query = OrderQuery(
            limit,
            parties,
            only.status,
            only.buyer_id,
            only.supplier_id,
            before,
            buyer_parties=buyer_parties,
            client_reference=only.client_reference,
            metadata=only.metadata,
            created_gte=only.created_gte,
            created_lt=only.created_lt,
        )
        listed = await runtime.store.list_orders(query)
        return [OrderAt(i, order_view.from_document(document), now) for i, document in listed]

    return await paginate(
        fetch,
        limit=limit,
        cursor=cursor,
        parse=_order_key,
        key=lambda order: [order.state.placed_at.isoformat(), order.order_id],
    )


async def timeline(
    runtime: Runtime, principal: Principal, order_id: str, *, limit: int, cursor: str | None
) -> Page[RecordedEvent]:
    """The order's events the caller may see (DESIGN 7.6), oldest first."""
    order = await visible(runtime, principal, order_id)
    view = visibility.viewer(principal, order.terms.buyer_id, order.terms.supplier_id)
    payout_parties = {p.id: p.party_id for p in order.payouts}

    def shown(event: RecordedEvent) -> bool:
        return view.sees_event(event.type, payout_party(event, payout_parties))

    async def fetch(after: int | None, limit: int) -> list[RecordedEvent]:
        found: list[RecordedEvent] = []
        start = after or 0
        while len(found) < limit:
            batch = await runtime.store.stream(
                order_id, after_version=start, up_to_version=start + limit
            )
            found.extend(visibility.as_seen(view, e) for e in batch if shown(e))
            if len(batch) < limit:
                break
            start = batch[-1].version
        return found[:limit]

    return await paginate(
        fetch, limit=limit, cursor=cursor, parse=_version_key, key=lambda e: e.version
    )


def metadata_pairs(raw: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``metadata=key:value`` filters, split at the first colon: 422
    ``invalid_metadata_filter`` for one without a colon, or with an empty key or value (no
    kept value is empty)."""
    pairs = []
    for item in raw:
        key, colon, value = item.partition(":")
        if not colon or not key or not value or not printable(item):
            raise Invalid(
                "invalid_metadata_filter",
                f"metadata filter {item!r} is not key:value.",
                field="metadata",
                where="query",
                message="a filter is key:value, both non-empty and printable",
            )
        pairs.append((key, value))
    return tuple(dict.fromkeys(pairs))


def reference_filter(raw: str | None) -> str | None:
    """A ``client_reference`` filter: 422 ``invalid_client_reference`` unless it could be one
    (1-100 printable characters)."""
    try:
        check_client_reference(raw)
    except InvalidClientReference as invalid:
        raise Invalid(
            invalid.code, f"{invalid.message}.", field="client_reference", where="query"
        ) from None
    return raw


def filter_time(name: str, raw: str | None) -> datetime | None:
    """A ``created_gte`` / ``created_lt`` timestamp: RFC 3339 with a UTC offset, in the years
    the service takes in; 422 ``invalid_timestamp`` otherwise."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or not within_span(moment):
        raise Invalid(
            "invalid_timestamp",
            f"{name} is not a timestamp with a UTC offset (2000-2999).",
            field=name,
            where="query",
            message="an RFC 3339 timestamp with a UTC offset, e.g. 2027-01-31T00:00:00Z",
        )
    return moment


def _order_key(raw: Any) -> tuple[datetime, str]:
    require(isinstance(raw, list) and len(raw) == 2)
    placed_at, order_id = cursor_time(raw[0]), str(raw[1])
    require(well_formed(order_id, "ord"))
    return placed_at, order_id


def _version_key(raw: Any) -> int:
    require(isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < MAX_VERSION)
    return int(raw)
