"""Messages: written evidence, posted in any state by buyer, supplier or mediator (DESIGN 3)."""

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import InvalidValue, NotPermitted
from escrow_core.domain.roles import SYSTEM, Actor

from .scenario import (
    ACCEPTED,
    ADMIN,
    BUYER,
    CANCELLED,
    COMPLETED,
    DELIVERED,
    DISPUTED,
    ESCALATED,
    HELD,
    MEDIATOR,
    OTHER_BUYER,
    OTHER_SUPPLIER,
    OVERDUE,
    PARTIALLY_PAID,
    PAYMENTS,
    PLACED,
    SHIPPED,
    SUPPLIER,
    History,
    day,
    refused,
    state_of,
    when,
)

EVERY_STATE = {
    "placed": PLACED,
    "accepted": ACCEPTED,
    "partially_paid": PARTIALLY_PAID,
    "held": HELD,
    "overdue": OVERDUE,
    "shipped": SHIPPED,
    "delivered": DELIVERED,
    "disputed": DISPUTED,
    "escalated": ESCALATED,
    "completed": COMPLETED,
    "cancelled": CANCELLED,
}


@pytest.mark.parametrize("actor", [BUYER, SUPPLIER, MEDIATOR])
@pytest.mark.parametrize("given", EVERY_STATE.values(), ids=EVERY_STATE.keys())
def test_buyer_supplier_and_mediator_post_messages_in_any_state(
    given: History, actor: Actor
) -> None:
    events = when(given, c.PostMessage(actor=actor, body="tracking?"), day(50))

    assert events == [
        e.MessagePosted(at=day(50), by=actor.role, party_id=actor.party_id, body="tracking?")
    ]
    before, after = state_of(given), state_of([*given, *events])
    assert after.status is before.status
    assert after.amounts == before.amounts
    assert after.version == before.version + 1


@pytest.mark.parametrize("actor", [ADMIN, PAYMENTS, SYSTEM, OTHER_BUYER, OTHER_SUPPLIER])
def test_nobody_else_posts(actor: Actor) -> None:
    error = refused(HELD, c.PostMessage(actor=actor, body="hello"), day(3), NotPermitted)
    assert error.code == "action_not_permitted"


@pytest.mark.parametrize("body", ["", "   \n"])
def test_a_message_needs_a_body(body: str) -> None:
    error = refused(HELD, c.PostMessage(actor=BUYER, body=body), day(3), InvalidValue)
    assert (error.code, error.field) == ("invalid_value", "body")
