"""``escrow migrate`` brings a database to the latest migration, and is safe to repeat."""

from escrow_core.store import open_store

from .busy_log import escrow


async def schema_current(url: str) -> bool:
    store = open_store(url)
    try:
        return await store.schema_is_current()
    finally:
        await store.dispose()


async def test_migrate_brings_an_empty_database_to_the_latest_migration(
    empty_database_url: str,
) -> None:
    assert not await schema_current(empty_database_url)

    first = await escrow(empty_database_url, "migrate")

    assert first.returncode == 0, first.stderr
    assert "migrated" in first.stderr
    assert await schema_current(empty_database_url)

    again = await escrow(empty_database_url, "migrate")

    assert again.returncode == 0, again.stderr
    assert await schema_current(empty_database_url)
