"""The HTTP edge, as one pure ASGI middleware: request id, body limits, metrics, access log.

- ``X-Request-Id`` is taken from the request (or made), echoed, and put in event metadata.
- ``Escrow-Correlation-Id``, when sent, is checked (printable ASCII, at most 200 characters,
  else 422 ``invalid_correlation_id``), echoed, and put in the metadata of the events the
  request writes as ``correlation_id``.
- Bodies over ``MAX_BODY_BYTES`` get 413; a body that is not JSON gets 415.
"""

import time
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from escrow_api.metrics import REQUESTS
from escrow_api.problems import answer, problem

MAX_BODY_BYTES = 64 * 1024
REQUEST_ID_MAX = 200
CORRELATION_ID_MAX = 200
CORRELATION_HEADER = b"escrow-correlation-id"
_BODY_METHODS = {"POST", "PUT", "PATCH"}
log = structlog.get_logger("escrow.http")


class _TooLarge(StarletteHTTPException):
    """The body outgrew the limit while being read (no Content-Length, or a false one).

    An HTTPException, because FastAPI turns any other error raised while it reads the body
    into a 400; this one it re-raises, and the problem handler answers 413.
    """

    def __init__(self) -> None:
        super().__init__(413, f"The body is over the {MAX_BODY_BYTES // 1024} KiB limit.")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _usable_request_id(value: str) -> bool:
    """Printable ASCII only: the id goes into logs and event metadata (no NUL in jsonb)."""
    return len(value) <= REQUEST_ID_MAX and value.isascii() and value.isprintable()


def _usable_correlation_id(value: str) -> bool:
    """Printable ASCII, 1-200 characters: it is stored in event metadata and echoed."""
    return 0 < len(value) <= CORRELATION_ID_MAX and value.isascii() and value.isprintable()


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class EdgeMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _usable_request_id(incoming) else None
        request_id = request_id or f"req_{uuid.uuid4().hex}"
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        correlation_id = _header(scope, CORRELATION_HEADER)
        usable_correlation = correlation_id is not None and _usable_correlation_id(correlation_id)
        if usable_correlation:
            state["correlation_id"] = correlation_id
        status = {"code": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                echoed = [(b"x-request-id", request_id.encode())]
                if usable_correlation and correlation_id is not None:
                    echoed.append((CORRELATION_HEADER, correlation_id.encode()))
                message["headers"] = [*message.get("headers", []), *echoed]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            rejection = self._reject(scope)
            if rejection is not None:
                await rejection(scope, receive, send_with_id)
                return
            try:
                await self.app(scope, self._limited(receive), send_with_id)
            except _TooLarge:
                await _too_large()(scope, receive, send_with_id)
            except Exception as error:
                # Answered here, not re-raised: an error reaching uvicorn makes it close the
                # connection. Once the answer has begun, closing is all that is left.
                if status["started"]:
                    raise
                await answer(error)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(template, scope["method"], str(status["code"])).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=template,
                status=status["code"],
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    def _reject(self, scope: Scope) -> Any:
        correlation_id = _header(scope, CORRELATION_HEADER)
        if correlation_id is not None and not _usable_correlation_id(correlation_id):
            return problem(
                422,
                "invalid_correlation_id",
                "Escrow-Correlation-Id must be 1-200 printable ASCII characters.",
                errors=[
                    {
                        "field": "Escrow-Correlation-Id",
                        "in": "header",
                        "code": "invalid_correlation_id",
                        "message": "1-200 printable ASCII characters",
                    }
                ],
            )
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return _too_large()
        has_body = (length not in (None, "0")) or _header(scope, b"transfer-encoding") is not None
        if (
            scope["method"] in _BODY_METHODS
            and has_body
            and not _is_json(_header(scope, b"content-type"))
        ):
            return problem(415, "unsupported_media_type", "Send the body as application/json.")
        return None

    @staticmethod
    def _limited(receive: Receive) -> Receive:
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    raise _TooLarge
            return message

        return counting


def _too_large() -> Any:
    return problem(
        413, "payload_too_large", f"The body is over the {MAX_BODY_BYTES // 1024} KiB limit."
    )
