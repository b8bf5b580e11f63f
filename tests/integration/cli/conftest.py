"""A database of the test's own, with a log of orders written through the command service."""

import pytest

from escrow_core.store import Store

from .busy_log import BusyLog, write_busy_log


@pytest.fixture
async def busy_log(fresh_store: Store) -> BusyLog:
    return await write_busy_log(fresh_store)
