"""Readiness: the database answers and its schema is at the latest migration."""

from escrow_core.application.runtime import Runtime


async def not_ready(runtime: Runtime) -> str | None:
    """Why the service is not ready (``database_unreachable``, ``schema_outdated``), or None."""
    try:
        current = await runtime.store.schema_is_current()
    except Exception:  # any failure to reach the database means not ready
        return "database_unreachable"
    return None if current else "schema_outdated"
