"""Sourcing terms end to end (DESIGN 7.2), against a real ``escrow serve`` in sandbox mode with
its embedded worker, on each backend.

1. An agent places an order for a buyer it manages: a 1.5 % agency fee, a 30/70 schedule and
   10 % retained for 30 days. The deposit is released to the supplier as a milestone before
   production; the balance is paid; the order ships, is delivered and confirmed, which
   releases all but the retention. Inside the window the buyer claims a defect; the supplier
   offers, the buyer escalates and a mediator refunds part of the retained money; the rest is
   released. Every fee, agency fee, net, payout and refund is checked to the minor unit.
2. A second order leaves its balance unpaid; the sandbox clock passes the balance's due date,
   the worker records ``payment.overdue``, and the buyer cancels and gets its deposit back.

The platform fee is 2.5 % (``FEE_BPS``) and fees are cumulative per order: a release keeps the
fee on everything released so far less the fees already kept.
"""

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from support.databases import TestDatabases
from support.processes import Process, run_cli, serve

from .client import Client, Key
from .conftest import ADMIN_KEY, FEE_BPS, migrated, server_env

AGENCY_FEE_BPS = 150
TOTAL = 1_000_000  # 10,000.00 USD
DEPOSIT, BALANCE = 300_000, 700_000
RETAINED = 100_000  # 10 % of the total

# The milestone: the deposit, released before production.
FEE_1, AGENCY_1 = 7_500, 4_500  # 2.5 % and 1.5 % of 300,000
NET_1 = DEPOSIT - FEE_1 - AGENCY_1  # 288,000
# Confirmation: the balance less the retention (600,000); fees on 900,000 less those kept.
GROSS_2 = BALANCE - RETAINED
FEE_2, AGENCY_2 = 22_500 - FEE_1, 13_500 - AGENCY_1  # 15,000 and 9,000
NET_2 = GROSS_2 - FEE_2 - AGENCY_2  # 576,000
# The claim: 50,000 of the retained money refunded, the other 50,000 released.
REFUNDED = 50_000
GROSS_3 = RETAINED - REFUNDED
FEE_3, AGENCY_3 = 23_750 - FEE_1 - FEE_2, 14_250 - AGENCY_1 - AGENCY_2  # 1,250 and 750
NET_3 = GROSS_3 - FEE_3 - AGENCY_3  # 48,000


def test_the_figures_are_the_cumulative_ones() -> None:
    assert FEE_BPS == 250
    for released, fees, agency_fees in [
        (DEPOSIT, FEE_1, AGENCY_1),
        (DEPOSIT + GROSS_2, FEE_1 + FEE_2, AGENCY_1 + AGENCY_2),
        (TOTAL - REFUNDED, FEE_1 + FEE_2 + FEE_3, AGENCY_1 + AGENCY_2 + AGENCY_3),
    ]:
        assert released * FEE_BPS == fees * 10_000
        assert released * AGENCY_FEE_BPS == agency_fees * 10_000
    assert (NET_1, NET_2, NET_3) == (288_000, 576_000, 48_000)


@pytest.fixture(scope="module")
async def sandbox_url(test_databases: TestDatabases) -> AsyncIterator[str]:
    """A database of its own: the sandbox clock moves for everyone on it, and the embedded
    worker fires every timer on it."""
    async with migrated(test_databases) as url:
        yield url


@pytest.fixture(scope="module")
def sandbox(sandbox_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    env = server_env(
        sandbox_url,
        ESCROW_EMBEDDED_WORKER="true",
        ESCROW_WORKER_POLL_SECONDS="0.1",
        ESCROW_SANDBOX="true",
    )
    with serve(env, tmp_path_factory.mktemp("sourcing")) as process:
        yield process


@pytest.fixture
def client(sandbox: Process) -> Iterator[Client]:
    assert sandbox.base_url is not None
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as http:
        yield Client(http, ADMIN_KEY)


def terms(supplier_id: str, today: date, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "supplier_id": supplier_id,
        "currency": "USD",
        "items": [{"sku": "VALVE-DN25", "quantity": 1_000, "unit_price": 1_000}],
        "incoterm": "FOB",
        "quality_terms": "brass CW617N, pressure-tested to 16 bar",
        "ship_by": (today + timedelta(days=30)).isoformat(),
        "agency_fee_bps": AGENCY_FEE_BPS,
        "payment_schedule": [
            {"name": "deposit", "amount": DEPOSIT},
            {"name": "balance", "amount": BALANCE},
        ],
    }
    body.update(overrides)
    return body


def amounts(**changes: int) -> dict[str, int]:
    return {
        "total": TOTAL,
        "paid": 0,
        "held": 0,
        "released": 0,
        "refunded": 0,
        "fees": 0,
        "agency_fees": 0,
        "retained": 0,
        "paid_out": 0,
        "refunds_completed": 0,
        **changes,
    }


def pay(client: Client, order_id: str, payments: Key, amount: int, ref: str) -> dict[str, Any]:
    body = {"amount": amount, "method": "bank_transfer", "provider_ref": f"{order_id}-{ref}"}
    return client.step(order_id, "payments", payments, body)


def test_an_agency_order_with_a_milestone_retention_and_a_claim_settles_to_the_minor_unit(
    client: Client, sandbox_url: str
) -> None:
    agent_id = client.register("agent")
    agent = client.party_key(agent_id)
    buyer_id = client.register("buyer", by=agent)
    supplier_id = client.register("supplier", trade_assurance=True)
    supplier = client.party_key(supplier_id)
    payments, mediator = client.role_key("payments"), client.role_key("mediator")
    buyer = agent.acting_for(buyer_id)
    today = datetime.now(UTC).date()

    retention = {"percent": 10, "days": 30}
    placed = client.call(
        "POST",
        "/v1/orders",
        buyer,
        terms(supplier_id, today, retention=retention),
        expect=201,
        schema="Order",
    )
    order_id = placed["id"]
    assert (placed["total"], placed["fee_bps"]) == (TOTAL, FEE_BPS)
    assert (placed["agency_id"], placed["agency_fee_bps"]) == (agent_id, AGENCY_FEE_BPS)
    assert placed["retention"] == retention
    client.step(order_id, "accept", supplier)
    assert pay(client, order_id, payments, DEPOSIT, "deposit")["status"] == "partially_paid"

    # The deposit goes to the factory before production: a milestone release.
    assert "release" in client.order(order_id, buyer)["allowed_actions"]
    milestone = client.step(
        order_id, "release", buyer, {"amount": DEPOSIT, "note": "deposit: start production"}
    )
    assert milestone["status"] == "partially_paid"  # a milestone does not move the status
    assert milestone["amounts"] == amounts(
        paid=DEPOSIT, released=DEPOSIT, fees=FEE_1, agency_fees=AGENCY_1
    )
    # Once anything is released the supplier can no longer walk away on its own.
    assert "cancel" not in client.order(order_id, supplier)["allowed_actions"]
    client.call("POST", f"/v1/orders/{order_id}/cancel", supplier, {"reason": "x"}, expect=409)

    assert pay(client, order_id, payments, BALANCE, "balance")["status"] == "held"
    client.step(order_id, "ship", supplier, {"carrier": "COSCO", "tracking_number": "CSLU123"})
    client.step(order_id, "deliver", supplier)
    retained = client.step(order_id, "confirm-receipt", buyer)
    assert retained["status"] == "retained"
    assert retained["amounts"] == amounts(
        paid=TOTAL,
        held=RETAINED,
        retained=RETAINED,
        released=DEPOSIT + GROSS_2,
        fees=FEE_1 + FEE_2,
        agency_fees=AGENCY_1 + AGENCY_2,
    )
    ends = next(d for d in retained["deadlines"] if d["kind"] == "retention_ends")
    window = datetime.fromisoformat(ends["at"]) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < window <= timedelta(days=30)
    assert "claim" in client.order(order_id, buyer)["allowed_actions"]

    # A latent defect turns up inside the window: the buyer claims on the retained money.
    claim = {
        "reason": "quality",
        "description": "12 % of the valves weep at 10 bar",
        "requested_refund": 80_000,
        "evidence": [{"description": "pressure test log"}],
    }
    claimed = client.step(order_id, "claim", buyer, claim)
    assert claimed["status"] == "disputed"
    assert claimed["dispute"]["kind"] == "claim"
    client.step(order_id, "dispute/offers", supplier, {"refund_amount": 30_000})
    client.step(order_id, "dispute/escalate", buyer)
    settled = client.step(
        order_id,
        "dispute/resolve",
        mediator,
        {"refund_amount": REFUNDED, "note": "half the retention covers the rework"},
    )
    assert settled["status"] == "settled"
    assert settled["amounts"] == amounts(
        paid=TOTAL,
        released=TOTAL - REFUNDED,
        refunded=REFUNDED,
        fees=FEE_1 + FEE_2 + FEE_3,
        agency_fees=AGENCY_1 + AGENCY_2 + AGENCY_3,
    )

    releases = [
        e["data"] for e in client.timeline(order_id, payments) if e["type"] == "funds.released"
    ]
    assert [(r["gross"], r["fee"], r["agency_fee"], r["net"]) for r in releases] == [
        (DEPOSIT, FEE_1, AGENCY_1, NET_1),
        (GROSS_2, FEE_2, AGENCY_2, NET_2),
        (GROSS_3, FEE_3, AGENCY_3, NET_3),
    ]
    payouts = client.call("GET", f"/v1/payouts?order_id={order_id}&limit=100", payments)
    paid_to = sorted((p["party_id"], p["amount"]) for p in payouts["data"])
    assert paid_to == sorted(
        [(supplier_id, n) for n in (NET_1, NET_2, NET_3)]
        + [(agent_id, a) for a in (AGENCY_1, AGENCY_2, AGENCY_3)]
    )
    refunds = client.call("GET", f"/v1/refunds?order_id={order_id}", payments)
    assert [(r["payment_provider_ref"], r["amount"]) for r in refunds["data"]] == [
        (f"{order_id}-balance", REFUNDED)
    ]
    # The agent's own account is owed its fees, all of them on their way to its bank.
    agency_fees = AGENCY_1 + AGENCY_2 + AGENCY_3
    agent_balances = client.call(
        "GET", f"/v1/parties/{agent_id}/balances", agent, schema="Balances"
    )
    assert agent_balances["accounts"] == [
        {
            "account": f"agency:{agent_id}",
            "currency": "USD",
            "posted": agency_fees,
            "pending": -agency_fees,
            "paid_out": 0,
        }
    ]
    # The operator's checks agree: the ledger sums to zero and matches every order's amounts.
    verified = run_cli("verify", env={"ESCROW_DATABASE_URL": sandbox_url})
    assert verified.returncode == 0, verified.stdout + verified.stderr


def wait_for(client: Client, order_id: str, key: Key, event_type: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if event_type in {e["type"] for e in client.timeline(order_id, key)}:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {event_type} on {order_id}")


def test_an_unpaid_balance_falls_due_and_the_buyer_cancels_with_its_deposit_back(
    client: Client,
) -> None:
    agent = client.party_key(client.register("agent"))
    buyer_id = client.register("buyer", by=agent)
    supplier_id = client.register("supplier", trade_assurance=True)
    supplier = client.party_key(supplier_id)
    payments = client.role_key("payments")
    buyer = agent.acting_for(buyer_id)
    # The sandbox clock is not in the document (its router exists only in sandbox mode).
    moved = client.call("POST", "/v1/sandbox/clock", client.admin, {"advance_seconds": 1})
    today = datetime.fromisoformat(moved["now"]).date()
    due_by = today + timedelta(days=10)
    schedule = [
        {"name": "deposit", "amount": DEPOSIT},
        {"name": "balance", "amount": BALANCE, "due_by": due_by.isoformat()},
    ]
    placed = client.call(
        "POST",
        "/v1/orders",
        buyer,
        terms(supplier_id, today, payment_schedule=schedule),
        expect=201,
        schema="Order",
    )
    order_id = placed["id"]
    assert placed["payment_schedule"][1]["due_by"] == due_by.isoformat()
    client.step(order_id, "accept", supplier)
    pay(client, order_id, payments, DEPOSIT, "deposit")
    waiting = client.order(order_id, buyer)
    assert "tranche_due" in {d["kind"] for d in waiting["deadlines"]}
    assert "cancel" not in waiting["allowed_actions"]  # paid and not yet overdue

    # The balance's due date passes unpaid: the worker records it.
    client.call("POST", "/v1/sandbox/clock", client.admin, {"advance_seconds": 11 * 86_400})
    wait_for(client, order_id, buyer, "payment.overdue")
    overdue = client.order(order_id, buyer)
    assert "unpaid_cancel_at" in {d["kind"] for d in overdue["deadlines"]}
    assert "cancel" in overdue["allowed_actions"]

    cancelled = client.step(order_id, "cancel", buyer, {"reason": "balance never came"})
    assert cancelled["status"] == "cancelled"
    assert cancelled["amounts"] == amounts(paid=DEPOSIT, refunded=DEPOSIT)
    [refund] = [e for e in client.timeline(order_id, buyer) if e["type"] == "refund.issued"]
    assert (refund["data"]["amount"], refund["data"]["reason"]) == (DEPOSIT, "cancellation")
