"""The events of the OpenAPI document, generated from the event classes themselves.

For every event type (each class of ``escrow_core.domain.events.AnyEvent``, plus the two the
API emits of its own: ``webhook_endpoint.disabled`` and ``webhook.test``) the document gets:

- ``<Name>Data``: the event's ``data`` (the class's fields but ``type`` and ``at``, which the
  API shows as ``type`` and ``created_at``);
- ``<Name>Event``: the API's Event (timeline and feed) with that ``type`` and that ``data``;
  ``Event`` becomes their union, discriminated by ``type``;
- ``<Name>Webhook``: the body a webhook endpoint receives, and a ``webhooks`` entry (OpenAPI
  3.1) with the three Standard Webhooks headers; ``WebhookEvent`` is their union.

A new event class in the domain union joins all of these, and the ``EventType`` enum, with no
edit here.
"""

import copy
import json
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from escrow_core.domain.events import AnyEvent
from escrow_core.webhooks.endpoints import ENDPOINT_DISABLED, SUBSCRIBABLE

SCHEMAS = "#/components/schemas/"
PARAMETERS = "#/components/parameters/"
WEBHOOK_TEST = "webhook.test"
# The webhook body's fields (escrow_core.webhooks.payload): the Event's, without the actor.
WEBHOOK_FIELDS = ("id", "type", "created_at", "order_id", "sequence", "position", "data")


class WebhookEndpointDisabled(BaseModel):
    """An endpoint was disabled: it answered 410, or failed continuously for 5 days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["webhook_endpoint.disabled"] = "webhook_endpoint.disabled"
    endpoint_id: str
    owner_party_id: str | None
    url: str
    reason: str


class WebhookTest(BaseModel):
    """A test event, sent on request to one endpoint (never in the feed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["webhook.test"] = "webhook.test"
    endpoint_id: str


def event_classes() -> list[type[BaseModel]]:
    """Every event class, the domain's in the order of its union, then the API's own."""
    union = get_args(AnyEvent)[0]  # Annotated[Union[...], Field(discriminator="type")]
    return [*get_args(union), WebhookEndpointDisabled, WebhookTest]


def type_of(cls: type[BaseModel]) -> str:
    value = cls.model_fields["type"].default
    assert isinstance(value, str), cls
    return value


def event_types() -> list[str]:
    return [type_of(cls) for cls in event_classes()]


def subscriptions() -> list[str]:
    """What ``event_types`` of an endpoint may name: ``*`` or a type it can receive."""
    return ["*", *(t for t in event_types() if t in SUBSCRIBABLE)]


def add_events(schema: dict[str, Any]) -> None:
    """Replace the open Event with the union of one Event per type, and add the webhooks."""
    components = schema["components"]
    schemas: dict[str, Any] = components["schemas"]
    base = schemas["Event"]
    classes = event_classes()
    datas = _data_schemas(classes, schemas)
    events: dict[str, str] = {}
    webhooks: dict[str, str] = {}
    for cls in classes:
        name, event_type = cls.__name__, type_of(cls)
        schemas[f"{name}Data"] = datas[name]
        schemas[f"{name}Event"] = _event_schema(base, name, event_type)
        schemas[f"{name}Webhook"] = _webhook_schema(base, name, event_type)
        events[event_type] = f"{SCHEMAS}{name}Event"
        webhooks[event_type] = f"{SCHEMAS}{name}Webhook"
    schemas["Event"] = _union("Event", base.get("description", ""), events)
    schemas["WebhookEvent"] = _union(
        "WebhookEvent", "The body of any webhook, discriminated by type.", webhooks
    )
    components["schemas"] = dict(sorted(schemas.items()))
    components["parameters"] = {**components.get("parameters", {}), **WEBHOOK_HEADERS}
    schema["webhooks"] = {
        event_type: _webhook(event_type, ref, schemas[ref.removeprefix(SCHEMAS)])
        for event_type, ref in webhooks.items()
    }


def _data_schemas(
    classes: list[type[BaseModel]], schemas: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each class's data schema by class name; the models and enums they use join ``schemas``
    (one whose name the API already uses for another schema is named ``<Name>InEvent``)."""
    _, top = models_json_schema(
        [(cls, "serialization") for cls in classes], ref_template=SCHEMAS + "{model}"
    )
    definitions: dict[str, Any] = top["$defs"]
    datas = {}
    for cls in classes:
        name, event_type = cls.__name__, type_of(cls)
        data = definitions.pop(name)
        for field in ("type", "at"):
            data["properties"].pop(field, None)
        data["required"] = [f for f in data.get("required", []) if f not in ("type", "at")]
        if not data["required"]:
            del data["required"]
        own = cls.__dict__.get("__doc__")
        data["title"] = f"{name}Data"
        data["description"] = f"The `{event_type}` event's data." + (
            f" {' '.join(own.split())}" if own else ""
        )
        datas[name] = data
    clashes = {
        name: f"{name}InEvent"
        for name, definition in definitions.items()
        if name in schemas and _meaning(schemas[name]) != _meaning(definition)
    }
    if clashes:
        text = json.dumps({"datas": datas, "definitions": definitions})
        for old, new in clashes.items():
            text = text.replace(f'"{SCHEMAS}{old}"', f'"{SCHEMAS}{new}"')
        renamed = json.loads(text)
        datas = renamed["datas"]
        definitions = {clashes.get(n, n): d for n, d in renamed["definitions"].items()}
    for name, definition in definitions.items():
        schemas.setdefault(name, definition)
    return datas


def _meaning(schema: dict[str, Any]) -> Any:
    return {k: v for k, v in schema.items() if k not in ("title", "description")}


def _event_schema(base: dict[str, Any], name: str, event_type: str) -> dict[str, Any]:
    event = copy.deepcopy(base)
    event["title"] = f"{name}Event"
    event["description"] = f"A `{event_type}` event."
    event["properties"]["type"] = {"type": "string", "const": event_type, "title": "Type"}
    event["properties"]["data"] = {"$ref": f"{SCHEMAS}{name}Data"}
    return event


def _webhook_schema(base: dict[str, Any], name: str, event_type: str) -> dict[str, Any]:
    properties = {f: copy.deepcopy(base["properties"][f]) for f in WEBHOOK_FIELDS}
    properties["type"] = {"type": "string", "const": event_type, "title": "Type"}
    properties["data"] = {
        "anyOf": [{"$ref": f"{SCHEMAS}{name}Data"}, {"type": "null"}],
        "description": "The event's data; null only for a body that would reach 64 KB, "
        "which then says data_truncated: read the event from GET /v1/events.",
    }
    properties["data_truncated"] = {
        "type": "boolean",
        "const": True,
        "description": "Present (true) only when data was left out for size.",
    }
    return {
        "type": "object",
        "title": f"{name}Webhook",
        "description": f"The body of a `{event_type}` webhook: the event as GET /v1/events "
        "shows it, without the actor.",
        "properties": properties,
        "required": list(WEBHOOK_FIELDS),
    }


def _union(title: str, description: str, mapping: dict[str, str]) -> dict[str, Any]:
    return {
        "title": title,
        "description": description,
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }


WEBHOOK_HEADERS: dict[str, dict[str, Any]] = {
    "WebhookId": {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event's id (evt_...): the same on every retry and replay; "
        "deduplicate on it.",
        "schema": {"type": "string", "pattern": "^evt_[0-9a-f]{32}$"},
    },
    "WebhookTimestamp": {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Unix seconds of this attempt (the real wall clock, fresh on every "
        "attempt); refuse one far from your clock.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "WebhookSignature": {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": 'Space-separated "v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>" '
        "signatures (two during a secret rotation), keyed with the endpoint's whsec_ "
        "secret: verify with any Standard Webhooks library.",
        "schema": {"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$"},
    },
}


def _webhook(event_type: str, ref: str, body: dict[str, Any]) -> dict[str, Any]:
    description = body["description"]
    if event_type == ENDPOINT_DISABLED:
        description += " It goes to the disabled endpoint's owner's (other) endpoints."
    return {
        "post": {
            "operationId": "on_" + event_type.replace(".", "_"),
            "summary": event_type,
            "description": description,
            "parameters": [{"$ref": PARAMETERS + name} for name in WEBHOOK_HEADERS],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": ref}}},
            },
            "responses": {
                "2XX": {
                    "description": "Received. Any other answer, a redirect, or none within "
                    "15 s is retried on the schedule; 410 Gone disables the endpoint."
                }
            },
        }
    }
