"""Every error is RFC 9457 ``application/problem+json`` with a stable ``code``.

One table maps the domain's error families to status codes; the domain knows nothing of HTTP.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from escrow_api.jsonresponse import dumps
from escrow_core.domain import errors as domain
from escrow_core.service import TooMuchContention, VersionMismatch

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("escrow.api")

# The first matching family wins: order matters (OrderNotFound is an InvalidState).
DOMAIN_STATUS: list[tuple[type[domain.DomainError], int]] = [
    (domain.OrderNotFound, 404),
    (domain.NotPermitted, 403),
    (domain.InvalidState, 409),
    (domain.InvalidValue, 422),
    (domain.DomainError, 422),
]

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
    status: int, code: str, detail: str, *, errors: list[dict[str, Any]] | None = None
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
    return body


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        dumps(problem_body(status, code, detail, errors=errors)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def domain_status(error: domain.DomainError) -> int:
    return next(status for family, status in DOMAIN_STATUS if isinstance(error, family))


def domain_problem(error: domain.DomainError) -> Response:
    errors = None
    if error.field is not None:
        errors = [{"field": error.field, "code": error.code, "message": error.message}]
    return problem(domain_status(error), error.code, error.message, errors=errors)


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


def install(app: FastAPI) -> None:
    """Register the one handler per error family."""

    async def on_api_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        return problem(
            error.status, error.code, error.detail, errors=error.errors, headers=error.headers
        )

    async def on_domain_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, domain.DomainError)
        return domain_problem(error)

    async def on_validation(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return _validation_problem(error)

    async def on_http(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        code = _HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
        detail = (
            error.detail if isinstance(error.detail, str) else _TITLES.get(error.status_code, "")
        )
        if error.status_code == 404:
            detail = "No such resource."
        return problem(error.status_code, code, detail, headers=dict(error.headers or {}))

    async def on_version(request: Request, error: Exception) -> Response:
        assert isinstance(error, VersionMismatch)
        return problem(412, "precondition_failed", str(error))

    async def on_contention(request: Request, error: Exception) -> Response:
        return problem(409, "concurrent_modification", "The order changed too often; retry.")

    async def on_unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error", exc_info=error)
        return problem(500, "internal_error", "Something went wrong on our side.")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(domain.DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(VersionMismatch, on_version)
    app.add_exception_handler(TooMuchContention, on_contention)
    app.add_exception_handler(Exception, on_unexpected)
