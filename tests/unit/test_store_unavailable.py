"""The one place that tells the database being away from any other failure
(``escrow_core.store.errors.unavailable``), as each driver and SQLAlchemy raise it."""

import sqlite3

import asyncpg
import pytest
import sqlalchemy as sa

from escrow_core.store.errors import StoreUnavailable, translating_unavailable, unavailable


def wrapped(orig: BaseException, *, invalidated: bool = False) -> sa.exc.DBAPIError:
    """As SQLAlchemy raises a driver's error: the DBAPI error in ``orig``."""
    error = sa.exc.DBAPIError.instance(
        "SELECT 1", {}, orig, Exception, connection_invalidated=invalidated
    )
    assert isinstance(error, sa.exc.DBAPIError)
    return error


def chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


AWAY = {
    "connection refused": ConnectionRefusedError(111, "Connection refused"),
    "connection reset": ConnectionResetError(104, "Connection reset by peer"),
    "connect timed out": TimeoutError(),
    "server starting up": asyncpg.CannotConnectNowError("the database system is starting up"),
    "admin shutdown": asyncpg.AdminShutdownError("terminating connection due to administrator"),
    "crash shutdown": asyncpg.CrashShutdownError("terminating connection due to crash"),
    "connection lost": asyncpg.ConnectionDoesNotExistError("connection was closed"),
    "too many clients": asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    "closed connection used": asyncpg.InterfaceError(
        "cannot perform operation: connection is closed"
    ),
    "pool timeout": sa.exc.TimeoutError("QueuePool limit reached"),
    "sqlalchemy, invalidated": wrapped(Exception("gone"), invalidated=True),
    "sqlalchemy over asyncpg": wrapped(
        chained(Exception("adapted"), asyncpg.CannotConnectNowError("shutting down"))
    ),
    "sqlite locked": wrapped(sqlite3.OperationalError("database is locked")),
    "sqlite cannot open": wrapped(sqlite3.OperationalError("unable to open database file")),
}
NOT_AWAY = {
    "a bug": RuntimeError("boom"),
    "bad parameter": asyncpg.DataError("invalid input for query argument $1"),
    "query cancelled": asyncpg.QueryCanceledError("canceling statement due to timeout"),
    "unique violation": asyncpg.UniqueViolationError("duplicate key value"),
    "missing table": wrapped(asyncpg.UndefinedTableError('relation "x" does not exist')),
    "sqlite syntax": wrapped(sqlite3.OperationalError('near "SELEC": syntax error')),
    "another operation in progress": asyncpg.InterfaceError(
        "cannot perform operation: another operation is in progress"
    ),
}


@pytest.mark.parametrize("error", AWAY.values(), ids=AWAY.keys())
def test_the_database_away_is_unavailable(error: BaseException) -> None:
    assert unavailable(error)


@pytest.mark.parametrize("error", NOT_AWAY.values(), ids=NOT_AWAY.keys())
def test_other_failures_are_not_unavailable(error: BaseException) -> None:
    assert not unavailable(error)


async def test_translating_turns_the_database_away_into_store_unavailable() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(StoreUnavailable) as raised:
        async with translating_unavailable():
            raise refused
    assert raised.value.__cause__ is refused


async def test_translating_leaves_other_errors_alone() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with translating_unavailable():
            raise RuntimeError("boom")
