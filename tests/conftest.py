"""Shared fixtures: settings on a temporary data folder, a migrated database (SQLite and
PostgreSQL), free ports and waiting for sockets (never sleeping)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import sqlalchemy as sa

from radassist.config import Settings, load_settings
from tests.longest_first import longest_first

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO.parent / "shared" / "testdata" / "dicom"
if not TESTDATA.exists():  # a checkout outside /work: let CI point at shared/
    TESTDATA = Path(os.environ.get("RADASSIST_TESTDATA", "/work/shared/testdata/dicom"))

PG_ADMIN_URL = os.environ.get("RADASSIST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

pydicom.config.settings.reading_validation_mode = pydicom.config.RAISE
pydicom.config.settings.writing_validation_mode = pydicom.config.RAISE

TEST_WORKERS = 3
"""pytest-xdist workers for ``-n auto`` (pyproject's addopts): the suite waits on peers and processes
as much as it computes, so three workers finish it sooner than two on the 2-core CI machine (14 min
against 26 serially, measured); four were slower again on 2026-12-07 (main pass 15 min 27 s against
14 min 25 s and 15 min 10 s with three)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest test modules go to the workers first (:mod:`tests.longest_first`)."""
    longest_first(items)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: ``PYTEST_XDIST_AUTO_NUM_WORKERS`` when set, else :data:`TEST_WORKERS`; none (one
    process) when the reliability suite is selected, whose outages and mount namespaces are timed
    for a machine to themselves."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    markers = str(config.getoption("markexpr", "") or "")
    if "reliability" in markers and "not reliability" not in markers:
        return 0
    return TEST_WORKERS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; return it, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def testdata() -> Path:
    return TESTDATA


def _postgres_available() -> bool:
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432")
        pytest.skip("PostgreSQL is not reachable")
    name = f"radassist_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def rabbitmq_url() -> Iterator[str]:
    """A fresh RabbitMQ virtual host for one test, so concurrent runs never take each other's messages."""
    import shutil
    import subprocess

    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("rabbitmqctl is not installed")
    vhost = f"radassist-test-{uuid.uuid4().hex[:12]}"
    subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    subprocess.run([ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True, timeout=60)
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'radassist.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Build Settings on a temporary data folder; keyword arguments are env-style overrides,
    e.g. ``make_settings(dicom_port="11113", database_url=url)``."""

    def factory(**overrides: Any) -> Settings:
        environ = {"RADASSIST_STORAGE_PATH": str(tmp_path / "data")}
        for key, value in overrides.items():
            if key == "destinations":
                import json

                environ["RADASSIST_DESTINATIONS"] = json.dumps(value)
            else:
                environ[f"RADASSIST_{key.upper()}"] = str(value)
        return load_settings(environ=environ)

    return factory


_SQLITE_TEMPLATE: list[Path] = []


def migrate(settings: Settings) -> None:
    """``alembic upgrade head`` for a test's database; on SQLite a copy of one database migrated once
    per test session (a copy takes milliseconds, the migrations half a second)."""
    from radassist.db.migrate import upgrade

    url = settings.database_url
    target = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if target is None or target.exists() or not target.parent.is_dir():
        upgrade(settings)
        return
    if not _SQLITE_TEMPLATE:
        import atexit
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="radassist-migrated-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "radassist.sqlite3"
        upgrade(load_settings(environ={"RADASSIST_STORAGE_PATH": str(folder / "data"),
                                       "RADASSIST_DATABASE_URL": f"sqlite:///{template}"}))
        _SQLITE_TEMPLATE.append(template)
    _copy_sqlite(_SQLITE_TEMPLATE[0], target)


def _copy_sqlite(template: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API (whatever sits in the template's WAL), with the
    template's file mode."""
    import sqlite3

    source, copy = sqlite3.connect(template), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    os.chmod(target, template.stat().st_mode & 0o777)


@pytest.fixture
def migrated_settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    """Settings whose database (SQLite or PostgreSQL) has been built by ``alembic upgrade head``."""
    settings = make_settings(database_url=database_url)
    migrate(settings)
    return settings
