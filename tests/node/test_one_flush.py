"""One flush per group (``[storage] sync``): files and rows flushed together by ``syncfs``, and the
start-up check that undoes an instance whose file a crash did not keep.

A power cut cannot be pulled here, so the crash tests leave the state one leaves behind: a listener
killed with SIGKILL keeps its last batch listed in ``unsynced_instances`` (no clean stop unlisted
it), and the test then cuts that file the way a lost flush would (truncated, or gone).  The next
start must undo exactly that instance, and the sender's re-send must store it again.
"""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import func, select

from dicom_node.group_commit import group_commit_for
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Event, Instance, Series, Study, UnsyncedInstance
from radassist.errors import ConfigError
from radassist.events import EventTag
from radassist.intake.unsynced import check_unsynced
from radassist.store.filesystem_sync import FilesystemSync, unavailable_reason
from radassist.store.instances import InstanceStore
from tests.conftest import free_port, migrate, wait_for_port
from tests.node.conftest import REPO, Node, listener_env, one_series, storescu

SUCCESS = "Received Store Response (Success)"


@pytest.fixture
def sqlite_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    """The embedded default: one flush per group is for a SQLite file.  Every Success here waits for
    its group's flush (small instances made durable in their commit: tests/node/test_bytes_in_commit.py)."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'radassist.sqlite3'}", storage_in_commit_max_bytes=0)
    migrate(settings)
    return settings


def _successes(port: int, *files: Path, **options: int) -> int:
    """How many of ``files`` (one association each) were answered Success."""
    return sum(SUCCESS in storescu(port, file, **options).stderr for file in files)


def _counts(settings: Settings) -> tuple[int, int, int, int, int]:
    """Instances, the study's and the series' counts, listed instances, ``study:instance:lost`` events."""
    factory = make_sessionmaker(settings)
    try:
        with factory() as session:
            return (
                session.scalar(select(func.count()).select_from(Instance)) or 0,
                session.scalar(select(func.max(Study.instance_count))) or 0,
                session.scalar(select(func.max(Series.instance_count))) or 0,
                session.scalar(select(func.count()).select_from(UnsyncedInstance)) or 0,
                session.scalar(select(func.count()).where(Event.tag == str(EventTag.INSTANCE_LOST))) or 0,
            )
    finally:
        factory.kw["bind"].dispose()


def test_syncfs_is_taken_only_where_it_reports_write_back_errors() -> None:
    assert unavailable_reason("5.4.0-150-generic") is not None
    assert "5.8" in (unavailable_reason("5.7.19") or "")
    assert unavailable_reason("5.8.0") is None
    assert unavailable_reason() is None  # this project's machines (Linux 6)


def test_files_and_database_on_one_file_system_take_one_flush(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    flush = FilesystemSync([tmp_path / "a", tmp_path / "b"])
    assert flush.file_systems == 1
    flush.sync()


def test_filesystem_sync_asked_on_postgresql_stops_the_start(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(database_url="postgresql+psycopg://postgres@127.0.0.1/test")
    factory = make_sessionmaker(settings)
    try:
        with pytest.raises(ConfigError, match="not a SQLite file"):
            group_commit_for(factory, sync="filesystem", instances_dir=tmp_path)
        assert group_commit_for(factory, sync="auto", instances_dir=tmp_path) is None  # PostgreSQL: as before
    finally:
        factory.kw["bind"].dispose()


def test_a_sqlite_listener_flushes_once_and_unlists_at_stop(
    sqlite_settings: Settings, start_node: Callable[[Settings], Node], tmp_path: Path
) -> None:
    node = start_node(sqlite_settings)
    group = node.server.shared.group_commit if node.server.shared else None
    assert group is not None and group.files_unsynced
    files = one_series(tmp_path, 5)
    assert _successes(node.port, *files) == 5
    instances, study_count, _series_count, listed, _lost = _counts(node.settings)
    assert (instances, study_count) == (5, 5)
    assert group.batches == 4, "the first instance of a series goes the general way; each other one is a group"
    assert listed == 1, "only the last group (one association: one instance) waits to be unlisted"
    sent = {pydicom.dcmread(file).SOPInstanceUID for file in files}
    assert {pydicom.dcmread(stored).SOPInstanceUID for stored in node.files()} == sent
    group.close()
    assert _counts(node.settings)[3] == 0


def test_an_instance_whose_flush_failed_is_undone_and_its_resend_stored(
    sqlite_settings: Settings, start_node: Callable[[Settings], Node], tmp_path: Path
) -> None:
    node = start_node(sqlite_settings)
    group = node.server.shared.group_commit if node.server.shared else None
    assert group is not None and group.flush is not None
    first, second = one_series(tmp_path, 2)
    assert _successes(node.port, first) == 1  # the first of a series goes the general way
    working = group.flush

    class FailingDisk(FilesystemSync):
        def sync(self) -> None:
            raise OSError(errno.EIO, "Input/output error")

    group.flush = FailingDisk([tmp_path])
    answer = storescu(node.port, second, answer_timeout=30).stderr
    assert "Received Store Response (Refused: OutOfResources" in answer or "0xa7" in answer.lower(), answer
    instances, study_count, series_count, listed, lost = _counts(node.settings)
    assert (instances, study_count, series_count, listed, lost) == (1, 1, 1, 0, 1)
    assert len(node.files()) == 1, "the undone instance's file is removed"
    group.flush = working
    assert _successes(node.port, second) == 1
    assert _counts(node.settings)[:3] == (2, 2, 2)


@pytest.mark.parametrize("cut", ["truncated", "missing"])
def test_a_file_cut_by_a_crash_is_undone_at_the_next_start_and_stored_again(
    cut: str, node_database: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    files = one_series(tmp_path, 3)
    port = free_port()
    env = listener_env(
        tmp_path, node_database, port, RADASSIST_STORAGE_SYNC="filesystem", RADASSIST_STORAGE_IN_COMMIT_MAX_BYTES="0"
    )
    settings = make_settings(database_url=node_database)  # the listener's data folder: tmp_path/data
    proc = subprocess.Popen([sys.executable, "-m", "dicom_node"], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        assert _successes(port, *files) == 3
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean stop: the last batch stays listed
        proc.wait(timeout=10)
    assert _counts(settings)[:4] == (3, 3, 3, 1)
    factory = make_sessionmaker(settings)
    with factory() as session:
        listed_path = session.execute(select(UnsyncedInstance.path)).scalar_one()
    factory.kw["bind"].dispose()
    store = InstanceStore(settings.storage.instances_dir)
    lost_file = store.path(listed_path)
    if cut == "truncated":  # what a flush cut short leaves: a name, part of the bytes
        lost_file.write_bytes(lost_file.read_bytes()[:200])
    else:
        lost_file.unlink()

    proc = subprocess.Popen([sys.executable, "-m", "dicom_node"], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)  # the check runs before the port opens
        assert _counts(settings) == (2, 2, 2, 0, 1)
        assert not lost_file.exists()
        assert _successes(port, *files) == 3  # the sender never got a Success for it: it sends again
        assert _counts(settings)[:3] == (3, 3, 3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_check_keeps_whole_files_and_only_the_listener_unlists_them(
    sqlite_settings: Settings, start_node: Callable[[Settings], Node], tmp_path: Path
) -> None:
    node = start_node(sqlite_settings)
    assert _successes(node.port, *one_series(tmp_path, 2)) == 2
    assert _counts(node.settings)[3] == 1
    store = InstanceStore(node.settings.storage.instances_dir)
    report = check_unsynced(node.session_factory, store, confirm=False)  # another part's start
    assert (report.kept, report.lost) == (1, [])
    assert _counts(node.settings)[3] == 1, "a running listener may still be flushing it: left listed"
    report = check_unsynced(node.session_factory, store, confirm=True)
    assert (report.kept, report.lost) == (1, [])
    assert _counts(node.settings)[:4] == (2, 2, 2, 0)


def test_a_listed_instance_revised_since_is_not_undone_for_its_old_file(
    sqlite_settings: Settings, start_node: Callable[[Settings], Node], tmp_path: Path
) -> None:
    node = start_node(sqlite_settings)
    first, second = one_series(tmp_path, 2)
    assert _successes(node.port, first, second) == 2
    factory = node.session_factory
    with factory() as session:
        listed_path = session.execute(select(UnsyncedInstance.path)).scalar_one()
    revised = pydicom.dcmread(second)
    revised.ImageComments = "corrected by the modality"
    revised.save_as(second, enforce_file_format=False)
    assert _successes(node.port, second) == 1  # other bytes, same UIDs: a revision, the general way
    with factory() as session:
        assert session.scalar(select(func.count()).where(Event.tag == str(EventTag.INSTANCE_REVISED))) == 1
        assert session.execute(select(UnsyncedInstance.path)).scalar_one() == listed_path
    node.store.path(listed_path).write_bytes(b"cut")  # the first copy's bytes: no row points to them now
    report = check_unsynced(factory, node.store, confirm=True)
    assert (report.kept, report.lost) == (1, [])
    assert _counts(node.settings) == (2, 2, 2, 0, 0)
