"""Declared error responses for the OpenAPI document: every error is a Problem."""

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel, Field

PROBLEM_REF = "#/components/schemas/Problem"


class FieldError(BaseModel):
    field: str = Field(description="The field at fault, dotted for nested ones: items.0.quantity")
    code: str
    message: str
    in_: Literal["body", "query", "path", "header"] | None = Field(
        default=None, alias="in", description="Where the field is; absent for a domain rule."
    )


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is stable and meant for programs."""

    type: str = Field(examples=["urn:escrow:problem:invalid_state"])
    title: str
    status: int
    detail: str
    code: str = Field(examples=["invalid_state"])
    errors: list[FieldError] = Field(
        default_factory=list, description="The fields at fault (validation errors only)."
    )
    order_id: str | None = Field(
        default=None,
        description="duplicate_client_reference: the buyer's order that has the reference.",
    )


_DESCRIPTIONS = {
    400: "Malformed request (e.g. the body is not JSON): code malformed_json.",
    401: "No valid API key: code unauthenticated.",
    403: "The caller's role may not do this: code forbidden, action_not_permitted ...",
    404: "Not found, or not visible to the caller: code not_found, order_not_found ...",
    409: "The current state forbids it: code invalid_state (or more specific), "
    "idempotency_key_in_flight, concurrent_modification, duplicate_client_reference "
    "(with order_id).",
    412: "If-Match does not name the current version: code precondition_failed.",
    413: "The body is over the size limit: code payload_too_large.",
    415: "The body is not application/json: code unsupported_media_type.",
    422: "A value is wrong whatever the state: code validation_error (with errors[]), "
    "idempotency_key_reused, or the domain rule's code.",
    429: "A party key over its rate limit: code rate_limited; retry after Retry-After seconds.",
    503: "Not ready: code database_unreachable or schema_outdated.",
}
# Any operation that reads or writes the database may answer this while it is away.
DATABASE_UNAVAILABLE = (
    "The database is unavailable (down or restarting): code database_unavailable; "
    "retry after Retry-After seconds."
)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Declare these error statuses on a route (escrow_api.openapi files them under
    ``application/problem+json`` and adds the ones the edge answers on every route)."""
    return {
        code: {"model": Problem, "description": _DESCRIPTIONS[code]} for code in sorted(set(codes))
    }


def error_response(code: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response object of an error status, for the document itself."""
    return {
        "description": description or _DESCRIPTIONS[code],
        "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}},
    }


# Every write that takes a body and an Idempotency-Key may answer these.
WRITE_ERRORS = (400, 401, 403, 409, 413, 415, 422)
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def creating(
    router: APIRouter, path: str, operation_id: str, model: type[BaseModel], *codes: int
) -> Callable[[Endpoint], Endpoint]:
    """A POST that creates a ``model`` (201), with the write errors and ``codes``."""
    return router.post(
        path,
        operation_id=operation_id,
        status_code=201,
        response_model=model,
        responses=errors(*WRITE_ERRORS, *codes),
    )


def listing(
    router: APIRouter, path: str, operation_id: str, model: type[BaseModel], *codes: int
) -> Callable[[Endpoint], Endpoint]:
    """A GET of a cursor list (``model`` is its ``Page[...]``), with 401, 422 and ``codes``."""
    return router.get(
        path,
        operation_id=operation_id,
        response_model=model,
        responses=errors(401, 422, *codes),
    )
