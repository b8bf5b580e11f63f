"""The domain's frozen models copy by a short path (``_Frozen.model_copy``): the same copy as
pydantic's own, field for field, the original untouched."""

from datetime import UTC, datetime

from pydantic import BaseModel

from escrow_core.domain import events as e
from escrow_core.domain.order import evolve
from escrow_core.domain.order.state import Amounts, OrderState, Status
from escrow_core.domain.roles import Role

from .scenario import order_accepted, order_placed


def _placed() -> OrderState:
    return evolve(None, order_placed())


def _same(a: BaseModel, b: BaseModel) -> None:
    assert type(a) is type(b)
    assert a.__dict__ == b.__dict__
    assert a.model_fields_set == b.model_fields_set
    assert a.__pydantic_extra__ == b.__pydantic_extra__
    assert a.__pydantic_private__ == b.__pydantic_private__


def test_a_copy_with_changes_is_pydantics_copy_and_leaves_the_original() -> None:
    state = _placed()
    before = state.model_dump()
    at = datetime(2030, 1, 2, tzinfo=UTC)
    update = {"status": Status.ACCEPTED, "accepted_at": at, "amounts": Amounts(paid=5)}

    copied = state.model_copy(update=update)

    _same(copied, BaseModel.model_copy(state, update=update))
    assert copied is not state
    assert (copied.status, copied.accepted_at, copied.amounts.paid) == (Status.ACCEPTED, at, 5)
    assert state.model_dump() == before
    assert "accepted_at" in copied.model_fields_set
    assert copied.__dict__ is not state.__dict__
    assert copied.model_fields_set is not state.model_fields_set


def test_a_plain_copy_and_a_deep_copy_are_pydantics() -> None:
    state = _placed()
    _same(state.model_copy(), BaseModel.model_copy(state))
    _same(state.model_copy(update={}), BaseModel.model_copy(state, update={}))
    deep = state.model_copy(deep=True)
    _same(deep, BaseModel.model_copy(state, deep=True))
    assert deep.terms is not state.terms  # deep: pydantic's own path
    assert state.model_copy().terms is state.terms  # shallow, as pydantic's


def test_evolve_moves_a_new_state_on_and_leaves_the_one_before() -> None:
    placed = _placed()
    before = placed.model_dump()
    fields_before = set(placed.model_fields_set)
    at = datetime(2030, 1, 2, tzinfo=UTC)

    # An event whose mutator returns the state as it was (a message), and one that changes it
    posted = evolve(placed, e.MessagePosted(at=at, by=Role.BUYER, body="hello"))
    accepted = evolve(posted, order_accepted(at))

    assert posted is not placed
    assert accepted is not posted
    assert (posted.version, posted.updated_at) == (placed.version + 1, at)
    assert (accepted.version, accepted.status) == (placed.version + 2, Status.ACCEPTED)
    assert placed.model_dump() == before
    assert placed.model_fields_set == fields_before
    assert posted.model_dump() == {**before, "version": placed.version + 1, "updated_at": at}
