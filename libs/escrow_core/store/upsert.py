"""``INSERT ... ON CONFLICT DO NOTHING`` spelled for either backend."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_or_ignore(dialect: str, table: sa.Table, keys: list[str]) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=keys)
