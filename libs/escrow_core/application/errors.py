"""Refusals of the application layer: who may not see or do what, and requests that clash.

They know nothing of HTTP: the API maps each class to a status in one table, and ``code`` is
the stable code of the problem answer.

ApplicationError
├── NotFound             the caller may not see it, or it does not exist (never says which)
├── Forbidden            the caller sees it, but its role may not do this
├── Invalid              a value that is wrong whatever the state (``field`` names it)
└── Conflict             the request clashes with another one, or with the resource's state

StoreUnavailable         (the store's) the database is away: retry later
"""

from typing import Any

from escrow_core.store.errors import StoreUnavailable as StoreUnavailable


class ApplicationError(Exception):
    """``field`` names the value at fault, ``where`` where it was given (body, query, header),
    ``reason`` and ``message`` say what is wrong with it (default: ``code`` and ``detail``);
    ``extra`` are members of the problem answer beyond those (a conflict's other resource)."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        where: str | None = None,
        reason: str | None = None,
        message: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.extra = extra or {}
        self.code = code
        self.detail = detail
        self.field = field
        self.where = where
        self.reason = reason or code
        self.message = message or detail


class NotFound(ApplicationError):
    """The caller may not see it, or it does not exist."""


class Forbidden(ApplicationError):
    """The caller may see it, but its role may not do this."""


class Invalid(ApplicationError):
    """A value that is wrong whatever the state."""


class Conflict(ApplicationError):
    """The request clashes with another one, or with the resource's state."""


def order_not_found() -> NotFound:
    return NotFound("order_not_found", "No such order.")


def party_not_found() -> NotFound:
    return NotFound("party_not_found", "No such party.")
