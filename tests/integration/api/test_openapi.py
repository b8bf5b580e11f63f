"""The committed OpenAPI document: no drift from the app, and the qualities clients rely on.

Generated clients name their methods after operation ids, map errors by status, and read the
examples; so every operation has a stable snake_case id, every error it can answer is declared
as a problem+json (and ``default`` is one too), every request body has an example that the
body's own schema accepts, and the bearer scheme covers everything but the public probes.

Generators type what the document closes: every status, kind, role, deadline, action, reason
and event type is an enum; an event's ``data`` has one schema per type, read from the domain's
event classes; the webhooks are described; an optional body is a requestBody that is not
required; integer bounds are integers.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from escrow_api import openapi_events
from escrow_api.app import create_app
from escrow_api.openapi import PUBLIC_PATHS
from escrow_api.openapi_export import render, settings
from escrow_core.domain.events import EVENT_ADAPTER, EVENT_TYPES
from escrow_core.domain.order.actions import ACTION_NAMES

COMMITTED = Path(__file__).resolve().parents[3] / "openapi" / "openapi.json"
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
OPERATION_ID = re.compile(r"^[a-z]+(_[a-z]+)*$")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    committed: dict[str, Any] = json.loads(COMMITTED.read_text())
    return committed


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_the_committed_document_is_what_the_app_generates() -> None:
    assert COMMITTED.read_text() == render(), (
        "openapi/openapi.json is out of date with the app: run `make openapi` and commit it"
    )


async def test_the_app_serves_the_committed_document(document: dict[str, Any]) -> None:
    app = create_app(settings())
    transport = httpx.ASGITransport(app=app)  # /openapi.json needs no database: no lifespan
    async with httpx.AsyncClient(transport=transport, base_url="http://escrow.test") as client:
        served = await client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == document


def test_every_operation_has_a_stable_snake_case_id(document: dict[str, Any]) -> None:
    ids = [operation.get("operationId", "") for _, _, operation in operations(document)]
    assert all(OPERATION_ID.match(i) for i in ids), [i for i in ids if not OPERATION_ID.match(i)]
    assert len(ids) == len(set(ids))
    # A few pinned: renaming one breaks every generated client.
    assert {"place_order", "record_payment", "confirm_receipt", "resolve_dispute"} <= set(ids)


def test_bearer_auth_covers_everything_but_the_public_probes(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for path, method, operation in operations(document):
        if path in PUBLIC_PATHS:
            assert "security" not in operation, (method, path)
            assert "401" not in operation["responses"], (method, path)
        else:
            assert operation["security"] == [{"bearerAuth": []}], (method, path)
            assert {"401", "403", "422"} <= set(operation["responses"]), (method, path)
            # The key travels in the scheme, not as a parameter of its own.
            names = {p["name"].lower() for p in operation.get("parameters", [])}
            assert "authorization" not in names, (method, path)


def test_every_error_is_a_declared_problem(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        responses = operation["responses"]
        assert "413" in responses, (method, path)  # the edge's body limit applies everywhere
        if method in ("post", "put", "patch"):
            assert "415" in responses, (method, path)
        if "requestBody" in operation:
            assert "400" in responses, (method, path)
        assert "default" in responses, (method, path)  # any other status, e.g. a 500
        if path not in PUBLIC_PATHS:
            assert {"429", "503"} <= set(responses), (method, path)
        for status, response in responses.items():
            headers = response.get("headers", {})
            assert "X-Request-Id" in headers, (method, path, status)
            if status == "default" or int(status) >= 400:
                assert response["content"] == PROBLEM, (method, path, status)
                assert response["description"], (method, path, status)


def test_every_success_declares_its_body(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        successes = {
            s: r for s, r in operation["responses"].items() if s != "default" and int(s) < 300
        }
        assert successes, (method, path)
        for status, response in successes.items():
            for media, content in response.get("content", {}).items():
                assert content.get("schema"), (method, path, status, media)
                if media == "application/json":
                    assert "$ref" in content["schema"], (method, path, status)


def test_order_responses_declare_their_etag(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") == "#/components/schemas/Order":
                assert "ETag" in response["headers"], (method, path, status)


def test_optional_parameters_are_never_null(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            text = json.dumps(parameter["schema"])
            assert '"null"' not in text, (method, path, parameter["name"])


def _body_schema(operation: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return schema


def test_every_request_body_has_examples_its_schema_accepts(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    for path, method, operation in operations(document):
        if "requestBody" not in operation:
            continue
        ref = _body_schema(operation)["$ref"]
        body = components[ref.rsplit("/", 1)[1]]
        if not body.get("properties"):
            continue  # an empty body ({} or none) needs no example
        examples = body.get("examples")
        assert examples, f"{method} {path}: {ref} has no examples"
        validator = jsonschema_rs.Draft202012Validator(
            {"$ref": ref, "components": document["components"]}
        )
        for example in examples:
            errors = [e.message for e in validator.iter_errors(example)]
            assert not errors, (method, path, example, errors)


def test_the_document_states_the_conventions(document: dict[str, Any]) -> None:
    description = document["info"]["description"]
    for convention in ("minor unit", "Idempotency-Key", "If-Match", "problem+json", "cursor"):
        assert convention in description


def test_an_optional_body_is_a_request_body_that_is_not_required(
    document: dict[str, Any],
) -> None:
    optional = set()
    for path, method, operation in operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        schema = body["content"]["application/json"]["schema"]
        assert set(schema) == {"$ref"}, (method, path, schema)  # never anyOf [X, null]
        if not body["required"]:
            optional.add(operation["operationId"])
    body_less = {"accept_order", "confirm_receipt", "escalate_dispute", "withdraw_dispute"}
    assert body_less | {"accept_dispute_offer", "deliver_order", "cancel_order"} <= optional
    assert {"place_order", "record_payment", "ship_order", "resolve_dispute"}.isdisjoint(optional)


def _walk(node: Any, where: str = "") -> Iterator[tuple[str, str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, key, value
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{where}/{index}")


def test_integer_bounds_are_integers(document: dict[str, Any]) -> None:
    text = COMMITTED.read_text()
    bounds = [
        (where, key, value)
        for where, key, value in _walk(json.loads(text))
        if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    ]
    assert bounds
    assert [b for b in bounds if not isinstance(b[2], int)] == []
    assert '"maximum": 9223372036854775807' in text  # a log position: exact, not 9.2e18


def _enum(document: dict[str, Any], name: str) -> list[str]:
    values: list[str] = document["components"]["schemas"][name]["enum"]
    return values


def _ref(document: dict[str, Any], model: str, field: str) -> str:
    schema = document["components"]["schemas"][model]["properties"][field]
    variants = [v for v in schema.get("anyOf", [schema]) if v != {"type": "null"}]
    ref: str = variants[0].get("items", variants[0])["$ref"]
    return ref.rsplit("/", 1)[1]


def test_every_closed_set_is_a_named_enum(document: dict[str, Any]) -> None:
    closed = {
        ("Order", "status"): "OrderStatus",
        ("Order", "incoterm"): "Incoterm",
        ("Order", "allowed_actions"): "OrderAction",
        ("DeadlineOut", "kind"): "DeadlineKind",
        ("DisputeOut", "status"): "DisputeStatus",
        ("DisputeOut", "reason"): "DisputeReason",
        ("OfferOut", "by"): "Side",
        ("ResolutionOut", "by"): "Role",
        ("ActorOut", "role"): "Role",
        ("Party", "kind"): "PartyKind",
        ("ApiKey", "role"): "KeyRole",
        ("DisputeSummary", "reason"): "DisputeReason",
        ("WebhookDelivery", "event_type"): "EventType",
        ("WebhookEndpoint", "event_types"): "EventSubscription",
        ("CreateWebhookEndpointRequest", "event_types"): "EventSubscription",
        ("UpdateWebhookEndpointRequest", "event_types"): "EventSubscription",
    }
    for (model, field), enum in closed.items():
        assert _ref(document, model, field) == enum, (model, field)
        assert _enum(document, enum), enum
    assert _enum(document, "OrderAction") == list(ACTION_NAMES)
    assert {"accept", "confirm_receipt", "resolve", "withdraw"} <= set(ACTION_NAMES)
    types = _enum(document, "EventType")
    assert types == [*EVENT_TYPES, "webhook_endpoint.disabled", "webhook.test"]
    assert _enum(document, "EventSubscription") == ["*", *types[:-1]]  # no webhook.test
    assert "shipping" not in _enum(document, "OrderStatus")


def test_event_data_has_one_schema_per_event_type(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    event = schemas["Event"]
    mapping = event["discriminator"]["mapping"]
    assert event["discriminator"]["propertyName"] == "type"
    assert set(mapping) == set(_enum(document, "EventType"))
    assert {v["$ref"] for v in event["oneOf"]} == set(mapping.values())
    for event_type, ref in mapping.items():
        variant = schemas[ref.rsplit("/", 1)[1]]
        assert variant["properties"]["type"]["const"] == event_type
        data = schemas[variant["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
        assert data["type"] == "object"
        assert {"at", "type"}.isdisjoint(data["properties"]), event_type
    released = schemas["FundsReleasedData"]
    assert {"gross", "fee", "net"} <= set(released["required"])
    assert {f: released["properties"][f]["type"] for f in ("gross", "fee", "net")} == {
        "gross": "integer",
        "fee": "integer",
        "net": "integer",
    }


def test_the_event_schemas_accept_what_the_domain_records(document: dict[str, Any]) -> None:
    """The data of an event as the API shows it (stored JSON without ``at``) validates
    against its type's schema, closed to unknown fields."""
    order_placed = {
        "at": "2027-01-02T03:04:05Z",
        "buyer_id": "pty_b",
        "supplier_id": "pty_s",
        "currency": "USD",
        "currency_exponent": 2,
        "items": [{"sku": "A", "description": "", "quantity": 2, "unit_price": 5}],
        "shipping_fee": 0,
        "total": 10,
        "incoterm": "FOB",
        "quality_terms": "q",
        "ship_by": "2027-02-01",
        "inspection_days": 10,
        "payment_schedule": [{"name": "all", "amount": 10}],
        "remarks": "",
        "fee_bps": 0,
        "policy": {},
    }
    recorded = [
        ("order.placed", order_placed),
        ("funds.released", {"at": "2027-01-02T03:04:05Z", "gross": 10, "fee": 1, "net": 9}),
        (
            "refund.issued",
            {
                "at": "2027-01-02T03:04:05Z",
                "amount": 3,
                "reason": "dispute",
                "refunds": [{"id": "rf_1", "payment_provider_ref": "p1", "amount": 3}],
            },
        ),
        ("payout.paid", {"at": "2027-01-02T03:04:05Z", "payout_id": "po_1", "provider_ref": "t"}),
        (
            "dispute.resolved",
            {
                "at": "2027-01-02T03:04:05Z",
                "refund_amount": 3,
                "release_amount": 7,
                "by": "mediator",
            },
        ),
    ]
    for event_type, data in recorded:
        stored = EVENT_ADAPTER.validate_python({**data, "type": event_type}).model_dump(
            mode="json", exclude={"type", "at"}
        )
        validator = jsonschema_rs.Draft202012Validator(
            {"$ref": "#/components/schemas/Event", "components": document["components"]}
        )
        event = {
            "id": "evt_0",
            "type": event_type,
            "order_id": "ord_1",
            "sequence": 1,
            "position": 1,
            "created_at": "2027-01-02T03:04:05Z",
            "data": stored,
            "actor": {"role": "buyer", "party_id": None, "on_behalf_of": None},
            "correlation_id": None,
            "causation_id": None,
        }
        assert [e.message for e in validator.iter_errors(event)] == [], event_type
        wrong = {**event, "data": {**stored, "surprise": 1}}
        assert list(validator.iter_errors(wrong)), event_type


def test_the_webhooks_are_described(document: dict[str, Any]) -> None:
    webhooks = document["webhooks"]
    assert set(webhooks) == set(_enum(document, "EventType"))
    parameters = document["components"]["parameters"]
    for event_type, item in webhooks.items():
        post = item["post"]
        headers = {parameters[p["$ref"].rsplit("/", 1)[1]]["name"] for p in post["parameters"]}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}, event_type
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        body = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert body["properties"]["type"]["const"] == event_type
        assert "actor" not in body["properties"]
        assert "2XX" in post["responses"]


def test_the_document_names_servers_and_its_version(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    assert document["servers"]
    assert all(s["url"] for s in document["servers"])
    assert document["info"]["version"] == "1.2.0"


def test_a_schema_an_event_uses_never_replaces_another_of_the_same_name() -> None:
    """A model of the domain's events named like one of the API's is renamed, not merged."""
    schemas: dict[str, Any] = {"LineItem": {"type": "string", "title": "LineItem"}}
    datas = openapi_events._data_schemas(openapi_events.event_classes(), schemas)
    assert schemas["LineItem"] == {"type": "string", "title": "LineItem"}
    assert schemas["LineItemInEvent"]["type"] == "object"
    items = datas["OrderPlaced"]["properties"]["items"]["items"]
    assert items == {"$ref": "#/components/schemas/LineItemInEvent"}
