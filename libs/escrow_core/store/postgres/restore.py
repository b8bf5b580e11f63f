"""The statements ``escrow import`` writes with on PostgreSQL: rows inserted with their own
generated keys, and the key sequences moved past them afterwards."""

from collections.abc import Sequence
from functools import cache

import sqlalchemy as sa


def _quote(name: str) -> str:
    # Names come from schema.py; quoted all alike, so a keyword (position) needs no thought.
    return f'"{name}"'


@cache
def _restoring_insert(table: sa.Table, names: tuple[str, ...]) -> sa.TextClause:
    # An identity column GENERATED ALWAYS takes a given value only with OVERRIDING SYSTEM
    # VALUE, which SQLAlchemy's insert() cannot spell. Names come from schema.py, not input.
    columns = ", ".join(_quote(name) for name in names)
    values = ", ".join(f":{name}" for name in names)
    statement = sa.text(
        f"INSERT INTO {_quote(table.name)} ({columns}) "  # noqa: S608 - schema names only
        f"OVERRIDING SYSTEM VALUE VALUES ({values})"
    )
    return statement.bindparams(*(sa.bindparam(name, type_=table.c[name].type) for name in names))


def restoring_insert(table: sa.Table, names: Sequence[str]) -> sa.TextClause:
    """INSERT of ``names`` into ``table`` keeping the values given for generated keys."""
    return _restoring_insert(table, tuple(names))


def continue_keys(table: sa.Table) -> sa.TextClause | None:
    """Move the sequence of ``table``'s generated key to its largest value, so the next key
    follows it (None: the table has no generated key). Run after rows went in."""
    key = table.autoincrement_column
    if key is None:
        return None
    return sa.text(
        "SELECT setval(pg_get_serial_sequence(:table, :column), "  # noqa: S608 - schema names
        f"(SELECT max({_quote(key.name)}) FROM {_quote(table.name)}))"
    ).bindparams(table=table.name, column=key.name)
