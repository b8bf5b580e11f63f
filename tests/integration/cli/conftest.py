"""A database of the test's own, with a log of orders written through the service."""

import pytest

from escrow_core.store import Database

from .busy_log import BusyLog, write_busy_log


@pytest.fixture
async def busy_log(fresh_database: Database) -> BusyLog:
    return await write_busy_log(fresh_database)
