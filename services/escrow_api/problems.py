"""Every error is RFC 9457 ``application/problem+json`` with a stable ``code``.

One table maps the error families of the application and the domain to status codes; neither
knows HTTP. ``ApiError`` is for what only HTTP knows (no key, a malformed header).
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from escrow_api.jsonresponse import dumps
from escrow_core.application import errors as app
from escrow_core.application.commands import TooMuchContention, VersionMismatch
from escrow_core.domain import errors as domain

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("escrow.api")

# The first matching family wins: order matters (OrderNotFound is an InvalidState).
STATUS: list[tuple[type[Exception], int]] = [
    (app.NotFound, 404),
    (app.Forbidden, 403),
    (app.Invalid, 422),
    (app.Conflict, 409),
    (domain.OrderNotFound, 404),
    (domain.PayoutNotFound, 404),
    (domain.RefundNotFound, 404),
    (domain.NotPermitted, 403),
    (domain.InvalidState, 409),
    (domain.InvalidValue, 422),
    (domain.DomainError, 422),
    (VersionMismatch, 412),
    (TooMuchContention, 409),
    (app.StoreUnavailable, 503),
]
# Errors that carry no code of their own.
_CODES: dict[type[Exception], tuple[str, str | None]] = {
    VersionMismatch: ("precondition_failed", None),
    TooMuchContention: ("concurrent_modification", "The order changed too often; retry."),
    app.StoreUnavailable: ("database_unavailable", "The database is unavailable; retry shortly."),
}
# The database away: a retry after a few seconds usually finds it back (a restart takes ~5 s).
RETRY_AFTER_SECONDS = 2
_HEADERS: dict[type[Exception], dict[str, str]] = {
    app.StoreUnavailable: {"Retry-After": str(RETRY_AFTER_SECONDS)},
}

_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}

_HTTP_CODES = {
    400: "malformed_json",  # the framework's only 400: a body it could not parse
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An error the API answers with as a problem: raise it from routes and dependencies."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:escrow:problem:{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return {**body, **(extra or {})}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    return Response(
        dumps(problem_body(status, code, detail, errors=errors, extra=extra)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def status_of(error: Exception) -> int:
    return next(status for family, status in STATUS if isinstance(error, family))


def error_problem(error: Exception) -> Response:
    """The problem answer of an application or domain error (a family of ``STATUS``)."""
    status = status_of(error)
    errors = None
    extra: dict[str, Any] = {}
    if isinstance(error, app.ApplicationError):
        code, detail, extra = error.code, error.detail, error.extra
        if error.field is not None:
            entry = {"field": error.field, "in": error.where, "code": error.reason}
            entry["message"] = error.message
            errors = [{k: v for k, v in entry.items() if v is not None}]
    elif isinstance(error, domain.InvalidMetadata):
        code, detail = error.code, error.message
        # As a party's metadata answers: the key at fault, and the rule it breaks.
        field = error.field or "metadata"
        errors = [{"field": field, "in": "body", "code": error.reason, "message": error.rule}]
    elif isinstance(error, domain.DomainError):
        code, detail = error.code, error.message
        if error.field is not None:
            errors = [{"field": error.field, "code": error.code, "message": error.message}]
    else:
        code, fixed = _CODES[type(error)]
        detail = fixed or str(error)
    return problem(
        status, code, detail, errors=errors, headers=_HEADERS.get(type(error)), extra=extra
    )


def _validation_problem(error: RequestValidationError) -> Response:
    details = list(error.errors())
    if any(d.get("type") == "json_invalid" for d in details):
        return problem(400, "malformed_json", "The request body is not valid JSON.")
    errors = [
        {
            "field": ".".join(str(part) for part in d["loc"][1:]) or str(d["loc"][0]),
            "in": d["loc"][0],
            "code": d["type"],
            "message": d["msg"],
        }
        for d in details
    ]
    return problem(422, "validation_error", "The request has invalid fields.", errors=errors)


def _http_problem(error: StarletteHTTPException) -> Response:
    code = _HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
    detail = error.detail if isinstance(error.detail, str) else _TITLES.get(error.status_code, "")
    if error.status_code == 404:
        detail = "No such resource."
    return problem(error.status_code, code, detail, headers=dict(error.headers or {}))


def answer(error: Exception) -> Response:
    """The problem answer of any error raised while handling a request."""
    if isinstance(error, ApiError):
        return problem(
            error.status, error.code, error.detail, errors=error.errors, headers=error.headers
        )
    if isinstance(error, RequestValidationError):
        return _validation_problem(error)
    if isinstance(error, StarletteHTTPException):
        return _http_problem(error)
    if any(isinstance(error, family) for family, _ in STATUS):
        return error_problem(error)
    log.exception("unhandled error", exc_info=error)
    return problem(500, "internal_error", "Something went wrong on our side.")


def install(app: FastAPI) -> None:
    """Answer every error with ``answer`` (the handler is looked up by class)."""

    async def on_error(request: Request, error: Exception) -> Response:
        return answer(error)

    # Not ``Exception``: Starlette hands that to its ServerErrorMiddleware, which re-raises
    # after answering, and uvicorn then closes the keep-alive connection under the client's
    # next request. The edge middleware answers unexpected errors instead (``answer``).
    families = [ApiError, RequestValidationError, StarletteHTTPException]
    for family in [*families, *(family for family, _ in STATUS)]:
        app.add_exception_handler(family, on_error)
