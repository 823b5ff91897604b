"""Alembic driven from Settings, so `radassist db upgrade` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from radassist.config import Settings


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run from several processes at once on PostgreSQL."""
    command.upgrade(alembic_config(settings.database_url), revision)


def check(settings: Settings) -> None:
    """Fail when the tables in code differ from what the migrations create (``alembic check``)."""
    command.check(alembic_config(settings.database_url))
