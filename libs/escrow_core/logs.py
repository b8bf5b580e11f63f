"""JSON logs for every process: one JSON object per line on standard error.

structlog loggers (``structlog.get_logger``) and the standard library's (uvicorn, SQLAlchemy,
``logging.getLogger``) go through one handler on the root logger and one renderer, so every
line has ``timestamp``, ``level``, ``logger`` and ``event``, plus the context variables bound
at the time: ``request_id`` during an HTTP request. A traceback is one escaped string field.
"""

import logging
import sys
from typing import Any, TextIO

import structlog

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when configured
    (test runners swap it; a stream captured once would be written after it is closed)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def json_formatter() -> logging.Formatter:
    """The one renderer: a stdlib record or a structlog event in, one JSON line out."""
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        foreign_pre_chain=_SHARED,
    )


def configure(level: str = "INFO") -> None:
    """Send every log of this process to standard error as JSON lines, from ``level`` up."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
