"""Fixtures the security tests borrow from the node and end-to-end suites (not copied)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from radassist.config import Settings
from radassist.db.migrate import upgrade
from tests.e2e.test_pipeline import run_service, tiny_model  # noqa: F401  (fixtures)
from tests.node.conftest import (
    node_database,  # noqa: F401  (fixture: a migrated SQLite database for a listener subprocess)
    pki,  # noqa: F401  (fixture: a hospital CA, a rogue CA, their leaves)
    start_node,  # noqa: F401  (fixture)
)


@pytest.fixture
def sqlite_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    """Migrated SQLite settings: who may do what does not depend on the database (tests/node and
    tests/web run both)."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'security.sqlite3'}")
    upgrade(settings)
    return settings
