"""The PostgreSQL adapter: asyncpg on a pool of its own for the hot paths, SQLAlchemy Core for
the backend-neutral statements (``store.shared``)."""

from escrow_core.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
