"""The API in process (ASGI) on a migrated test database, and a client that knows its keys."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from escrow_api.app import Background, create_app
from escrow_core.settings import Settings

ADMIN_KEY = "esk_test_admin_bootstrap_key_0123456789"


def auth(key: str, on_behalf_of: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if on_behalf_of:
        headers["Escrow-On-Behalf-Of"] = on_behalf_of
    return headers


def order_terms(supplier_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid PlaceOrder body: 10 x 1,000.00 USD + 50.00 shipping, deposit 30% / balance 70%."""
    body: dict[str, Any] = {
        "supplier_id": supplier_id,
        "currency": "USD",
        "items": [
            {"sku": "LED-40W", "description": "LED panel", "quantity": 10, "unit_price": 100_000}
        ],
        "shipping_fee": 5_000,
        "incoterm": "FOB",
        "quality_terms": "IP65, AQL 2.5",
        "ship_by": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
        "payment_schedule": [
            {"name": "deposit", "amount": 301_500},
            {"name": "balance", "amount": 703_500},
        ],
    }
    body.update(overrides)
    return body


@dataclass
class Api:
    """A client for the app plus the keys of a small cast, made on first use."""

    app: FastAPI
    client: httpx.AsyncClient
    admin: dict[str, str] = field(default_factory=lambda: auth(ADMIN_KEY))

    async def register(
        self, kind: str, *, trade_assurance: bool = False, by: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = {"kind": kind, "name": f"{kind} co.", "trade_assurance": trade_assurance}
        response = await self.client.post("/v1/parties", json=body, headers=by or self.admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def party_key(self, party_id: str, *, by: dict[str, str] | None = None) -> str:
        response = await self.client.post(
            f"/v1/parties/{party_id}/api-keys", headers=by or self.admin
        )
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    async def role_key(self, role: str) -> str:
        response = await self.client.post("/v1/api-keys", json={"role": role}, headers=self.admin)
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    async def party_with_key(
        self, kind: str, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, str]]:
        party = await self.register(kind, **kwargs)
        return party, auth(await self.party_key(party["id"]))


def test_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_key": ADMIN_KEY,
        "embedded_worker": False,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_api(
    settings: Settings, background: Background | None = None
) -> AsyncIterator[Api]:
    """The app with its lifespan run (and ``background`` in it, e.g. the embedded worker)."""
    app = create_app(settings, background)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://escrow.test") as client:
            yield Api(app, client)


def ship_by_in(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()
