"""Closed sets the library keeps as data rather than as enum classes: the order actions and the
event types. Here they are strings typed by name; ``escrow_api.openapi_generators`` writes
each as a named enum component of the document, its values read from the library, so an
action or an event type added there joins the document by itself."""

from typing import Annotated

from pydantic import WithJsonSchema

#: Marks a string schema that the document replaces by a reference to the named enum.
ENUM_REF = "x-escrow-enum"


def named_enum(name: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", ENUM_REF: name})


OrderActionName = Annotated[str, named_enum("OrderAction")]
#: Any event type: the order events, the endpoint's own and ``webhook.test``.
EventTypeName = Annotated[str, named_enum("EventType")]
#: What a webhook endpoint may subscribe to: an event type it can receive, or ``*``.
SubscriptionName = Annotated[str, named_enum("EventSubscription")]
