"""Webhooks against a real local receiver, on a fresh database of each backend per test.

A fresh database keeps every test's endpoints, deliveries and sandbox clock to itself (the
dispatcher's checkpoint and the clock are per database). The worker runs in process
(``Hooks.worker()``) with a short retry schedule; the receiver runs in a thread.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from escrow_core.application.runtime import Runtime
from escrow_core.store import Store
from escrow_worker.worker import Worker
from support.api import Api, auth, order_terms, running_api, test_settings
from support.receiver import Receiver

FAST: dict[str, Any] = {
    "webhook_allow_private": True,
    "webhook_retry_schedule": (0, 0.2, 0.3, 0.4),
    "webhook_lease_seconds": 10,
    "webhook_timeout_seconds": 2,
    "webhook_connect_timeout_seconds": 1,
    "worker_poll_seconds": 0.05,
}


@dataclass
class Cast:
    """A buyer, a trade-assured supplier and a payments key on one API."""

    api: Api
    buyer: dict[str, Any]
    buyer_auth: dict[str, str]
    supplier: dict[str, Any]
    supplier_auth: dict[str, str]
    payments: dict[str, str]

    @classmethod
    async def new(cls, api: Api, *, buyer_by: dict[str, str] | None = None) -> "Cast":
        buyer = await api.register("buyer", by=buyer_by)
        buyer_auth = auth(await api.party_key(buyer["id"], by=buyer_by))
        supplier, supplier_auth = await api.party_with_key("supplier", trade_assurance=True)
        payments = auth(await api.role_key("payments"))
        return cls(api, buyer, buyer_auth, supplier, supplier_auth, payments)

    async def post(self, path: str, headers: dict[str, str], body: Any = None) -> dict[str, Any]:
        response = await self.api.client.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def place(self, **terms: Any) -> str:
        order = await self.post(
            "/v1/orders", self.buyer_auth, order_terms(self.supplier["id"], **terms)
        )
        return str(order["id"])

    async def to(self, order_id: str, status: str) -> dict[str, Any]:
        """Drive the order forward to ``status`` (accepted, held, shipped, delivered, completed)."""
        steps = [
            ("accepted", "accept", self.supplier_auth, None),
            ("partially_paid", "payments", self.payments, _pay(order_id, 301_500, "p1")),
            ("held", "payments", self.payments, _pay(order_id, 703_500, "p2")),
            ("shipped", "ship", self.supplier_auth, {"carrier": "DHL", "tracking_number": "1"}),
            ("delivered", "deliver", self.supplier_auth, None),
            ("completed", "confirm-receipt", self.buyer_auth, None),
        ]
        order: dict[str, Any] = {}
        for reached, path, headers, body in steps:
            order = await self.post(f"/v1/orders/{order_id}/{path}", headers, body)
            assert order["status"] == reached
            if reached == status:
                return order
        raise AssertionError(f"no step reaches {status}")


def _pay(order_id: str, amount: int, ref: str) -> dict[str, Any]:
    return {"amount": amount, "method": "card", "provider_ref": f"{order_id}-{ref}"}


@dataclass
class Hooks:
    api: Api
    receiver: Receiver
    workers: list[Worker] = field(default_factory=list)

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.api.app.state.runtime
        return runtime

    @property
    def store(self) -> Store:
        """The API's store (the worker shares it)."""
        return self.runtime.store

    async def endpoint(
        self,
        path: str = "/hook",
        *,
        by: dict[str, str] | None = None,
        event_types: list[str] | None = None,
    ) -> dict[str, Any]:
        """Register the receiver's ``path`` as an endpoint; the receiver learns its secret."""
        body: dict[str, Any] = {"url": self.receiver.url(path)}
        if event_types is not None:
            body["event_types"] = event_types
        response = await self.api.client.post(
            "/v1/webhook-endpoints", json=body, headers=by or self.api.admin
        )
        assert response.status_code == 201, response.text
        created = dict(response.json())
        self.receiver.secrets[path] = [created["secret"]]
        return created

    async def deliveries(self, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
        response = await self.api.client.get(
            f"/v1/webhook-endpoints/{endpoint_id}/deliveries",
            params={"limit": 100, **params},
            headers=self.api.admin,
        )
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    async def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        response = await self.api.client.get(
            f"/v1/webhook-endpoints/{endpoint_id}", headers=self.api.admin
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    @asynccontextmanager
    async def worker(self, **kwargs: Any) -> AsyncIterator[Worker]:
        """A worker in this process until the block ends."""
        worker = Worker(self.runtime, **kwargs)
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await task


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@asynccontextmanager
async def hooks_on(store: Store, receiver: Receiver, **overrides: Any) -> AsyncIterator[Hooks]:
    settings = test_settings(store.url, **{**FAST, **overrides})
    async with running_api(settings) as api:
        yield Hooks(api, receiver)


@pytest.fixture
async def hooks(fresh_store: Store, receiver: Receiver) -> AsyncIterator[Hooks]:
    async with hooks_on(fresh_store, receiver) as running:
        yield running
