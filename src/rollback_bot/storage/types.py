"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no timezone-aware timestamp and no JSONB; these types hide that difference so
the models (and every caller) only ever see aware UTC datetimes and plain JSON values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.types import TypeDecorator, TypeEngine

#: JSON everywhere, stored as JSONB on PostgreSQL (indexable, compact, compared by value).
JSONType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")

#: A JSON object column whose top-level key assignments are tracked by the session, so
#: ``rollback.plan["step"] = 2`` is persisted without reassigning the whole dict.
JSONDict: Any = MutableDict.as_mutable(JSONType)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always written and read back as an aware UTC ``datetime``.

    Naive datetimes are rejected on write: guessing their zone is how timelines end up an
    hour off. SQLite stores the UTC wall-clock time (so string comparison orders correctly)
    and values are re-tagged as UTC when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
