"""The command service on the session database of each backend, and a cast no other test
shares."""

import pytest

from escrow_core.application.commands import CommandService
from escrow_core.store import Store

from .story import Cast, Orders


@pytest.fixture
def service(store: Store) -> CommandService:
    return CommandService(store)


@pytest.fixture
def cast() -> Cast:
    return Cast.new()


@pytest.fixture
def orders(service: CommandService, cast: Cast) -> Orders:
    return Orders(service, cast)
