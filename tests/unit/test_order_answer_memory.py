"""The order's answer keeps its caller-independent part per state: the same answer as a fresh
dump, a new version (or another order with the same id) dumped afresh, and the per-caller
parts never shared between callers."""

from escrow_api import presenters
from escrow_api.presenters import order_json
from escrow_core.domain.roles import Actor, Role
from escrow_core.domain.visibility import EVERYTHING, Viewer

from .domain.scenario import BUYER_ID, DELIVERED, HELD, SUPPLIER_ID, day, state_of

BUYER = Viewer(buyer_side=True, own_parties=frozenset({BUYER_ID}))
SUPPLIER = Viewer(supplier_side=True, own_parties=frozenset({SUPPLIER_ID}))
BUYER_ACTOR = Actor(role=Role.BUYER, party_id=BUYER_ID)
SUPPLIER_ACTOR = Actor(role=Role.SUPPLIER, party_id=SUPPLIER_ID)


def _forget(order_id: str) -> None:
    presenters._rendered.pop(order_id, None)


def test_a_remembered_answer_is_the_answer_dumped_afresh() -> None:
    held = state_of(HELD)
    _forget("ord_m1")
    first = order_json("ord_m1", held, BUYER_ACTOR, day(5), BUYER)
    again = order_json("ord_m1", held, BUYER_ACTOR, day(5), BUYER)
    _forget("ord_m1")
    dumped = order_json("ord_m1", held, BUYER_ACTOR, day(5), BUYER)
    assert first == again == dumped
    assert list(again) == list(dumped)


def test_a_new_version_is_dumped_afresh() -> None:
    held, delivered = state_of(HELD), state_of(DELIVERED)
    before = order_json("ord_m2", held, None, day(5), EVERYTHING)
    after = order_json("ord_m2", delivered, None, day(9), EVERYTHING)
    assert (before["version"], before["status"]) == (held.version, held.status.value)
    assert (after["version"], after["status"]) == (delivered.version, delivered.status.value)


def test_each_caller_gets_its_own_actions_and_lists() -> None:
    held = state_of(HELD)
    buyer = order_json("ord_m3", held, BUYER_ACTOR, day(5), BUYER)
    supplier = order_json("ord_m3", held, SUPPLIER_ACTOR, day(5), SUPPLIER)
    assert buyer["allowed_actions"] != supplier["allowed_actions"]
    assert "metadata" in buyer
    assert "metadata" not in supplier
