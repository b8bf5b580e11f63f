"""What client generators need of the document, beyond FastAPI's output.

- the closed sets the library keeps as data become named enum components (``OrderAction``,
  ``EventType``, ``EventSubscription``), their values read from the library;
- an optional body is a requestBody that is not required, never ``anyOf [X, null]`` (a
  generated client would otherwise send its "unset" marker as the body);
- integer bounds are integers (FastAPI's document model writes every bound as a float, and a
  float cannot even hold 2^63-1);
- schema names read as types: ``OrderStatus``, not ``Status``.
"""

import json
from typing import Any

from escrow_api.openapi_events import event_types, subscriptions
from escrow_api.schemas.enums import ENUM_REF
from escrow_core.domain.order.actions import ACTION_NAMES

RENAMES = {"Status": "OrderStatus"}
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
# Bounds above 2^53 come out of FastAPI's float model rounded; each one the API uses is named
# here, so the document writes it exactly (and an unknown one fails loudly).
LARGE_BOUNDS = {float(value): value for value in (2**63 - 1,)}
FLOAT_EXACT = 2**53


def enums() -> dict[str, dict[str, Any]]:
    return {
        "OrderAction": {
            "title": "OrderAction",
            "description": "What the caller may do to the order now, named after the routes.",
            "type": "string",
            "enum": list(ACTION_NAMES),
        },
        "EventType": {
            "title": "EventType",
            "description": "The type of an event (the webhook `type` is the same string).",
            "type": "string",
            "enum": event_types(),
        },
        "EventSubscription": {
            "title": "EventSubscription",
            "description": 'An event type a webhook endpoint subscribes to, or "*" for all.',
            "type": "string",
            "enum": subscriptions(),
        },
    }


def add_enums(schema: dict[str, Any]) -> None:
    """Add the enums, and point every string marked with one (escrow_api.schemas.enums) at it."""
    named = enums()
    schema["components"]["schemas"].update(named)

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            if ENUM_REF in node:
                name = node[ENUM_REF]
                assert name in named, name
                return {"$ref": f"#/components/schemas/{name}"}
            return {key: visit(value) for key, value in node.items()}
        if isinstance(node, list):
            return [visit(value) for value in node]
        return node

    marked = visit(schema)
    schema.clear()
    schema.update(marked)


def optional_bodies(schema: dict[str, Any]) -> None:
    """``body: X | None = None`` is a requestBody that may be left out, of schema X."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            body = operation.get("requestBody")
            if body is None:
                continue
            for media in body["content"].values():
                variants = media["schema"].get("anyOf", [])
                if {"type": "null"} in variants:
                    rest = [v for v in variants if v != {"type": "null"}]
                    assert len(rest) == 1, operation["operationId"]
                    media["schema"] = rest[0]
                    body["required"] = False
            body.setdefault("required", False)


def integer_bounds(node: Any) -> Any:
    """The document with every integral float bound written as an integer."""
    if isinstance(node, dict):
        return {
            key: _integer(value) if key in BOUNDS else integer_bounds(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [integer_bounds(value) for value in node]
    return node


def _integer(value: Any) -> Any:
    if not isinstance(value, float) or not value.is_integer():
        return value
    if abs(value) < FLOAT_EXACT:
        return int(value)
    if value in LARGE_BOUNDS:
        return LARGE_BOUNDS[value]
    raise ValueError(f"the bound {value!r} lost its precision: add it to LARGE_BOUNDS")


def rename(schema: dict[str, Any], renames: dict[str, str]) -> None:
    """Rename component schemas, and every reference to them."""
    schemas = schema["components"]["schemas"]
    renames = {old: new for old, new in renames.items() if old in schemas}
    if not renames:
        return
    text = json.dumps(schema)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    renamed = json.loads(text)
    for old, new in renames.items():
        renamed["components"]["schemas"][new] = renamed["components"]["schemas"].pop(old)
        renamed["components"]["schemas"][new]["title"] = new
    renamed["components"]["schemas"] = dict(sorted(renamed["components"]["schemas"].items()))
    schema.clear()
    schema.update(renamed)
