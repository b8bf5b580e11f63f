"""The alembic migrations: the only source of the schema, on both backends."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from escrow_core.store import Store, open_store, upgrade_to_head
from escrow_core.store.migrations import alembic_config, migrations_dir, schema_is_current
from escrow_core.store.schema import metadata

# Every table the Core schema declares (schema.py mirrors the migrations), and alembic's own.
TABLES = {"alembic_version", *metadata.tables}


async def downgrade_to_base(url: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(url), "base")


async def inspect(url: str) -> tuple[bool, set[str]]:
    """(schema_is_current, the tables) of the database at ``url``."""
    store = open_store(url)
    try:
        current = await store.schema_is_current()
        async with store.read() as conn:
            assert await schema_is_current(conn) == current
            tables = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
    finally:
        await store.dispose()
    return current, tables - {"sqlite_sequence"}


async def test_upgrade_head_builds_the_schema_on_an_empty_database(empty_database_url: str) -> None:
    assert await inspect(empty_database_url) == (False, set())

    await upgrade_to_head(empty_database_url)

    assert await inspect(empty_database_url) == (True, TABLES)
    store = open_store(empty_database_url)
    try:
        async with store.read() as conn:
            clock = (
                await conn.execute(sa.text("SELECT id, offset_seconds FROM service_clock"))
            ).all()
    finally:
        await store.dispose()
    assert [tuple(row) for row in clock] == [(1, 0)]


async def test_upgrading_again_changes_nothing(empty_database_url: str) -> None:
    await upgrade_to_head(empty_database_url)
    await upgrade_to_head(empty_database_url)

    assert await inspect(empty_database_url) == (True, TABLES)


async def test_a_database_at_base_is_not_current(empty_database_url: str) -> None:
    await upgrade_to_head(empty_database_url)

    await downgrade_to_base(empty_database_url)

    assert await inspect(empty_database_url) == (False, {"alembic_version"})
    await upgrade_to_head(empty_database_url)
    assert await inspect(empty_database_url) == (True, TABLES)


async def test_a_database_at_another_revision_is_not_current(fresh_store: Store) -> None:
    assert await fresh_store.schema_is_current()
    async with fresh_store.transaction() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000_older'"))

    assert not await fresh_store.schema_is_current()


def _diff_summary(diffs: list[Any]) -> set[tuple[str, ...]]:
    summary: set[tuple[str, ...]] = set()
    for diff in diffs:
        for change in diff if isinstance(diff, list) else [diff]:
            operation = change[0]
            if operation in ("add_index", "remove_index"):
                summary.add((operation, change[1].name))
            elif operation in ("add_column", "remove_column"):
                summary.add((operation, change[2], change[3].name))
            elif operation.startswith("modify_"):
                summary.add((operation, change[2], change[3]))
            else:
                summary.add((operation, repr(change[1:])))
    return summary


# What the Core tables declare for PostgreSQL that SQLite does not have or spells otherwise.
SQLITE_ONLY_DIFFERENCES = {
    ("add_column", "events", "transaction_id"),
    ("add_index", "events_transaction_id_position_idx"),
    ("add_index", "events_type_idx"),
    ("add_index", "order_view_metadata_idx"),  # GIN: SQLite reads json_each instead
    ("modify_default", "events", "position"),  # IDENTITY vs INTEGER PRIMARY KEY AUTOINCREMENT
    ("modify_default", "party_balances", "id"),
    ("modify_default", "ledger_postings", "id"),
}


@pytest.mark.filterwarnings("ignore:Did not recognize type 'xid8'")
async def test_the_core_tables_mirror_the_migrated_schema(store: Store) -> None:
    def compare(conn: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))

    async with store.read() as conn:
        diffs = await conn.run_sync(compare)

    expected = SQLITE_ONLY_DIFFERENCES if store.dialect == "sqlite" else set()
    assert _diff_summary(diffs) == expected


def test_the_migrations_are_found_from_the_package_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert (migrations_dir() / "env.py").is_file()
    assert (migrations_dir() / "versions" / "0001_event_store.py").is_file()

    monkeypatch.setenv("ESCROW_MIGRATIONS_DIR", str(tmp_path))

    assert migrations_dir() == tmp_path.resolve()


def test_every_revision_id_fits_alembic_version_and_the_chain_is_linear() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    revisions = list(scripts.walk_revisions())

    # alembic_version.version_num is VARCHAR(32) on PostgreSQL: a longer id cannot be stamped.
    assert all(len(script.revision) <= 32 for script in revisions), [
        script.revision for script in revisions if len(script.revision) > 32
    ]
    assert len(scripts.get_heads()) == 1
    assert [script.down_revision for script in revisions][-1] is None
