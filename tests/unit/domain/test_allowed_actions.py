"""allowed_actions: what THIS caller may do now, named after the routes (DESIGN 4, Order shape).

Expectations are written from the rules of DESIGN 3, in the order DESIGN lists the actions.
"""

from datetime import datetime

import pytest

from escrow_core.domain import events as e
from escrow_core.domain.order import allowed_actions
from escrow_core.domain.roles import Actor
from escrow_core.domain.terms import ExtendableDeadline

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
    extend,
    state_of,
    when,
)

ROUTE_ORDER = [
    "accept",
    "pay",
    "ship",
    "deliver",
    "confirm_receipt",
    "extend",
    "cancel",
    "message",
    "open_dispute",
    "make_offer",
    "accept_offer",
    "escalate",
    "resolve",
    "withdraw",
    "release",
    "update_metadata",
    "claim",
]

INSPECTION_USED_BY_BUYER: History = [
    *DELIVERED,
    *when(DELIVERED, extend(ExtendableDeadline.INSPECTION, 5), day(10)),
]

WITHDRAWN: History = [*DISPUTED, e.DisputeWithdrawn(at=day(13))]  # never to be reopened

CASES: list[tuple[str, History, datetime, Actor, list[str]]] = [
    ("placed", PLACED, day(3), BUYER, ["extend", "cancel", "message", "update_metadata"]),
    ("placed", PLACED, day(3), SUPPLIER, ["accept", "cancel", "message"]),
    ("placed", PLACED, day(3), PAYMENTS, []),
    ("placed", PLACED, day(3), MEDIATOR, ["message"]),
    ("placed", PLACED, day(3), ADMIN, ["cancel"]),
    ("placed", PLACED, day(3), OTHER_BUYER, []),
    ("placed", PLACED, day(3), OTHER_SUPPLIER, []),
    ("accepted", ACCEPTED, day(3), BUYER, ["extend", "cancel", "message", "update_metadata"]),
    ("accepted", ACCEPTED, day(3), SUPPLIER, ["cancel", "message"]),
    ("accepted", ACCEPTED, day(3), PAYMENTS, ["pay"]),
    (
        "partially_paid",
        PARTIALLY_PAID,
        day(3),
        BUYER,
        ["extend", "message", "release", "update_metadata"],
    ),
    ("partially_paid", PARTIALLY_PAID, day(3), SUPPLIER, ["cancel", "message"]),
    ("partially_paid", PARTIALLY_PAID, day(3), PAYMENTS, ["pay"]),
    ("partially_paid", PARTIALLY_PAID, day(3), ADMIN, ["cancel"]),
    ("held", HELD, day(3), BUYER, ["extend", "message", "release", "update_metadata"]),
    ("held", HELD, day(3), SUPPLIER, ["ship", "cancel", "message"]),
    ("held", HELD, day(3), PAYMENTS, []),
    ("held", HELD, day(3), ADMIN, ["cancel"]),
    (
        "overdue",
        OVERDUE,
        day(40),
        BUYER,
        ["extend", "cancel", "message", "release", "update_metadata"],
    ),
    ("overdue", OVERDUE, day(40), SUPPLIER, ["ship", "cancel", "message"]),
    (
        "shipped",
        SHIPPED,
        day(7),
        BUYER,
        ["confirm_receipt", "message", "open_dispute", "release", "update_metadata"],
    ),
    ("shipped", SHIPPED, day(7), SUPPLIER, ["deliver", "message"]),
    ("shipped", SHIPPED, day(7), PAYMENTS, ["deliver"]),
    ("shipped", SHIPPED, day(7), ADMIN, ["deliver"]),
    ("shipped", SHIPPED, day(7), MEDIATOR, ["message"]),
    (
        "delivered",
        DELIVERED,
        day(10),
        BUYER,
        ["confirm_receipt", "extend", "message", "open_dispute", "release", "update_metadata"],
    ),
    ("delivered", DELIVERED, day(10), SUPPLIER, ["extend", "message"]),
    ("delivered", DELIVERED, day(10), PAYMENTS, []),
    ("delivered", DELIVERED, day(10), ADMIN, []),
    (
        "delivered_extended",
        INSPECTION_USED_BY_BUYER,
        day(11),
        BUYER,
        ["confirm_receipt", "message", "open_dispute", "release", "update_metadata"],
    ),
    (
        "negotiating",
        DISPUTED,
        day(13),
        BUYER,
        ["message", "make_offer", "withdraw", "update_metadata"],
    ),
    ("negotiating", DISPUTED, day(13), SUPPLIER, ["message", "make_offer", "accept_offer"]),
    ("negotiating", DISPUTED, day(13), MEDIATOR, ["message"]),
    ("negotiating", DISPUTED, day(13), ADMIN, []),
    (
        "may_escalate",
        DISPUTED,
        day(16),
        BUYER,
        ["message", "make_offer", "escalate", "withdraw", "update_metadata"],
    ),
    (
        "may_escalate",
        DISPUTED,
        day(16),
        SUPPLIER,
        ["message", "make_offer", "accept_offer", "escalate"],
    ),
    (
        "withdrawn",
        WITHDRAWN,
        day(14),
        BUYER,
        ["confirm_receipt", "extend", "message", "release", "update_metadata"],
    ),
    ("escalated", ESCALATED, day(16), BUYER, ["message", "withdraw", "update_metadata"]),
    ("escalated", ESCALATED, day(16), SUPPLIER, ["message"]),
    ("escalated", ESCALATED, day(16), MEDIATOR, ["message", "resolve"]),
    ("escalated", ESCALATED, day(16), ADMIN, ["resolve"]),
    ("completed", COMPLETED, day(20), BUYER, ["message", "update_metadata"]),
    ("completed", COMPLETED, day(20), SUPPLIER, ["message"]),
    ("completed", COMPLETED, day(20), ADMIN, []),
    ("cancelled", CANCELLED, day(20), BUYER, ["message", "update_metadata"]),
    ("cancelled", CANCELLED, day(20), PAYMENTS, []),
    # The buyer's bookkeeping goes on in every status; no one else keeps it.
    ("completed", COMPLETED, day(20), MEDIATOR, ["message"]),
]


@pytest.mark.parametrize(
    ("given", "now", "actor", "expected"),
    [case[1:] for case in CASES],
    ids=[f"{case[0]}-{case[3].party_id or case[3].role.value}" for case in CASES],
)
def test_allowed_actions_for_each_role(
    given: History, now: datetime, actor: Actor, expected: list[str]
) -> None:
    assert set(expected) <= set(ROUTE_ORDER)
    assert allowed_actions(state_of(given), actor, now) == expected
