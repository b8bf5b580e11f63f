"""Wiring: the parts a process needs, built from settings and closed together."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from escrow_core.application.commands import CommandService
from escrow_core.application.upcasting import event_upcasters
from escrow_core.settings import Settings
from escrow_core.store import Store, open_store


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    commands: CommandService


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    store = open_store(settings.database_url, sandbox=settings.sandbox, upcasters=event_upcasters())
    try:
        yield Runtime(settings, store, CommandService(store))
    finally:
        await store.dispose()
