"""The OpenAPI document, completed where FastAPI's generation falls short of what is served.

- the bearer scheme is declared and applied to every operation but the public ones;
- every error is ``application/problem+json`` with the Problem schema (FastAPI files a
  declared model under ``application/json``);
- errors that the edge (middleware, the auth dependency, the rate limit) can answer on any
  operation are declared on every operation they apply to, so no route can forget them;
- the response headers every client relies on are declared: ``X-Request-Id`` everywhere,
  ``ETag`` on orders, ``Location`` on creations, ``Idempotent-Replayed`` on replayable POSTs,
  ``Retry-After`` on 503 database_unavailable;
- every operation has a ``default`` response, a Problem, so a generated client parses any
  status it was not told of (a 500 internal_error) instead of returning nothing;
- the events are typed one schema per event type, and the webhooks are described
  (escrow_api.openapi_events); enums, optional bodies and integer bounds are made fit for
  generators (escrow_api.openapi_generators).

Operation ids are set on the routes themselves (snake_case, stable: generated clients name
their methods after them).
"""

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from escrow_api import openapi_generators as generators
from escrow_api.openapi_events import add_events
from escrow_api.responses import DATABASE_UNAVAILABLE, PROBLEM_REF, error_response

PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics")
BODY_METHODS = ("post", "put", "patch")
ORDER_REF = "#/components/schemas/Order"
SERVERS = [
    {
        "url": "http://127.0.0.1:8000",
        "description": "`make run` on this machine; point a client at your deployment's URL.",
    }
]
DEFAULT_RESPONSE = (
    "Any other error, e.g. 500 internal_error: a problem+json like every error, with its code."
)

DESCRIPTION = """\
Trade-Assurance-style escrow for cross-border B2B orders.

- Amounts are integers in the order currency's minor unit (USD 1,250.00 is 125000).
- Dates and date-times are ISO 8601 (a date-time with its UTC offset) in the years 2000-2999;
  anything outside is a 422 `validation_error`.
- Authenticate with `Authorization: Bearer <key>`; an agent acts for a party it registered
  by naming it in `Escrow-On-Behalf-Of`.
- Every state-changing POST takes an `Idempotency-Key`: the same key and body replay the first
  response with `Idempotent-Replayed: true`.
- Order responses carry `ETag: "<version>"`; order commands honour `If-Match` (412 on mismatch).
- Lists take `limit` (1-100) and an opaque `cursor`, and answer
  `{"data": [...], "next_cursor": ..., "has_more": ...}`.
- Errors are RFC 9457 `application/problem+json` with a stable `code` (and `errors[]` for
  field problems).
- While the database is away (down or restarting) answers are 503 `database_unavailable` with
  `Retry-After`; nothing needs restarting once it is back.
"""

HEADERS: dict[str, dict[str, Any]] = {
    "RequestId": {
        "description": "The request's id: the X-Request-Id sent, or one made by the server.",
        "required": True,
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": 'The order\'s version as an entity tag, e.g. "7"; send it as If-Match.',
        "required": True,
        "schema": {"type": "string", "pattern": r'^"[0-9]+"$'},
    },
    "Location": {
        "description": "Where the created resource can be read.",
        "required": True,
        "schema": {"type": "string"},
    },
    "IdempotentReplayed": {
        "description": "true when this is the stored response of an earlier request with the "
        "same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "RetryAfter": {
        "description": "Seconds to wait before trying again (a whole number, at least 1).",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "WWWAuthenticate": {
        "description": "The scheme to authenticate with: Bearer.",
        "required": True,
        "schema": {"type": "string"},
    },
}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=DESCRIPTION,
            routes=app.routes,
            servers=SERVERS,
        )
        complete(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any]) -> None:
    """Fill in what FastAPI leaves out (see the module docstring)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: Authorization: Bearer esk_...",
    }
    components["headers"] = HEADERS
    pages = {
        name: f"{match.group(1)}Page"
        for name in components["schemas"]
        if (match := re.fullmatch(r"Page_(\w+)_", name))  # Page[Order] -> OrderPage
    }
    generators.rename(schema, {**pages, **generators.RENAMES})
    generators.add_enums(schema)
    add_events(schema)
    generators.optional_bodies(schema)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            _complete_operation(path, method, operation)
    exact = generators.integer_bounds(schema)
    schema.clear()
    schema.update(exact)


def _complete_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    # "Record payment" reads better than FastAPI's "Record Payment" or "Readyz".
    operation["summary"] = operation["operationId"].replace("_", " ").capitalize()
    for parameter in operation.get("parameters", []):
        _not_nullable(parameter)
    responses: dict[str, Any] = operation["responses"]
    public = path in PUBLIC_PATHS
    idempotent = any(
        p["in"] == "header" and p["name"] == "Idempotency-Key"
        for p in operation.get("parameters", [])
    )
    edge = {413}  # the edge refuses an oversized body on any request
    if not public:
        operation["security"] = [{"bearerAuth": []}]
        edge |= {401, 403, 422}  # no valid key; Escrow-On-Behalf-Of refused or malformed
        edge.add(429)  # a party key over its rate limit
    if method in BODY_METHODS:
        edge.add(415)  # any body that is not JSON
    if "requestBody" in operation:
        edge.add(400)  # a body that does not parse
    for code in sorted(edge):
        responses.setdefault(str(code), error_response(code))
    if not public:  # every authenticated operation reads or writes the database
        responses.setdefault("503", error_response(503, DATABASE_UNAVAILABLE))
    responses["default"] = error_response(500, DEFAULT_RESPONSE)

    for status, response in responses.items():
        headers = response.setdefault("headers", {})
        headers["X-Request-Id"] = {"$ref": "#/components/headers/RequestId"}
        code = 500 if status == "default" else int(status)
        if code >= 400:
            response["content"] = {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}}
            if code == 401:
                headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWWAuthenticate"}
            if code == 429:
                headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
        else:
            if _returns(response, ORDER_REF):
                headers["ETag"] = {"$ref": "#/components/headers/ETag"}
            if code == 201 and (path.endswith("/parties") or path.endswith("/orders")):
                headers["Location"] = {"$ref": "#/components/headers/Location"}
        if idempotent and code not in (400, 401, 413, 415, 429, 500):
            # A replay answers with whatever the first request got: success or refusal.
            headers["Idempotent-Replayed"] = {"$ref": "#/components/headers/IdempotentReplayed"}
    operation["responses"] = dict(sorted(responses.items()))


def _not_nullable(parameter: dict[str, Any]) -> None:
    """An optional parameter is left out, never null: ``str | None`` means absent, not null."""
    schema = parameter["schema"]
    variants = schema.get("anyOf", [])
    if not parameter.get("required") and {"type": "null"} in variants:
        rest = [v for v in variants if v != {"type": "null"}]
        kept = {k: v for k, v in schema.items() if k != "anyOf"}
        parameter["schema"] = {**rest[0], **kept} if len(rest) == 1 else {**kept, "anyOf": rest}


def _returns(response: dict[str, Any], ref: str) -> bool:
    media = response.get("content", {}).get("application/json", {})
    return bool(media.get("schema", {}).get("$ref") == ref)
