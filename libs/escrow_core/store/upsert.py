"""``INSERT ... ON CONFLICT`` spelled for either backend."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT that knows ``ON CONFLICT`` on this backend."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def insert_or_ignore(dialect: str, table: sa.Table, keys: list[str]) -> Any:
    return dialect_insert(dialect, table).on_conflict_do_nothing(index_elements=keys)
