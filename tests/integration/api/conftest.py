"""Fixtures of the in-process API suites: a World (see world.py) on each backend."""

from collections.abc import AsyncIterator

import pytest

from .world import World, build_world, fast_dispute_api


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    """The cast on this backend's session database, in an app with no negotiation period."""
    async with fast_dispute_api(database_url) as api:
        yield await build_world(api)
