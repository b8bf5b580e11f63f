"""Test databases on both backends, built by the real migrations and dropped afterwards.

A PostgreSQL server is found as DESIGN section 6 says: ``ESCROW_TEST_DATABASE_URL`` (an admin
URL; tests create and drop their own databases in it), else a local server on 127.0.0.1:5432
if it answers within two seconds.
"""

import asyncio
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import sqlalchemy as sa

from escrow_core.store import upgrade_to_head

LOCAL_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_SECONDS = 2.0


def asyncpg_dsn(url: str | sa.URL) -> str:
    """The plain libpq-style DSN asyncpg.connect takes, from a SQLAlchemy URL."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_path(url: str | sa.URL) -> Path:
    database = sa.make_url(url).database
    assert database, f"not a SQLite file URL: {url}"
    return Path(database)


def _unique_name(kind: str) -> str:
    return f"escrow_{kind}_{os.getpid()}_{uuid.uuid4().hex[:12]}"


async def find_postgres() -> tuple[sa.URL | None, str]:
    """(admin URL, "") of a server that answers, or (None, why none was found).

    An ``ESCROW_TEST_DATABASE_URL`` that does not answer is an error, not a reason to skip.
    """
    configured = os.environ.get("ESCROW_TEST_DATABASE_URL")
    url = sa.make_url(configured or LOCAL_POSTGRES_URL)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"ESCROW_TEST_DATABASE_URL is not a PostgreSQL URL: {url!r}")
    url = url.set(drivername="postgresql+asyncpg")
    try:
        connection = await asyncio.wait_for(
            asyncpg.connect(asyncpg_dsn(url), timeout=CONNECT_TIMEOUT_SECONDS),
            CONNECT_TIMEOUT_SECONDS + 1,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        where = "ESCROW_TEST_DATABASE_URL" if configured else f"{url.host}:{url.port}"
        reason = f"no PostgreSQL server at {where} ({url!r}): {type(error).__name__}: {error}"
        if configured:
            raise RuntimeError(reason) from error
        return None, reason
    await connection.close()
    return url, ""


@dataclass
class PostgresDatabases:
    """Creates migrated databases on one server, by copying a template migrated once."""

    admin_url: sa.URL
    _template: str | None = None
    _created: set[str] = field(default_factory=set)

    backend = "postgresql"

    def url_of(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    async def _execute(self, *statements: str) -> None:
        connection = await asyncpg.connect(asyncpg_dsn(self.admin_url))
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    async def create_empty(self) -> str:
        """A new database with no schema (not even alembic_version)."""
        name = _unique_name("test")
        await self._execute(f'CREATE DATABASE "{name}"')
        self._created.add(name)
        return self.url_of(name)

    async def create_migrated(self) -> str:
        """A new database at the migrations' head (CREATE DATABASE ... TEMPLATE)."""
        if self._template is None:
            template_url = await self.create_empty()
            await upgrade_to_head(template_url)
            self._template = sa.make_url(template_url).database
        name = _unique_name("test")
        await self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        self._created.add(name)
        return self.url_of(name)

    async def drop(self, url: str) -> None:
        name = sa.make_url(url).database
        assert name in self._created, f"{name} was not made by these tests"
        # FORCE ends any connection a failed test left open.
        await self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.discard(name)

    async def close(self) -> None:
        for name in sorted(self._created):
            await self.drop(self.url_of(name))


@dataclass
class SqliteDatabases:
    """Creates migrated SQLite files in one directory, by copying a template file."""

    directory: Path
    _template: Path | None = None

    backend = "sqlite"

    def _new_url(self) -> tuple[str, Path]:
        path = self.directory / f"{_unique_name('test')}.db"
        return f"sqlite+aiosqlite:///{path}", path

    async def create_empty(self) -> str:
        url, _ = self._new_url()
        return url

    async def create_migrated(self) -> str:
        if self._template is None:
            url = await self.create_empty()
            # Migrations leave the file in rollback-journal mode with every connection closed,
            # so the single file is the whole database and can be copied.
            await upgrade_to_head(url)
            self._template = sqlite_path(url)
        url, path = self._new_url()
        shutil.copyfile(self._template, path)
        return url

    async def drop(self, url: str) -> None:
        path = sqlite_path(url)
        for suffix in ("", "-wal", "-shm", "-journal"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)

    async def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


TestDatabases = PostgresDatabases | SqliteDatabases
