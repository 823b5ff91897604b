"""Fixtures shared by the unit tests of the pipeline's database steps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker


@pytest.fixture
def factory(migrated_settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated database (both databases: ``migrated_settings`` is parametrised)."""
    made = make_sessionmaker(migrated_settings)
    yield made
    made.kw["bind"].dispose()
