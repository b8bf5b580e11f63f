"""Alembic environment for both backends (postgresql+asyncpg, sqlite+aiosqlite).

The URL comes from, in order: the config attribute ``url`` (set by
``escrow_core.store.upgrade_to_head``), ``-x url=...``, ``ESCROW_DATABASE_URL``, and the
embedded default ``sqlite+aiosqlite:///./var/escrow.db``.
"""

import asyncio
import logging.config
import os
from pathlib import Path

import sqlalchemy as sa
from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from escrow_core.settings import DEFAULT_DATABASE_URL
from escrow_core.store.schema import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("ESCROW_DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return str(url)


def run_migrations(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    url = database_url()
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=sa.make_url(url).get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_migrations_online(database_url()))
