"""The migrations build exactly the tables the code declares, and can be walked back down."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect

from radassist.config import Settings
from radassist.db.migrate import alembic_config, check


def test_migrated_schema_matches_the_models(migrated_settings: Settings) -> None:
    check(migrated_settings)  # raises when autogenerate would find a difference


def test_downgrade_to_base_and_up_again(migrated_settings: Settings) -> None:
    config = alembic_config(migrated_settings.database_url)
    command.downgrade(config, "base")
    engine = create_engine(migrated_settings.database_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    command.upgrade(config, "head")
    check(migrated_settings)
