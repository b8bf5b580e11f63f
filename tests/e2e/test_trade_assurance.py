"""Trade Assurance end to end, against a real ``escrow serve`` on each backend.

1. A buyer orders with a 30/70 deposit/balance schedule; the supplier accepts; the payment
   provider reports both tranches; the supplier ships; delivery is reported; the buyer
   confirms: completed, with the supplier's release less the fee, rounded half-even.
2. A dispute: the buyer opens it asking for a refund, the supplier counters, the buyer
   escalates, a mediator decides a partial refund: settled, the rest released less the fee.
3. An agent does the first story for a buyer it registered, naming it in
   Escrow-On-Behalf-Of.
4. The operator's view of all that: JSON log lines carrying the request ids the client sent,
   /metrics, /readyz and the offline /docs over the socket.

The fee is 2.5 % (``FEE_BPS``): a gross of G keeps round_half_even(G / 40).
"""

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from support.processes import Process

from .client import Client, Key
from .conftest import FEE_BPS, read_log

# 4 x 2,500.00 + 0.20 shipping = 10,000.20; its fee 250.005 rounds half-even down to 250.00.
ITEMS = [{"sku": "LED-40W", "description": "LED panel", "quantity": 4, "unit_price": 250_000}]
SHIPPING = 20
TOTAL = 1_000_020
DEPOSIT, BALANCE = 300_006, 700_014  # 30 % / 70 %
FEE_ON_TOTAL = 25_000  # 25_000.5 -> even neighbour 25_000 (half-up would say 25_001)

DISPUTED_TOTAL = 500_000
REQUESTED, COUNTERED, DECIDED = 250_000, 100_000, 199_940
RELEASED_AFTER_DISPUTE = DISPUTED_TOTAL - DECIDED  # 300_060
FEE_AFTER_DISPUTE = 7_502  # 7_501.5 -> even neighbour 7_502


def test_the_fee_amounts_are_the_half_even_ones() -> None:
    assert FEE_BPS == 250
    assert TOTAL * FEE_BPS / 10_000 == 25_000.5
    assert RELEASED_AFTER_DISPUTE * FEE_BPS / 10_000 == 7_501.5


def terms(supplier_id: str, **overrides: Any) -> dict[str, Any]:
    ship_by = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    body: dict[str, Any] = {
        "supplier_id": supplier_id,
        "currency": "USD",
        "items": ITEMS,
        "shipping_fee": SHIPPING,
        "incoterm": "FOB",
        "quality_terms": "IP65, 3-year warranty, AQL 2.5",
        "ship_by": ship_by,
        "payment_schedule": [
            {"name": "deposit", "amount": DEPOSIT},
            {"name": "balance", "amount": BALANCE},
        ],
    }
    body.update(overrides)
    return body


def cast(client: Client) -> dict[str, Any]:
    """What the admin sets up: a buyer, a Trade-Assurance supplier, payments and mediator."""
    buyer_id = client.register("buyer")
    supplier_id = client.register("supplier", trade_assurance=True)
    return {
        "buyer_id": buyer_id,
        "supplier_id": supplier_id,
        "buyer": client.party_key(buyer_id),
        "supplier": client.party_key(supplier_id),
        "payments": client.role_key("payments"),
        "mediator": client.role_key("mediator"),
    }


def complete_an_order(
    client: Client, buyer: Key, supplier: Key, payments: Key, supplier_id: str, buyer_id: str
) -> str:
    """The first story; ``buyer`` may be an agent acting for the buyer."""
    placed = client.call(
        "POST", "/v1/orders", buyer, terms(supplier_id), expect=201, schema="Order"
    )
    order_id = str(placed["id"])
    assert placed["status"] == "placed"
    assert (placed["buyer_id"], placed["supplier_id"]) == (buyer_id, supplier_id)
    assert placed["total"] == TOTAL
    assert placed["fee_bps"] == FEE_BPS
    assert [t["amount"] for t in placed["payment_schedule"]] == [DEPOSIT, BALANCE]
    assert "accept" not in placed["allowed_actions"]  # the buyer's view

    assert client.step(order_id, "accept", supplier)["status"] == "accepted"
    deposit = {"amount": DEPOSIT, "method": "bank_transfer", "provider_ref": f"{order_id}-1"}
    paid = client.step(order_id, "payments", payments, deposit)
    assert paid["status"] == "partially_paid"
    assert paid["amounts"]["held"] == DEPOSIT
    balance = {"amount": BALANCE, "method": "bank_transfer", "provider_ref": f"{order_id}-2"}
    held = client.step(order_id, "payments", payments, balance)
    assert held["status"] == "held"
    assert held["amounts"] == {**held["amounts"], "paid": TOTAL, "held": TOTAL}

    tracking = {"carrier": "DHL", "tracking_number": "JD014600001234"}
    shipped = client.step(order_id, "ship", supplier, tracking)
    assert shipped["status"] == "shipped"
    assert shipped["shipment"] == {**shipped["shipment"], **tracking, "delivered_at": None}
    delivered = client.step(order_id, "deliver", supplier)
    assert delivered["status"] == "delivered"
    assert delivered["shipment"]["delivered_at"] is not None
    assert "inspection_ends" in {d["kind"] for d in delivered["deadlines"]}
    assert "confirm_receipt" in client.order(order_id, buyer)["allowed_actions"]

    completed = client.step(order_id, "confirm-receipt", buyer, request_id=f"confirm-{order_id}")
    assert completed["status"] == "completed"
    assert completed["amounts"] == {
        "total": TOTAL,
        "paid": TOTAL,
        "held": 0,
        "released": TOTAL,
        "refunded": 0,
        "fees": FEE_ON_TOTAL,
        "agency_fees": 0,
        "retained": 0,
        "paid_out": 0,  # payouts stay pending until the provider reports them paid
        "refunds_completed": 0,
    }
    # Messages and the buyer's bookkeeping may be posted in any state.
    assert completed["allowed_actions"] == ["message", "update_metadata"]
    return order_id


def test_an_order_is_paid_in_two_tranches_shipped_delivered_and_completed(
    client: Client,
) -> None:
    c = cast(client)
    order_id = complete_an_order(
        client, c["buyer"], c["supplier"], c["payments"], c["supplier_id"], c["buyer_id"]
    )

    events = client.timeline(order_id, c["buyer"])
    assert [e["type"] for e in events] == [
        "order.placed",
        "order.accepted",
        "payment.received",
        "funds.held",
        "payment.received",
        "funds.held",
        "order.shipped",
        "order.delivered",
        "receipt.confirmed",
        "funds.released",
    ]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    released = events[-1]
    assert released["data"] == {
        **released["data"],
        "gross": TOTAL,
        "fee": FEE_ON_TOTAL,
        "net": TOTAL - FEE_ON_TOTAL,
    }
    assert events[8]["actor"] == {"role": "buyer", "party_id": c["buyer_id"], "on_behalf_of": None}

    expected = {"held": 0, "released": TOTAL, "refunded": 0, "fees": FEE_ON_TOTAL}
    assert client.balances(c["buyer_id"], c["buyer"]) == {"USD": expected}
    assert client.balances(c["supplier_id"], c["supplier"]) == {"USD": expected}
    # The supplier and the payment provider see the same order; another buyer does not.
    assert client.order(order_id, c["supplier"])["status"] == "completed"
    assert client.order(order_id, c["payments"])["status"] == "completed"
    stranger = client.party_key(client.register("buyer"))
    client.call("GET", f"/v1/orders/{order_id}", stranger, expect=404, schema="Problem")


def test_a_dispute_is_countered_escalated_and_settled_by_a_mediator(client: Client) -> None:
    c = cast(client)
    buyer, supplier, payments, mediator = c["buyer"], c["supplier"], c["payments"], c["mediator"]
    one_tranche = terms(
        c["supplier_id"],
        items=[{"sku": "CASE-01", "quantity": 100, "unit_price": 5_000}],
        shipping_fee=0,
        payment_schedule=None,
    )
    order = client.call("POST", "/v1/orders", buyer, one_tranche, expect=201, schema="Order")
    order_id = order["id"]
    assert order["total"] == DISPUTED_TOTAL
    client.step(order_id, "accept", supplier)
    pay = {"amount": DISPUTED_TOTAL, "method": "card", "provider_ref": f"{order_id}-card"}
    assert client.step(order_id, "payments", payments, pay)["status"] == "held"
    client.step(order_id, "ship", supplier, {"carrier": "UPS", "tracking_number": "1Z999"})

    opened = client.step(
        order_id,
        "dispute",
        buyer,
        {
            "reason": "quality",
            "description": "30% of the panels flicker",
            "requested_refund": REQUESTED,
            "evidence": [
                {"description": "inspection report", "url": "https://example.com/report.pdf"}
            ],
        },
    )
    assert opened["status"] == "disputed"
    assert opened["dispute"] == {
        **opened["dispute"],
        "status": "open",
        "reason": "quality",
        "requested_refund": REQUESTED,
        "open_offer": {"by": "buyer", "refund_amount": REQUESTED},
    }
    countered = client.step(
        order_id, "dispute/offers", supplier, {"refund_amount": COUNTERED, "note": "a fifth"}
    )
    assert countered["dispute"]["open_offer"] == {"by": "supplier", "refund_amount": COUNTERED}
    # Only an escalated dispute is the mediator's to decide.
    refused = client.call(
        "POST",
        f"/v1/orders/{order_id}/dispute/resolve",
        mediator,
        {"refund_amount": DECIDED},
        expect=409,
        schema="Problem",
    )
    assert refused["code"]

    escalated = client.step(order_id, "dispute/escalate", buyer)
    assert escalated["dispute"]["status"] == "escalated"
    assert escalated["dispute"]["escalated_at"] is not None
    queue = client.call(
        "GET", "/v1/disputes?status=escalated", mediator, schema="DisputeSummaryPage"
    )
    assert {
        "order_id": order_id,
        "status": "escalated",
        "reason": "quality",
        "requested_refund": REQUESTED,
    }.items() <= next(d for d in queue["data"] if d["order_id"] == order_id).items()

    settled = client.step(
        order_id,
        "dispute/resolve",
        mediator,
        {"refund_amount": DECIDED, "note": "40% of the batch fails the quality terms"},
    )
    assert settled["status"] == "settled"
    assert settled["amounts"] == {
        "total": DISPUTED_TOTAL,
        "paid": DISPUTED_TOTAL,
        "held": 0,
        "released": RELEASED_AFTER_DISPUTE,
        "refunded": DECIDED,
        "fees": FEE_AFTER_DISPUTE,
        "agency_fees": 0,
        "retained": 0,
        "paid_out": 0,  # payouts stay pending until the provider reports them paid
        "refunds_completed": 0,
    }
    assert settled["dispute"]["resolution"] == {
        **settled["dispute"]["resolution"],
        "refund_amount": DECIDED,
        "release_amount": RELEASED_AFTER_DISPUTE,
        "by": "mediator",
    }
    assert [e["type"] for e in client.timeline(order_id, mediator)][-6:] == [
        "dispute.opened",
        "dispute.offer_made",
        "dispute.escalated",
        "dispute.resolved",
        "refund.issued",
        "funds.released",
    ]

    expected = {
        "held": 0,
        "released": RELEASED_AFTER_DISPUTE,
        "refunded": DECIDED,
        "fees": FEE_AFTER_DISPUTE,
    }
    assert client.balances(c["buyer_id"], buyer) == {"USD": expected}
    assert client.balances(c["supplier_id"], supplier) == {"USD": expected}


def test_an_agent_completes_an_order_for_a_buyer_it_registered(client: Client) -> None:
    agent_id = client.register("agent")
    agent = client.party_key(agent_id)
    buyer_id = client.register("buyer", by=agent)  # managed by the agent
    assert client.call("GET", f"/v1/parties/{buyer_id}", agent, schema="Party")["managed_by"] == (
        agent_id
    )
    # Only an admin turns Trade Assurance on, so the admin registers the supplier.
    supplier_id = client.register("supplier", trade_assurance=True)
    supplier = client.party_key(supplier_id)
    payments = client.role_key("payments")
    for_buyer = agent.acting_for(buyer_id)

    order_id = complete_an_order(client, for_buyer, supplier, payments, supplier_id, buyer_id)

    placed, *_, confirmed, _ = client.timeline(order_id, for_buyer)
    for event in (placed, confirmed):
        assert event["actor"] == {"role": "buyer", "party_id": buyer_id, "on_behalf_of": buyer_id}
    expected = {"held": 0, "released": TOTAL, "refunded": 0, "fees": FEE_ON_TOTAL}
    assert client.balances(buyer_id, agent) == {"USD": expected}
    # The agent sees its buyer's orders when acting as itself too.
    listed = client.call("GET", f"/v1/orders?buyer_id={buyer_id}", agent, schema="OrderPage")
    assert [o["id"] for o in listed["data"]] == [order_id]
    # It may not name a party it does not manage.
    stranger = client.register("buyer")
    client.call("GET", "/v1/orders", agent.acting_for(stranger), expect=403, schema="Problem")


def test_the_operator_sees_json_logs_with_request_ids_metrics_and_offline_docs(
    client: Client, server: Process
) -> None:
    c = cast(client)
    order_id = complete_an_order(
        client, c["buyer"], c["supplier"], c["payments"], c["supplier_id"], c["buyer_id"]
    )

    def confirm_logged() -> tuple[bool, list[dict[str, object]]]:
        lines = [line for line in read_log(server).splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        confirm = [r for r in records if r.get("request_id") == f"confirm-{order_id}"]
        found = any(
            r.get("event") == "request"
            and r.get("route") == "/v1/orders/{order_id}/confirm-receipt"
            and r.get("status") == 200
            for r in confirm
        )
        return found, confirm

    # The access line is written once the response has gone out: give it a moment under load.
    deadline = time.monotonic() + 10
    found, confirm = confirm_logged()
    while not found and time.monotonic() < deadline:
        time.sleep(0.1)
        found, confirm = confirm_logged()
    assert found, confirm

    metrics = client.http.get("/metrics")
    assert metrics.status_code == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.text)
        for sample in family.samples
    }
    confirmed = (("outcome", "accepted"), ("type", "ConfirmReceipt"))
    assert samples[("escrow_commands_total", confirmed)] >= 1
    route = (
        ("method", "POST"),
        ("route", "/v1/orders/{order_id}/confirm-receipt"),
        ("status", "200"),
    )
    assert samples[("escrow_http_request_duration_seconds_count", route)] >= 1
    assert order_id not in metrics.text

    assert client.http.get("/readyz").json() == {"status": "ready"}
    docs = client.http.get("/docs")
    assert docs.status_code == 200
    assert "https://" not in docs.text
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', docs.text):
        assert client.http.get(asset).status_code == 200, asset
