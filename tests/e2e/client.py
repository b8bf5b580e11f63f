"""A thin HTTP client for the stories: each call names who makes it and what it must answer,
and every JSON answer is checked against the committed OpenAPI document, made strict (no
property the document does not declare)."""

import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


@cache
def _components() -> dict[str, Any]:
    components: dict[str, Any] = json.loads(DOCUMENT.read_text())["components"]

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(components["schemas"])
    return components


def conforms(body: Any, schema: str) -> None:
    """``body`` is exactly a ``schema`` of the document (``#/components/schemas/<schema>``)."""
    validator = jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": _components()}
    )
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, (schema, errors, body)


@dataclass
class Key:
    """A caller: a secret, and the party an agent acts for."""

    secret: str
    on_behalf_of: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.secret}"}
        if self.on_behalf_of:
            headers["Escrow-On-Behalf-Of"] = self.on_behalf_of
        return headers

    def acting_for(self, party_id: str) -> "Key":
        return Key(self.secret, party_id)


@dataclass
class Client:
    http: httpx.Client
    admin_secret: str

    @property
    def admin(self) -> Key:
        return Key(self.admin_secret)

    def call(
        self,
        method: str,
        path: str,
        key: Key,
        body: Any = None,
        *,
        expect: int = 200,
        schema: str | None = None,
        request_id: str | None = None,
    ) -> Any:
        headers = key.headers()
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        if request_id:
            headers["X-Request-Id"] = request_id
        response = self.http.request(method, path, json=body, headers=headers)
        assert response.status_code == expect, (method, path, response.text)
        assert response.headers["x-request-id"] == (request_id or response.headers["x-request-id"])
        answer = response.json()
        if schema:
            conforms(answer, schema)
        if schema == "Order":
            assert response.headers["etag"] == f'"{answer["version"]}"'
        return answer

    def register(self, kind: str, *, by: Key | None = None, trade_assurance: bool = False) -> str:
        body = {"kind": kind, "name": f"{kind} {uuid.uuid4().hex[:6]}"}
        if trade_assurance:
            body["trade_assurance"] = True
        party = self.call("POST", "/v1/parties", by or self.admin, body, expect=201, schema="Party")
        return str(party["id"])

    def party_key(self, party_id: str, *, by: Key | None = None) -> Key:
        key = self.call(
            "POST",
            f"/v1/parties/{party_id}/api-keys",
            by or self.admin,
            expect=201,
            schema="ApiKey",
        )
        return Key(key["key"])

    def role_key(self, role: str) -> Key:
        key = self.call(
            "POST", "/v1/api-keys", self.admin, {"role": role}, expect=201, schema="ApiKey"
        )
        assert key["role"] == role
        return Key(key["key"])

    def order(self, order_id: str, key: Key) -> dict[str, Any]:
        return dict(self.call("GET", f"/v1/orders/{order_id}", key, schema="Order"))

    def step(
        self, order_id: str, action: str, key: Key, body: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        """An order command; answers the order after it."""
        path = f"/v1/orders/{order_id}/{action}"
        return dict(self.call("POST", path, key, body, schema="Order", **kwargs))

    def balances(self, party_id: str, key: Key) -> dict[str, dict[str, int]]:
        answer = self.call("GET", f"/v1/parties/{party_id}/balances", key, schema="Balances")
        return {
            b["currency"]: {k: b[k] for k in ("held", "released", "refunded", "fees")}
            for b in answer["balances"]
        }

    def timeline(self, order_id: str, key: Key) -> list[dict[str, Any]]:
        page = self.call("GET", f"/v1/orders/{order_id}/events?limit=100", key, schema="EventPage")
        assert page["has_more"] is False
        return list(page["data"])
