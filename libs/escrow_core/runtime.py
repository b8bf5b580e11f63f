"""Wiring: the parts a process needs, built from settings and closed together."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from escrow_core.clock import Clock
from escrow_core.service import EscrowService
from escrow_core.settings import Settings
from escrow_core.store import Database, EventStore


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    database: Database
    store: EventStore
    clock: Clock
    service: EscrowService


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    database = Database.from_url(settings.database_url)
    store = EventStore()
    clock = Clock(sandbox=settings.sandbox)
    try:
        yield Runtime(settings, database, store, clock, EscrowService(database, store, clock))
    finally:
        await database.dispose()
