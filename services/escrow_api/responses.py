"""Declared error responses for the OpenAPI document: every error is a Problem."""

from typing import Any

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str = Field(description="The field at fault, dotted for nested ones: items.0.quantity")
    code: str
    message: str
    in_: str | None = Field(default=None, alias="in", description="body, query, path or header")


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is stable and meant for programs."""

    type: str = Field(examples=["urn:escrow:problem:invalid_state"])
    title: str
    status: int
    detail: str
    code: str = Field(examples=["invalid_state"])
    errors: list[FieldError] | None = None


_DESCRIPTIONS = {
    400: "Malformed request (e.g. the body is not JSON): code malformed_json.",
    401: "No valid API key: code unauthenticated.",
    403: "The caller's role may not do this: code forbidden, action_not_permitted ...",
    404: "Not found, or not visible to the caller: code not_found, order_not_found ...",
    409: "The current state forbids it: code invalid_state (or more specific), "
    "idempotency_key_in_flight, concurrent_modification.",
    412: "If-Match does not name the current version: code precondition_failed.",
    413: "The body is over the size limit: code payload_too_large.",
    415: "The body is not application/json: code unsupported_media_type.",
    422: "A value is wrong whatever the state: code validation_error (with errors[]), "
    "idempotency_key_reused, or the domain rule's code.",
    503: "Not ready.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {
            "model": Problem,
            "description": _DESCRIPTIONS[code],
            "content": {"application/problem+json": {}},
        }
        for code in sorted(set(codes))
    }
