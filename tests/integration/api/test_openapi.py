"""The committed OpenAPI document: no drift from the app, and the qualities clients rely on.

Generated clients name their methods after operation ids, map errors by status, and read the
examples; so every operation has a stable snake_case id, every error it can answer is declared
as a problem+json, every request body has an example that the body's own schema accepts, and
the bearer scheme covers everything but the public probes.
"""

import json
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from escrow_api.app import create_app
from escrow_api.openapi import PUBLIC_PATHS
from escrow_api.openapi_export import render, settings

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
        for status, response in responses.items():
            headers = response.get("headers", {})
            assert "X-Request-Id" in headers, (method, path, status)
            if int(status) >= 400:
                assert response["content"] == PROBLEM, (method, path, status)
                assert response["description"], (method, path, status)


def test_every_success_declares_its_body(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        successes = {s: r for s, r in operation["responses"].items() if int(s) < 300}
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
    variants = [v for v in schema.get("anyOf", [schema]) if v != {"type": "null"}]
    assert len(variants) == 1, schema
    return variants[0]


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
