"""The OpenAPI document: the bearer scheme declared, stable operation ids from the routes."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PUBLIC_PATHS = ("/healthz", "/readyz")


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=(
                "Amounts are integers in the order currency's minor unit (USD 1,250.00 is 125000). "
                "Every state-changing POST takes an Idempotency-Key. Errors are RFC 9457 "
                "application/problem+json with a stable `code`."
            ),
            routes=app.routes,
        )
        schema["components"].setdefault("securitySchemes", {})["bearerAuth"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: Authorization: Bearer esk_...",
        }
        for path, operations in schema["paths"].items():
            if path in PUBLIC_PATHS:
                continue
            for operation in operations.values():
                operation["security"] = [{"bearerAuth": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
