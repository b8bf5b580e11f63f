"""A cast of callers around one agent-managed trade, and orders driven into any state.

The agent registers the buyer and the supplier of the trade (the admin turns on the
supplier's Trade Assurance); an unrelated buyer and supplier, the party-less roles, a revoked
key of the trade's buyer and the agent naming a party it does not manage complete the cast.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from support.api import Api, auth, order_terms, running_api
from support.api import test_settings as settings_for

Headers = dict[str, str]

# The order's route-named states, each reached from the one before it.
STEPS = (
    "placed",
    "accepted",
    "partially_paid",
    "held",
    "shipped",
    "delivered",
)
DEPOSIT, BALANCE = 301_500, 703_500
TOTAL = DEPOSIT + BALANCE


@asynccontextmanager
async def fast_dispute_api(database_url: str, **settings: Any) -> AsyncIterator[Api]:
    """The app with no negotiation period, so a dispute can be escalated at once."""
    configured = settings_for(database_url, negotiation_days=0, **settings)
    async with running_api(configured) as client:
        yield client


@dataclass
class World:
    api: Api
    agent_id: str
    buyer_id: str
    supplier_id: str
    other_buyer_id: str
    other_supplier_id: str
    callers: dict[str, Headers | None]  # role name -> headers (None: anonymous)

    @property
    def admin(self) -> Headers:
        return self.api.admin

    def as_(self, role: str) -> Headers:
        return self.callers[role] or {}

    async def call(
        self, method: str, path: str, headers: Headers, body: Any = None, **kw: Any
    ) -> Any:
        return await self.api.client.request(method, path, json=body, headers=headers, **kw)

    async def step(
        self, order_id: str, path: str, role: str, body: Any = None, expect: int = 200
    ) -> dict[str, Any]:
        response = await self.call("POST", f"/v1/orders/{order_id}/{path}", self.as_(role), body)
        assert response.status_code == expect, (path, role, response.text)
        return dict(response.json())

    async def place(
        self, buyer: str = "buyer", supplier_id: str | None = None, **terms: Any
    ) -> str:
        body = order_terms(supplier_id or self.supplier_id, **terms)
        response = await self.call("POST", "/v1/orders", self.as_(buyer), body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def order(self, state: str) -> str:
        """A new order of the trade (buyer and supplier) in ``state``.

        States: placed, accepted, partially_paid, held, shipped, delivered, disputed (the
        buyer's opening offer is open), countered (the supplier's offer is open), escalated,
        completed, cancelled, retained (confirmed with a 10% retention for 30 days).
        """
        retention = {"percent": 10, "days": 30} if state == "retained" else None
        order_id = await self.place(**({"retention": retention} if retention else {}))
        if state == "placed":
            return order_id
        if state == "cancelled":
            await self.step(order_id, "cancel", "buyer", {"reason": "changed plans"})
            return order_id
        await self.step(order_id, "accept", "supplier")
        if state == "accepted":
            return order_id
        await self.pay(order_id, DEPOSIT, "dep")
        if state == "partially_paid":
            return order_id
        await self.pay(order_id, BALANCE, "bal")
        if state == "held":
            return order_id
        await self.step(order_id, "ship", "supplier", {"carrier": "DHL", "tracking_number": "1Z"})
        if state == "shipped":
            return order_id
        if state in ("delivered", "completed", "retained"):
            await self.step(order_id, "deliver", "supplier")
            if state in ("completed", "retained"):
                await self.step(order_id, "confirm-receipt", "buyer")
            return order_id
        await self.step(
            order_id, "dispute", "buyer", {"reason": "quality", "requested_refund": 500_000}
        )
        if state == "disputed":
            return order_id
        if state == "countered":
            await self.step(order_id, "dispute/offers", "supplier", {"refund_amount": 100_000})
            return order_id
        await self.step(order_id, "dispute/escalate", "buyer")
        assert state == "escalated", state
        return order_id

    async def pay(self, order_id: str, amount: int, ref: str) -> dict[str, Any]:
        body = {"amount": amount, "method": "bank_transfer", "provider_ref": ref}
        return await self.step(order_id, "payments", "payments", body)


async def build_world(api: Api) -> World:
    admin = api.admin
    agent, agent_auth = await api.party_with_key("agent")
    buyer = await api.register("buyer", by=agent_auth)
    supplier = await api.register("supplier", by=agent_auth)
    enabled = await api.client.patch(
        f"/v1/parties/{supplier['id']}", json={"trade_assurance": True}, headers=admin
    )
    assert enabled.status_code == 200, enabled.text
    buyer_key = await api.party_key(buyer["id"], by=agent_auth)
    supplier_key = await api.party_key(supplier["id"], by=agent_auth)
    other_buyer, other_buyer_auth = await api.party_with_key("buyer")
    other_supplier, other_supplier_auth = await api.party_with_key("supplier", trade_assurance=True)
    revoked = await api.client.post(f"/v1/parties/{buyer['id']}/api-keys", headers=admin)
    assert revoked.status_code == 201, revoked.text
    gone = await api.client.delete(f"/v1/api-keys/{revoked.json()['id']}", headers=admin)
    assert gone.status_code == 200, gone.text
    agent_secret = agent_auth["Authorization"].removeprefix("Bearer ")
    callers: dict[str, Headers | None] = {
        "admin": admin,
        "mediator": auth(await api.role_key("mediator")),
        "payments": auth(await api.role_key("payments")),
        "agent": agent_auth,
        "agent_for_buyer": auth(agent_secret, buyer["id"]),
        "agent_for_supplier": auth(agent_secret, supplier["id"]),
        "buyer": auth(buyer_key),
        "supplier": auth(supplier_key),
        "other_buyer": other_buyer_auth,
        "other_supplier": other_supplier_auth,
        "anonymous": None,
        "revoked": auth(revoked.json()["key"]),
        "agent_unmanaged": auth(agent_secret, other_buyer["id"]),
    }
    return World(
        api=api,
        agent_id=agent["id"],
        buyer_id=buyer["id"],
        supplier_id=supplier["id"],
        other_buyer_id=other_buyer["id"],
        other_supplier_id=other_supplier["id"],
        callers=callers,
    )
