"""A Python client generated from the committed document (openapi-python-client) drives a live
``escrow serve``: the README's order, a dispute a mediator settles with a partial refund, an
offer accepted, a dispute withdrawn and a cancellation.

Every body-less command is called without a body (the generator's default), and the answers
are the generated types: enums for statuses, actions, deadline kinds and roles, one class per
event type with its typed data. The client is generated once per module, into a temporary
directory, and imported from there.
"""

import importlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from support.processes import BIN, ROOT, Process

from .conftest import ADMIN_KEY, FEE_BPS

DOCUMENT = ROOT / "openapi" / "openapi.json"
PACKAGE = "escrow_generated_client"
# No formatter run over the generated code: ruff is not on PATH in every environment.
CONFIG = "post_hooks: []\n"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The client package, generated once for the module (both backends)."""
    where = tmp_path_factory.mktemp("generated")
    config = where / "config.yml"
    config.write_text(CONFIG)
    run = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(DOCUMENT),
            "--meta",
            "none",
            "--output-path",
            str(where / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # The generator reports what it had to leave out (an unsupported schema, a bad reference):
    # the document must give it nothing to skip.
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(where))
    try:
        yield where
    finally:
        sys.path.remove(str(where))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class Generated:
    """The generated package's modules, by the names the README would use."""

    def __init__(self) -> None:
        self.root = importlib.import_module(PACKAGE)
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.opened: list[Any] = []

    def api(self, tag: str, operation: str) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")

    def client(self, base_url: str, secret: str) -> Any:
        client = self.root.AuthenticatedClient(base_url=base_url, token=secret, timeout=10.0)
        self.opened.append(client)
        return client

    def close(self) -> None:
        for client in self.opened:
            client.get_httpx_client().close()


@pytest.fixture
def sdk(generated: Path, server: Process) -> Iterator[tuple[Generated, str]]:
    assert server.base_url is not None
    package = Generated()
    try:
        yield package, server.base_url
    finally:
        package.close()


def ok(answer: Any, model: type) -> Any:
    """The answer is the success model (not a Problem, not None)."""
    assert isinstance(answer, model), answer
    return answer


class Story:
    """The cast (admin, buyer, supplier, payments, mediator) as generated clients."""

    def __init__(self, g: Generated, base_url: str) -> None:
        self.g, self.m = g, g.models
        self.base_url = base_url
        admin = g.client(base_url, ADMIN_KEY)
        self.admin = admin
        register = g.api("parties", "register_party").sync
        buyer = ok(
            register(
                client=admin,
                body=self.m.RegisterPartyRequest(kind=self.m.PartyKind.BUYER, name="Acme"),
            ),
            self.m.Party,
        )
        supplier = ok(
            register(
                client=admin,
                body=self.m.RegisterPartyRequest(
                    kind=self.m.PartyKind.SUPPLIER, name="Bright LED", trade_assurance=True
                ),
            ),
            self.m.Party,
        )
        assert buyer.kind is self.m.PartyKind.BUYER
        self.supplier_id = supplier.id
        party_key = g.api("parties", "create_party_api_key").sync  # no body at all
        role_key = g.api("api_keys", "create_api_key").sync
        keys = {
            "buyer": ok(party_key(buyer.id, client=admin), self.m.ApiKey),
            "supplier": ok(party_key(supplier.id, client=admin), self.m.ApiKey),
            "payments": ok(
                role_key(
                    client=admin,
                    body=self.m.CreateApiKeyRequest(role=self.m.CreateApiKeyRequestRole.PAYMENTS),
                ),
                self.m.ApiKey,
            ),
            "mediator": ok(
                role_key(
                    client=admin,
                    body=self.m.CreateApiKeyRequest(role=self.m.CreateApiKeyRequestRole.MEDIATOR),
                ),
                self.m.ApiKey,
            ),
        }
        assert keys["buyer"].role is self.m.KeyRole.BUYER
        self.clients = {name: g.client(base_url, key.key) for name, key in keys.items()}

    def command(self, operation: str, caller: str, order_id: str, **body: Any) -> Any:
        """Run an order command as ``caller``; the answer must be an Order."""
        call = self.g.api("orders", operation).sync
        return ok(call(order_id, client=self.clients[caller], **body), self.m.Order)

    def place(self, payment_schedule: list[tuple[str, int]] | None = None) -> Any:
        m = self.m
        body = m.PlaceOrderRequest(
            supplier_id=self.supplier_id,
            currency="USD",
            items=[m.LineItemIn(sku="LED-40W", quantity=500, unit_price=1250)],
            shipping_fee=35_000,
            incoterm=m.Incoterm.FOB,
            quality_terms="IP65, 3-year warranty, AQL 2.5 inspection",
            ship_by=(datetime.now(UTC).date() + timedelta(days=30)),
        )
        if payment_schedule:
            body.payment_schedule = [m.TrancheIn(name=n, amount=a) for n, a in payment_schedule]
        call = self.g.api("orders", "place_order").sync
        order = ok(call(client=self.clients["buyer"], body=body), m.Order)
        assert order.status is m.OrderStatus.PLACED
        return order

    def pay(self, order_id: str, amount: int, ref: str) -> Any:
        body = self.m.RecordPaymentRequest(
            amount=amount, method=self.m.PaymentMethod.BANK_TRANSFER, provider_ref=ref
        )
        return self.command("record_payment", "payments", order_id, body=body)

    def shipped(self) -> Any:
        order = self.place()
        self.command("accept_order", "supplier", order.id)
        self.pay(order.id, order.total, f"wire-{order.id}")
        ship = self.m.ShipRequest(carrier="DHL", tracking_number="JD014600001234")
        return self.command("ship_order", "supplier", order.id, body=ship)

    def events(self, order_id: str) -> list[Any]:
        call = self.g.api("orders", "list_order_events").sync
        page = ok(call(order_id, client=self.clients["buyer"], limit=100), self.m.EventPage)
        return list(page.data)


@pytest.fixture
def story(sdk: tuple[Generated, str]) -> Story:
    return Story(*sdk)


def test_the_readme_order_with_the_generated_client(story: Story) -> None:
    m = story.m
    order = story.place([("deposit", 198_000), ("balance", 462_000)])
    assert order.allowed_actions == [] or all(
        isinstance(a, m.OrderAction) for a in order.allowed_actions
    )
    assert {d.kind for d in order.deadlines} == {m.DeadlineKind.ACCEPT_BY}

    accepted = story.command("accept_order", "supplier", order.id)  # no body
    assert accepted.status is m.OrderStatus.ACCEPTED
    assert story.pay(order.id, 198_000, "wire-1").status is m.OrderStatus.PARTIALLY_PAID
    held = story.pay(order.id, 462_000, "wire-2")
    assert held.status is m.OrderStatus.HELD
    ship = m.ShipRequest(carrier="DHL", tracking_number="JD014600001234")
    shipped = story.command("ship_order", "supplier", order.id, body=ship)
    assert shipped.status is m.OrderStatus.SHIPPED
    delivered = story.command("deliver_order", "supplier", order.id)  # no body
    assert delivered.status is m.OrderStatus.DELIVERED
    assert m.DeadlineKind.INSPECTION_ENDS in {d.kind for d in delivered.deadlines}
    as_buyer = story.g.api("orders", "get_order").sync(order.id, client=story.clients["buyer"])
    assert m.OrderAction.CONFIRM_RECEIPT in as_buyer.allowed_actions
    completed = story.command("confirm_receipt", "buyer", order.id)  # no body
    assert completed.status is m.OrderStatus.COMPLETED
    total = 660_000
    fee = total * FEE_BPS // 10_000
    amounts = completed.amounts
    assert (amounts.paid, amounts.held, amounts.released, amounts.fees) == (total, 0, total, fee)

    events = story.events(order.id)
    # Each event parsed as its own type's class; the README's facts come in this order.
    assert all(type(e).__name__.endswith("Event") for e in events)
    facts = iter(e.type_ for e in events)
    assert all(
        fact in facts
        for fact in [
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
    )
    by_type = {e.type_: e for e in events}
    placed, released = by_type["order.placed"], by_type["funds.released"]
    assert isinstance(placed, m.OrderPlacedEvent)
    assert placed.data.items[0].unit_price == 1250
    assert isinstance(released, m.FundsReleasedEvent)
    assert (released.data.gross, released.data.fee, released.data.net) == (
        total,
        fee,
        total - fee,
    )
    assert isinstance(released.actor.role, m.Role)
    assert isinstance(by_type["receipt.confirmed"], m.ReceiptConfirmedEvent)
    assert by_type["receipt.confirmed"].actor.role is m.Role.BUYER


def test_a_dispute_settled_by_a_mediator_with_a_partial_refund(story: Story) -> None:
    m = story.m
    order = story.shipped()
    opened = story.command(
        "open_dispute",
        "buyer",
        order.id,
        body=m.OpenDisputeRequest(
            reason=m.DisputeReason.QUALITY,
            requested_refund=300_000,
            description="30% of the panels flicker",
        ),
    )
    assert opened.status is m.OrderStatus.DISPUTED
    assert opened.dispute.status is m.DisputeStatus.OPEN
    assert opened.dispute.reason is m.DisputeReason.QUALITY
    offer = m.OfferRequest(refund_amount=100_000, note="a third of it")
    countered = story.command("make_dispute_offer", "supplier", order.id, body=offer)
    assert countered.dispute.open_offer.by is m.Side.SUPPLIER
    escalated = story.command("escalate_dispute", "buyer", order.id)  # no body
    assert escalated.dispute.status is m.DisputeStatus.ESCALATED
    resolve = m.ResolveRequest(refund_amount=150_000, note="half the claim")
    settled = story.command("resolve_dispute", "mediator", order.id, body=resolve)
    assert settled.status is m.OrderStatus.SETTLED
    assert settled.dispute.resolution.by is m.Role.MEDIATOR
    assert (settled.amounts.refunded, settled.amounts.released) == (150_000, 510_000)

    events = {type(e).__name__: e for e in story.events(order.id)}
    resolved = events["DisputeResolvedEvent"]
    assert (resolved.data.refund_amount, resolved.data.release_amount) == (150_000, 510_000)
    assert resolved.data.by is m.Role.MEDIATOR
    assert events["DisputeOpenedEvent"].data.reason is m.DisputeReason.QUALITY
    assert events["RefundIssuedEvent"].data.amount == 150_000


def test_an_offer_accepted_a_dispute_withdrawn_and_a_cancellation_without_bodies(
    story: Story,
) -> None:
    m = story.m
    dispute = m.OpenDisputeRequest(reason=m.DisputeReason.LATE_SHIPMENT, requested_refund=60_000)
    accepted = story.shipped()
    story.command("open_dispute", "buyer", accepted.id, body=dispute)
    settled = story.command("accept_dispute_offer", "supplier", accepted.id)  # no body
    assert settled.status is m.OrderStatus.SETTLED
    assert settled.amounts.refunded == 60_000

    withdrawn = story.shipped()
    story.command("open_dispute", "buyer", withdrawn.id, body=dispute)
    back = story.command("withdraw_dispute", "buyer", withdrawn.id)  # no body
    assert back.status is m.OrderStatus.SHIPPED
    assert back.dispute.status is m.DisputeStatus.WITHDRAWN

    placed = story.place()
    cancelled = story.command("cancel_order", "buyer", placed.id)  # no body
    assert cancelled.status is m.OrderStatus.CANCELLED
    assert cancelled.allowed_actions == [] or m.OrderAction.MESSAGE in cancelled.allowed_actions

    # A refusal is a typed Problem with its stable code, not None.
    again = story.g.api("orders", "cancel_order").sync(placed.id, client=story.clients["buyer"])
    assert isinstance(again, m.Problem), again
    assert (again.status, again.code) == (409, "cancellation_not_allowed")


def test_a_body_less_command_takes_no_body_an_empty_body_or_an_empty_object(
    story: Story,
) -> None:
    """What the document promises a client that writes its own requests."""
    orders = [story.place() for _ in range(3)]
    headers = {"Authorization": f"Bearer {story.clients['supplier'].token}"}
    sent: list[dict[str, Any]] = [
        {},  # no body, no Content-Type
        {"content": b"", "headers": {"Content-Type": "application/json"}},
        {"json": {}},
    ]
    with httpx.Client(base_url=story.base_url, timeout=10) as http:
        for order, how in zip(orders, sent, strict=True):
            extra = how.pop("headers", {})
            answer = http.post(f"/v1/orders/{order.id}/accept", headers={**headers, **extra}, **how)
            assert answer.status_code == 200, (how, answer.text)
            assert answer.json()["status"] == "accepted"
        # The body is still checked when there is one.
        refused = http.post(
            f"/v1/orders/{orders[0].id}/confirm-receipt", headers=headers, json={"note": "x"}
        )
        assert refused.status_code == 422, refused.text
        assert refused.headers["Content-Type"].startswith("application/problem+json")
