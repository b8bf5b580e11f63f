"""Run the alembic migrations from code, and check a database is at their head."""

import asyncio
import os
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection

import escrow_core


def migrations_dir() -> Path:
    """``migrations/`` of the repository, or ``ESCROW_MIGRATIONS_DIR`` when set."""
    override = os.environ.get("ESCROW_MIGRATIONS_DIR")
    if override:
        return Path(override).resolve()
    return Path(escrow_core.__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An alembic configuration that needs no alembic.ini; ``url`` reaches env.py."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        config.attributes["url"] = url
    return config


async def upgrade_to_head(url: str) -> None:
    """Bring the database at ``url`` to the latest migration."""
    # env.py runs its own event loop (asyncio.run), so it cannot run on this one.
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


@lru_cache(maxsize=1)
def _script_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def schema_is_current(conn: AsyncConnection) -> bool:
    """Whether the database's alembic version is the migration scripts' head."""
    has_table = await conn.run_sync(lambda sync: sa.inspect(sync).has_table("alembic_version"))
    if not has_table:
        return False
    rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
    return frozenset(row[0] for row in rows) == _script_heads()
