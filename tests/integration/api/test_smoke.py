"""The first story through the in-process API, on both backends."""

from support.api import Api, order_terms


async def test_an_order_goes_from_placed_to_completed(api: Api) -> None:
    buyer, buyer_auth = await api.party_with_key("buyer")
    supplier, supplier_auth = await api.party_with_key("supplier", trade_assurance=True)
    payments = {"Authorization": f"Bearer {await api.role_key('payments')}"}
    placed = await api.client.post(
        "/v1/orders", json=order_terms(supplier["id"]), headers=buyer_auth
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    steps = [
        ("accept", supplier_auth, None, "accepted"),
        (
            "payments",
            payments,
            {"amount": 301_500, "method": "card", "provider_ref": "p1"},
            "partially_paid",
        ),
        (
            "payments",
            payments,
            {"amount": 703_500, "method": "wallet", "provider_ref": "p2"},
            "held",
        ),
        ("ship", supplier_auth, {"carrier": "DHL", "tracking_number": "JD1"}, "shipped"),
        ("deliver", supplier_auth, None, "delivered"),
        ("confirm-receipt", buyer_auth, None, "completed"),
    ]
    for path, headers, body, status in steps:
        response = await api.client.post(
            f"/v1/orders/{order_id}/{path}", json=body, headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    final = response.json()
    assert final["amounts"] == {
        "total": 1_005_000,
        "paid": 1_005_000,
        "held": 0,
        "released": 1_005_000,
        "refunded": 0,
        "fees": 0,
        "agency_fees": 0,
        "retained": 0,
        "paid_out": 0,  # the payout is created pending: nothing is paid out yet
        "refunds_completed": 0,
    }
    assert "payouts" not in final  # the buyer confirmed: the supplier's payouts are not its own
    assert buyer["id"] == final["buyer_id"]
