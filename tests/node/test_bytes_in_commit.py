"""Small instances made durable in their commit (``[storage] in_commit_max_bytes``), their files
flushed in the background (:mod:`dicom_node.background_flush`).

The promise under test: a Success is sent only once the instance cannot be lost.  Here its bytes
are listed with its rows in a commit that syncs the WAL (``synchronous=FULL``), so the Success does
not wait for the file's flush; the listing stays until a flush has covered the file, and a file
that a crash took first is rewritten from the listed bytes at the next start, never forgotten.
A power cut cannot be pulled here: the tests hold the flush back, or kill the listener and cut
the file the way a lost flush would.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.group_commit import GroupCommit
from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker, write_turn
from radassist.db.tables import Event, Instance, Study, UnsyncedInstance
from radassist.events import EventTag
from radassist.intake.header import InstanceHeader
from radassist.intake.record import instance_patient_key, record_instance
from radassist.intake.record_sqlite import new_instance
from radassist.intake.unsynced import check_unsynced
from radassist.store.filesystem_sync import unavailable_reason
from radassist.store.instances import InstanceStore
from tests.conftest import free_port, migrate, wait_for_port
from tests.node.conftest import REPO, HeldFlush, Node, listener_env, one_series, storescu
from tests.unit.test_completion import header

STUDY = "1.2.826.0.1.3680043.9.8.2"
LIMIT = 4096
SUCCESS = "Received Store Response (Success)"

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=f"syncfs: {unavailable_reason()}")


@pytest.fixture
def store(tmp_path: Path) -> InstanceStore:
    made = InstanceStore(tmp_path / "data" / "instances")
    made.root.mkdir(parents=True)
    return made


@pytest.fixture
def held(store: InstanceStore) -> HeldFlush:
    return HeldFlush([store.root])


@pytest.fixture
def group(factory: sessionmaker[Session], held: HeldFlush) -> Iterator[GroupCommit]:
    made = GroupCommit(factory, held, in_commit_max_bytes=LIMIT)
    yield made
    held.allowed.set()
    made.close()


def _known(factory: sessionmaker[Session], store: InstanceStore) -> None:
    """The study's first instance, recorded the general way: its study and series become known."""
    first = header(STUDY, f"{STUDY}.1")
    stored = store.write(b"first", STUDY, first.series_instance_uid, first.sop_instance_uid)
    with write_turn(factory), factory() as session:
        record_instance(session, first, stored, calling_ae="MODALITY", called_ae="RADASSIST", now=utcnow())
        session.commit()


def _record(group: GroupCommit, store: InstanceStore, instance: InstanceHeader, data: bytes) -> bool:
    """Record ``instance`` as the listener does: its file written unsynced, its bytes offered to the commit."""
    stored = store.write(data, STUDY, instance.series_instance_uid, instance.sop_instance_uid, sync=False)
    item = new_instance(
        group.database, instance, stored, patient_key=instance_patient_key(instance, stored), calling_ae="MODALITY",
        reopen_study=True, now=utcnow(), data=data,
    )  # fmt: skip
    assert item is not None, "the study and series are known to this process"
    return group.record(item)


def _listed(factory: sessionmaker[Session]) -> list[tuple[str, bytes | None]]:
    with factory() as session:
        return [(path, data) for path, data in session.execute(select(UnsyncedInstance.path, UnsyncedInstance.data))]


def test_a_small_instance_is_answered_after_its_commit_before_its_file_is_flushed(
    factory: sessionmaker[Session], store: InstanceStore, held: HeldFlush, group: GroupCommit
) -> None:
    _known(factory, store)
    data = b"small instance bytes" * 10
    # The flush is held: recording returns anyway, because the commit itself made the bytes durable.
    assert _record(group, store, header(STUDY, f"{STUDY}.2"), data)
    with closing(group._connection.dbapi_connection.cursor()) as cursor:
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2, "FULL: the commit synced the WAL"
    [(path, listed)] = _listed(factory)
    assert listed == data and store.path(path).read_bytes() == data
    assert group.background is not None and group.background.flushed_through == 0

    held.allowed.set()  # the background flush covers the file within its period
    for _ in range(300):
        if group.background.flushed_through >= 1:
            break
        threading.Event().wait(0.01)
    assert group.background.flushed_through == 1
    assert _record(group, store, header(STUDY, f"{STUDY}.3"), data)
    listed_now = [p for p, _ in _listed(factory)]
    assert len(listed_now) == 1 and path not in listed_now, "the next transaction unlisted the flushed batch"
    group.close()
    assert _listed(factory) == [], "a clean stop flushes and unlists everything"


def test_a_larger_instance_still_waits_for_its_flush(
    factory: sessionmaker[Session], store: InstanceStore, held: HeldFlush, group: GroupCommit
) -> None:
    _known(factory, store)
    answered = threading.Event()
    thread = threading.Thread(
        target=lambda: _record(group, store, header(STUDY, f"{STUDY}.2"), bytes(LIMIT + 1)) and answered.set()
    )
    thread.start()
    assert not answered.wait(0.5), "a batch with an instance over the limit is answered after its flush"
    held.allowed.set()
    assert answered.wait(10)
    thread.join()
    [(_path, listed)] = _listed(factory)
    assert listed is None, "its file was flushed before its Success: no bytes kept"


def _recorded_then_flush_failed(
    factory: sessionmaker[Session], store: InstanceStore, held: HeldFlush, group: GroupCommit, data: bytes
) -> str:
    """One small instance recorded, its background flush failed, the group stopped: its listed path."""
    _known(factory, store)
    assert _record(group, store, header(STUDY, f"{STUDY}.2"), data)
    held.fail = True
    held.allowed.set()
    group.close()
    assert group.background is not None and group.background.flushed_through == 0
    [(path, listed)] = _listed(factory)
    assert listed == data, "not flushed: still listed with its bytes after the stop"
    return path


def test_a_failed_background_flush_leaves_the_bytes_and_the_check_rewrites_the_file(
    factory: sessionmaker[Session], store: InstanceStore, held: HeldFlush, group: GroupCommit
) -> None:
    data = b"bytes a crash must not take" * 5
    path = _recorded_then_flush_failed(factory, store, held, group, data)

    store.path(path).write_bytes(data[:7])  # what a power cut before the flush can leave
    report = check_unsynced(factory, store, confirm=False)
    assert report.lost == [] and len(report.restored) == 1
    assert store.path(path).read_bytes() == data
    assert _listed(factory) == [], "rewritten durably: unlisted"
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 2
        assert session.scalar(select(Study.instance_count)) == 2
        tags = set(session.scalars(select(Event.tag)))
    assert str(EventTag.INSTANCE_RESTORED) in tags and str(EventTag.INSTANCE_LOST) not in tags


def test_a_file_that_cannot_be_rewritten_now_stays_listed_for_the_next_check(
    factory: sessionmaker[Session], store: InstanceStore, held: HeldFlush, group: GroupCommit
) -> None:
    data = b"bytes answered Success" * 4
    path = _recorded_then_flush_failed(factory, store, held, group, data)
    folder = store.path(path).parent
    shutil.rmtree(folder)
    folder.write_bytes(b"not a folder")  # the file cannot be written there now
    report = check_unsynced(factory, store, confirm=True)
    assert (report.lost, report.restored, len(report.unrestored)) == ([], [], 1)
    assert _listed(factory) == [(path, data)], "still listed with its bytes"
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 2, "never undone"

    folder.unlink()
    report = check_unsynced(factory, store, confirm=True)
    assert len(report.restored) == 1 and store.path(path).read_bytes() == data


def test_bytes_that_do_not_match_their_checksum_are_not_written_back(
    factory: sessionmaker[Session], store: InstanceStore, held: HeldFlush, group: GroupCommit
) -> None:
    path = _recorded_then_flush_failed(factory, store, held, group, b"original bytes")
    with write_turn(factory), factory() as session:
        session.execute(UnsyncedInstance.__table__.update().values(data=b"other bytes"))
        session.commit()
    store.path(path).unlink()
    report = check_unsynced(factory, store, confirm=True)
    assert report.restored == [] and len(report.lost) == 1, "never write bytes that are not the instance's"


def test_the_listener_answers_small_instances_at_their_commit(
    make_settings: Callable[..., Settings], start_node: Callable[..., Node], tmp_path: Path
) -> None:
    """The embedded default takes this way for small instances."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'radassist.sqlite3'}")
    assert settings.storage.in_commit_max_bytes == 16_384
    migrate(settings)
    node = start_node(settings)
    group = node.server.shared.group_commit if node.server.shared else None
    assert group is not None and group.in_commit_max_bytes == 16_384
    files = one_series(tmp_path, 4)
    assert sum(SUCCESS in storescu(node.port, file).stderr for file in files) == 4
    assert group.background is not None, "the group's instances were made durable in their commit"
    group.close()
    assert group.background.flushes >= 1 and _count_listed(settings) == 0


def _count_listed(settings: Settings) -> int:
    made = make_sessionmaker(settings)
    try:
        with made() as session:
            return session.scalar(select(func.count()).select_from(UnsyncedInstance)) or 0
    finally:
        made.kw["bind"].dispose()


def test_a_file_a_crash_took_after_its_success_is_rewritten_at_the_next_start(
    node_database: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """Killed with its last batch listed, then the file cut: the next start rewrites it from the
    listed bytes, and nothing is undone (its sender got a Success and will not send it again)."""
    files = one_series(tmp_path, 3)
    port = free_port()
    env = listener_env(tmp_path, node_database, port, RADASSIST_STORAGE_SYNC="filesystem")
    settings = make_settings(database_url=node_database)
    proc = subprocess.Popen([sys.executable, "-m", "dicom_node"], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        assert sum(SUCCESS in storescu(port, file).stderr for file in files) == 3
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean stop: the last batch stays listed
        proc.wait(timeout=10)
    made = make_sessionmaker(settings)
    with made() as session:
        path, data, crc32 = session.execute(
            select(UnsyncedInstance.path, UnsyncedInstance.data, UnsyncedInstance.crc32).limit(1)
        ).one()
    made.kw["bind"].dispose()
    assert data is not None and zlib.crc32(data) == crc32
    lost_file = InstanceStore(settings.storage.instances_dir).path(path)
    lost_file.unlink()

    proc = subprocess.Popen([sys.executable, "-m", "dicom_node"], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)  # the check runs before the port opens
        assert lost_file.read_bytes() == data
        assert _count_listed(settings) == 0
        made = make_sessionmaker(settings)
        with made() as session:
            assert session.scalar(select(func.count()).select_from(Instance)) == 3
            assert session.scalar(select(func.count()).where(Event.tag == str(EventTag.INSTANCE_LOST))) == 0
            assert session.scalar(select(func.count()).where(Event.tag == str(EventTag.INSTANCE_RESTORED))) == 1
        made.kw["bind"].dispose()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
