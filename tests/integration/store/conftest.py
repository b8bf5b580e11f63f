"""``write``: each contract test that takes it runs through ``Store.append`` and through a
command session's ``commit`` (see writers.py), on both backends."""

import pytest

from escrow_core.store import Store

from .writers import WRITERS, Writer


@pytest.fixture(params=WRITERS)
def write(request: pytest.FixtureRequest, store: Store) -> Writer:
    return Writer(request.param, store)
