"""Alembic environment: batch mode on SQLite, type comparison, one transaction per migration,
and an advisory lock on PostgreSQL so two processes upgrading at once run one after the other."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from radassist.db import tables  # noqa: F401  (registers the tables on the metadata)
from radassist.db.base import Base
from radassist.db.engine import make_engine

_ADVISORY_LOCK_KEY = 0x52414441  # "RADA"


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as conn:
            _run(conn)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    is_sqlite = connection.dialect.name == "sqlite"
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET lock_timeout = '30s'"))
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=is_sqlite,
            compare_type=True,
            transaction_per_migration=True,
            user_module_prefix="",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_LOCK_KEY})
            connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `radassist db upgrade`")
run_migrations_online()
