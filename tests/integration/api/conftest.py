"""Fixtures of the in-process API suites: a World (see world.py) on each backend."""

from collections.abc import AsyncIterator

import pytest

from escrow_core.store import Store

from .world import World, build_world, fast_dispute_api


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    """The cast on this backend's session database, in an app with no negotiation period."""
    async with fast_dispute_api(database_url) as api:
        yield await build_world(api)


@pytest.fixture
async def fresh_world(fresh_store: Store) -> AsyncIterator[World]:
    """The cast on a database of its own: for global lists (the feed, the mediation queue)."""
    async with fast_dispute_api(fresh_store.url) as api:
        yield await build_world(api)
