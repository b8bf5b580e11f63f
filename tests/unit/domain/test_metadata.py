"""The buyer's bookkeeping (DESIGN 7.3): ``metadata`` and ``client_reference`` at placement,
``update_metadata`` after, and who sees them (7.6)."""

from datetime import datetime

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain import metadata
from escrow_core.domain.errors import InvalidClientReference, InvalidMetadata, NotPermitted
from escrow_core.domain.order import Status, allowed_actions
from escrow_core.domain.roles import Actor
from escrow_core.domain.visibility import EVERYTHING, Viewer

from .scenario import (
    ADMIN,
    BUYER,
    CANCELLED,
    COMPLETED,
    MEDIATOR,
    OTHER_BUYER,
    PAYMENTS,
    PLACED,
    SUPPLIER,
    T0,
    day,
    order_placed,
    place_order,
    refused,
    state_of,
    then_state,
    when,
)

TWENTY = {f"k{n}": "v" for n in range(20)}


def update(change: dict[str, object], actor: Actor = BUYER) -> c.UpdateMetadata:
    return c.UpdateMetadata(actor=actor, metadata=change)


# --- the rules -------------------------------------------------------------------------------
def test_a_change_merges_and_an_empty_value_removes_the_key() -> None:
    kept = {"po": "PO-1", "cost_center": "B-12"}
    assert metadata.merged(kept, {"po": "PO-2", "cost_center": "", "new": "x"}) == {
        "po": "PO-2",
        "new": "x",
    }
    assert metadata.merged(kept, {"absent": ""}) == kept  # removing what is not there


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"": "v"}, "metadata.", "invalid_key"),
        ({"k" * 41: "v"}, f"metadata.{'k' * 41}", "invalid_key"),
        ({"bad\x00key": "v"}, "metadata.bad\x00key", "invalid_key"),
        ({"k": "v" * 501}, "metadata.k", "value_too_long"),
        ({"k": 7}, "metadata.k", "not_a_string"),
        ({"k": None}, "metadata.k", "not_a_string"),
        ({"k": "a\x07b"}, "metadata.k", "invalid_value"),
        ({**TWENTY, "one_more": "v"}, "metadata", "too_many_keys"),
    ],
)
def test_each_broken_rule_names_the_key_and_the_reason(
    change: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(InvalidMetadata) as raised:
        metadata.merged({}, change)
    assert (raised.value.code, raised.value.field, raised.value.reason) == (
        "invalid_metadata",
        field,
        reason,
    )


def test_the_limits_hold_at_their_edges_and_apply_to_the_merged_result() -> None:
    assert metadata.merged({}, {"k" * 40: "v" * 500}) == {"k" * 40: "v" * 500}
    assert metadata.merged({}, TWENTY) == TWENTY
    # 20 kept + 1 new is too many, unless the same change removes one.
    with pytest.raises(InvalidMetadata, match="at most 20 keys"):
        metadata.merged(TWENTY, {"k20": "v"})
    assert len(metadata.merged(TWENTY, {"k20": "v", "k0": ""})) == 20


# --- placement -------------------------------------------------------------------------------
def test_the_order_is_placed_with_its_metadata_and_client_reference() -> None:
    command = place_order(metadata={"po": "PO-7", "drop": ""}, client_reference="PO-7")
    [placed] = when([], command, T0)

    assert isinstance(placed, e.OrderPlaced)
    assert (placed.metadata, placed.client_reference) == ({"po": "PO-7"}, "PO-7")
    state = state_of([placed])
    assert (state.metadata, state.client_reference) == ({"po": "PO-7"}, "PO-7")


def test_an_order_without_them_has_empty_metadata_and_no_reference() -> None:
    state = state_of([order_placed()])
    assert (state.metadata, state.client_reference) == ({}, None)


@pytest.mark.parametrize("reference", ["", "r" * 101, "PO\x00-1"])
def test_a_bad_client_reference_is_refused(reference: str) -> None:
    error = refused([], place_order(client_reference=reference), T0, InvalidClientReference)
    assert error.field == "client_reference"


def test_bad_metadata_refuses_the_placement() -> None:
    refused([], place_order(metadata={"k": "v" * 501}), T0, InvalidMetadata)


# --- update_metadata -------------------------------------------------------------------------
def test_the_buyer_merges_and_removes_and_the_event_holds_the_whole_result() -> None:
    given = [order_placed(metadata={"po": "PO-7", "cost_center": "B-12"})]
    [updated] = when(given, update({"cost_center": "", "erp": "E-1"}), day(1))

    assert updated == e.OrderMetadataUpdated(at=day(1), metadata={"po": "PO-7", "erp": "E-1"})
    after = then_state(given, update({"cost_center": "", "erp": "E-1"}), day(1))
    assert after.metadata == {"po": "PO-7", "erp": "E-1"}
    assert after.version == 2
    assert after.status is Status.PLACED


def test_a_change_that_changes_nothing_records_nothing() -> None:
    given = [order_placed(metadata={"po": "PO-7"})]
    assert when(given, update({"po": "PO-7", "absent": ""}), day(1)) == []


def test_the_limits_apply_to_the_merged_result() -> None:
    given = [order_placed(metadata=TWENTY)]
    refused(given, update({"k20": "v"}), day(1), InvalidMetadata)


@pytest.mark.parametrize("history", [COMPLETED, CANCELLED], ids=["completed", "cancelled"])
def test_the_buyer_keeps_its_books_after_the_order_has_ended(history: list[e.AnyEvent]) -> None:
    [updated] = when(history, update({"paid_in_erp": "yes"}), day(30))
    assert isinstance(updated, e.OrderMetadataUpdated)


@pytest.mark.parametrize("actor", [SUPPLIER, OTHER_BUYER, PAYMENTS, MEDIATOR, ADMIN])
def test_no_one_but_the_buyer_updates_it(actor: Actor) -> None:
    refused(PLACED, update({"k": "v"}, actor), day(1), NotPermitted)


def test_update_metadata_is_allowed_to_the_buyer_in_every_status() -> None:
    now = datetime(2025, 6, 1, tzinfo=T0.tzinfo)
    for history in (PLACED, COMPLETED, CANCELLED):
        assert "update_metadata" in allowed_actions(state_of(history), BUYER, now)
        assert "update_metadata" not in allowed_actions(state_of(history), SUPPLIER, now)


# --- who sees it -----------------------------------------------------------------------------
def test_the_supplier_side_never_sees_the_bookkeeping() -> None:
    data = e.event_to_data(order_placed(metadata={"po": "PO-7"}, client_reference="PO-7"))
    supplier_side = Viewer(supplier_side=True)
    buyer_side = Viewer(buyer_side=True)

    assert not supplier_side.sees_event("order.metadata_updated")
    assert buyer_side.sees_event("order.metadata_updated")
    assert EVERYTHING.sees_event("order.metadata_updated")
    cut = supplier_side.event_data("order.placed", data)
    assert "metadata" not in cut
    assert "client_reference" not in cut
    assert cut == {k: v for k, v in data.items() if k not in ("metadata", "client_reference")}
    assert buyer_side.event_data("order.placed", data) is data
    assert EVERYTHING.event_data("order.placed", data) is data
    # An agent on both sides of a trade is on the buyer side.
    assert Viewer(buyer_side=True, supplier_side=True).sees_metadata
