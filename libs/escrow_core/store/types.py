"""Column types that read and write the same Python values on PostgreSQL and SQLite."""

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

#: ``jsonb`` on PostgreSQL, JSON text on SQLite; (de)serialised by the engine's orjson hooks.
JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UUIDText(sa.TypeDecorator[uuid.UUID]):
    """``uuid`` on PostgreSQL; the canonical hyphenated text on SQLite (readable by operators)."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=True))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: uuid.UUID | None, dialect: sa.Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return str(value)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> uuid.UUID | None:
        if value is None:
            return None
        # asyncpg hands back its own UUID subclass; normalise to the standard type.
        return value if type(value) is uuid.UUID else uuid.UUID(str(value))


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out; SQLite stores naive UTC text, which sorts correctly."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a naive datetime was given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise TypeError(f"a UTC column read {type(value).__name__}, not a datetime")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Xid8(sa.types.UserDefinedType[str]):
    """PostgreSQL's 64-bit transaction id; always read and compared through text casts."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"
