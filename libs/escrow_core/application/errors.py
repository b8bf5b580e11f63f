"""Refusals of the application layer: who may not see or do what, and requests that clash.

They know nothing of HTTP: the API maps each class to a status in one table, and ``code`` is
the stable code of the problem answer.

ApplicationError
├── NotFound             the caller may not see it, or it does not exist (never says which)
├── Forbidden            the caller sees it, but its role may not do this
├── Invalid              a value that is wrong whatever the state (``field`` names it)
└── Conflict             the request clashes with another one (an Idempotency-Key in flight)
"""


class ApplicationError(Exception):
    def __init__(self, code: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field


class NotFound(ApplicationError):
    """The caller may not see it, or it does not exist."""


class Forbidden(ApplicationError):
    """The caller may see it, but its role may not do this."""


class Invalid(ApplicationError):
    """A value that is wrong whatever the state."""


class Conflict(ApplicationError):
    """The request clashes with another one."""
