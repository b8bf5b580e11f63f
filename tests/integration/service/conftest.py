"""The service on the session database of each backend, and a cast no other test shares."""

import pytest

from escrow_core.clock import Clock
from escrow_core.service import EscrowService
from escrow_core.store import Database, EventStore

from .story import Cast, Orders


@pytest.fixture
def service(database: Database) -> EscrowService:
    return EscrowService(database, EventStore(), Clock(sandbox=False))


@pytest.fixture
def cast() -> Cast:
    return Cast.new()


@pytest.fixture
def orders(service: EscrowService, cast: Cast) -> Orders:
    return Orders(service, cast)
