"""The Order's payouts[] and refunds[] per reader (DESIGN 7.6, 7.7): a list the reader may
not see is omitted; on the buyer side an agent sees its own agency-fee payouts only."""

from escrow_api.presenters import money_out_of, order_json
from escrow_core.domain.order.state import Payout
from escrow_core.domain.visibility import EVERYTHING, Viewer

from .domain.scenario import DELIVERED, SUPPLIER_ID, TOTAL, day, funds_released, state_of

FEE = 3_125
RELEASED = state_of(
    [*DELIVERED, funds_released(TOTAL, FEE, day(10))]  # one payout, po_t1, to the supplier
)
# An agency fee paid to the buyer's agent (no command makes one yet: DESIGN 7.2).
WITH_AGENCY_FEE = RELEASED.model_copy(
    update={
        "payouts": (
            *RELEASED.payouts,
            Payout(
                id="po_agency",
                party_id="pty_agent",
                amount=500,
                created_at=day(10),
                updated_at=day(10),
            ),
        )
    }
)
BUYER = Viewer(buyer_side=True, own_parties=frozenset({"pty_buyer"}))
BUYERS_AGENT = Viewer(buyer_side=True, own_parties=frozenset({"pty_buyer", "pty_agent"}))
SUPPLIER = Viewer(supplier_side=True, own_parties=frozenset({SUPPLIER_ID}))


def test_each_side_sees_its_own_list() -> None:
    assert money_out_of(RELEASED, BUYER) == {"refunds": []}
    supplier = money_out_of(RELEASED, SUPPLIER)
    assert supplier == {
        "payouts": [
            {"id": "po_t1", "party_id": SUPPLIER_ID, "amount": TOTAL - FEE, "status": "pending"}
        ]
    }
    assert set(money_out_of(RELEASED, EVERYTHING)) == {"payouts", "refunds"}


def test_a_buyers_agent_sees_its_own_payouts_only() -> None:
    shown = money_out_of(WITH_AGENCY_FEE, BUYERS_AGENT)
    assert [p["id"] for p in shown["payouts"]] == ["po_agency"]
    assert "payouts" not in money_out_of(WITH_AGENCY_FEE, BUYER)
    assert [p["id"] for p in money_out_of(WITH_AGENCY_FEE, SUPPLIER)["payouts"]] == [
        "po_t1",
        "po_agency",
    ]


def test_every_side_sees_every_amount() -> None:
    for viewer in (BUYER, SUPPLIER, EVERYTHING):
        amounts = order_json("ord_x", RELEASED, None, day(11), viewer)["amounts"]
        assert amounts["released"] == TOTAL
        assert {"agency_fees", "retained", "paid_out", "refunds_completed"} <= set(amounts)
