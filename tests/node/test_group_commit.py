"""Group commit on SQLite: the common new instance, written by plain SQL and several to a transaction.

:mod:`radassist.intake.record_sqlite` must leave exactly the rows and timeline ``record_instance``
leaves, write nothing for any instance it does not cover (the caller then records it the general
way), and :mod:`dicom_node.group_commit` must answer each instance only after a commit that holds
it, sharing one commit among the instances that waited together.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.group_commit import GroupCommit, group_commit_for
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker, write_turn
from radassist.db.tables import Event, Instance, Series, Study
from radassist.intake.header import InstanceHeader
from radassist.intake.patient import PatientIdentity
from radassist.intake.record import instance_patient_key, record_instance
from radassist.intake.record_sqlite import NewInstance, new_instance
from radassist.states import StudyState
from radassist.store.filesystem_sync import unavailable_reason
from radassist.store.instances import InstanceStore, StoredFile
from tests.conftest import migrate
from tests.unit.test_completion import header

T0 = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
STUDY = "1.2.826.0.1.3680043.9.8.1"


@pytest.fixture
def store(tmp_path: Path) -> InstanceStore:
    return InstanceStore(tmp_path / "data" / "instances")


@pytest.fixture
def group(factory: sessionmaker[Session]) -> Iterator[GroupCommit]:
    made = group_commit_for(factory)
    assert made is not None
    yield made
    made.close()


def _stored(store: InstanceStore, instance: InstanceHeader, size: int = 12) -> StoredFile:
    return store.write(
        bytes(size), instance.study_instance_uid, instance.series_instance_uid, instance.sop_instance_uid
    )


def _general(
    factory: sessionmaker[Session], store: InstanceStore, instance: InstanceHeader, **options: Any
) -> bool:
    with write_turn(factory), factory() as session:
        new = record_instance(
            session, instance, _stored(store, instance), calling_ae="MODALITY", called_ae="RADASSIST",
            now=options.pop("now", T0), **options,
        )  # fmt: skip
        session.commit()
    return new


def _item(
    group: GroupCommit, store: InstanceStore, instance: InstanceHeader, **options: Any
) -> NewInstance | None:
    stored = _stored(store, instance)
    return new_instance(
        group.database,
        instance,
        stored,
        patient_key=instance_patient_key(instance, stored),
        calling_ae="MODALITY",
        reopen_study=options.get("reopen_study", True),
        now=options.get("now", T0),
    )


def _fast(group: GroupCommit, store: InstanceStore, instance: InstanceHeader, **options: Any) -> bool:
    item = _item(group, store, instance, **options)
    assert item is not None, "the study and series are known to this process"
    return group.record(item)


def _rows(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Everything the two ways must agree on: raw stored values, ids and clocks aside."""
    with factory() as session:
        connection = session.connection()
        return {
            "instances": connection.execute(
                text(
                    "SELECT sop_instance_uid, sop_class_uid, transfer_syntax_uid, instance_number, path, size_bytes,"
                    " patient_key, typeof(received_at), length(received_at), length(id), length(series_id)"
                    " FROM instances ORDER BY sop_instance_uid"
                )
            ).all(),  # fmt: skip
            "series": connection.execute(
                text("SELECT series_instance_uid, instance_count FROM series")
            ).all(),
            "studies": connection.execute(
                text(
                    "SELECT state, instance_count, modality, patient_key, files_removed_at, last_received_at"
                    " FROM studies"
                )
            ).all(),  # fmt: skip
            "events": [
                (tag, sorted(detail))
                for tag, detail in session.execute(select(Event.tag, Event.detail).order_by(Event.id))
            ],
        }


def test_the_fast_way_leaves_the_rows_of_the_general_way(
    factory: sessionmaker[Session],
    store: InstanceStore,
    group: GroupCommit,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    first, second = header(STUDY, f"{STUDY}.1"), header(STUDY, f"{STUDY}.2")
    later = T0 + dt.timedelta(seconds=5)
    assert _item(group, store, first) is None, "an unknown study goes the general way"
    assert _general(factory, store, first)
    assert _fast(group, store, second, now=later)
    fast = _rows(factory)

    # The same story, both instances the general way, on a database of its own.
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'general.sqlite3'}")
    migrate(settings)
    other = make_sessionmaker(settings)
    try:
        assert _general(other, store, first)
        assert _general(other, store, second, now=later)
        general = _rows(other)
    finally:
        other.kw["bind"].dispose()
    assert fast == general
    assert fast["studies"][0][1] == 2 and fast["series"][0][1] == 2
    with factory() as session:
        instance = session.scalars(
            select(Instance).where(Instance.sop_instance_uid == second.sop_instance_uid)
        ).one()
        assert instance.received_at == later
        assert session.scalars(select(Study.last_received_at)).one() == later
        detail = session.scalars(select(Event.detail).order_by(Event.id.desc())).first()
        assert (
            detail is not None and detail["instance_id"] == str(instance.id) and detail["duplicate"] is False
        )


def test_what_the_fast_way_does_not_cover_is_left_unwritten(
    factory: sessionmaker[Session], store: InstanceStore, group: GroupCommit
) -> None:
    assert _general(factory, store, header(STUDY, f"{STUDY}.1"))
    before = _rows(factory)
    # A re-send of a known SOP Instance UID.
    assert not _fast(group, store, header(STUDY, f"{STUDY}.1"))
    # Another patient than the study's: the general way holds the study.
    stranger = PatientIdentity(patient_id="OTHER", name="ROE^RICHARD")
    assert not _fast(group, store, header(STUDY, f"{STUDY}.2", patient=stranger))
    # A file retention removed meanwhile.
    gone = header(STUDY, f"{STUDY}.3")
    item = _item(group, store, gone)
    assert item is not None
    (store.resolved_root / item.stored.relpath).unlink()
    assert not group.record(item)
    # A complete study that this instance would reopen.
    with factory() as session:
        session.execute(update(Study).values(state=StudyState.COMPLETE))
        session.commit()
    assert not _fast(group, store, header(STUDY, f"{STUDY}.4"))
    assert _rows(factory)["instances"] == before["instances"]
    assert _rows(factory)["events"] == before["events"]
    # ... but one that must not reopen it (a moved prior, a non-image object) is counted.
    assert _fast(group, store, header(STUDY, f"{STUDY}.5"), reopen_study=False)
    assert group.batches == 1


def test_a_series_removed_meanwhile_goes_the_general_way(
    factory: sessionmaker[Session], store: InstanceStore, group: GroupCommit
) -> None:
    assert _general(factory, store, header(STUDY, f"{STUDY}.1"))
    with factory() as session:  # what retention does to a study's rows
        session.execute(delete(Instance))
        session.execute(delete(Series))
        session.commit()
    assert not _fast(group, store, header(STUDY, f"{STUDY}.2"))
    assert _general(factory, store, header(STUDY, f"{STUDY}.2"))
    assert _rows(factory)["series"][0][1] == 1


def test_waiting_instances_share_one_commit_and_each_is_answered_after_it(
    factory: sessionmaker[Session], store: InstanceStore, group: GroupCommit
) -> None:
    assert _general(factory, store, header(STUDY, f"{STUDY}.0"))
    items = [_item(group, store, header(STUDY, f"{STUDY}.{n}")) for n in range(1, 5)]
    results: dict[int, bool] = {}
    committed_when_answered: dict[int, bool] = {}

    def send(n: int, item: NewInstance | None) -> None:
        assert item is not None
        results[n] = group.record(item)
        with factory() as session:  # another connection sees the row once the answer comes
            committed_when_answered[n] = bool(
                session.scalar(
                    select(Instance.id)
                    .where(Instance.sop_instance_uid == item.header.sop_instance_uid)
                    .exists()
                    .select()
                )
            )

    turn = write_turn(factory)
    with turn:  # the leader waits for the turn while the others queue, and takes them all once it has it
        threads = [threading.Thread(target=send, args=(n, item)) for n, item in enumerate(items)]
        for thread in threads:
            thread.start()
        _until(lambda: group._leading and len(group._queue) == 4)
        assert results == {}, "nothing is answered before its commit"
    for thread in threads:
        thread.join(30)
    assert results == {0: True, 1: True, 2: True, 3: True}
    assert all(committed_when_answered.values())
    assert group.batches == 1, "the four that waited shared one commit"
    assert _rows(factory)["studies"][0][1] == 5


def test_a_failed_group_is_recorded_the_general_way_and_the_next_group_works(
    factory: sessionmaker[Session], store: InstanceStore, group: GroupCommit
) -> None:
    assert _general(factory, store, header(STUDY, f"{STUDY}.0"))
    item = _item(group, store, header(STUDY, f"{STUDY}.1"))
    assert item is not None
    group._cursor()
    group._connection.dbapi_connection.execute("PRAGMA query_only=1")  # every write now fails
    assert not group.record(item)
    assert _fast(group, store, header(STUDY, f"{STUDY}.2")), "a fresh connection after the failure"
    group.close()
    assert not _fast(group, store, header(STUDY, f"{STUDY}.3")), "closed: everything goes the general way"


def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_only_an_instance_of_a_study_without_files_names_files_removed_at(
    factory: sessionmaker[Session], store: InstanceStore, group: GroupCommit
) -> None:
    """The common instance leaves ``files_removed_at`` out of its ``UPDATE``: SQLite rewrites an
    index entry for every column a ``SET`` names, so naming it cost one index page per instance.
    An instance of a study whose files retention removed still clears it."""
    first, second, third = (header(STUDY, f"{STUDY}.{n}") for n in (1, 2, 3))
    assert _general(factory, store, first)
    statements: list[str] = []
    engine = factory.kw["bind"]

    def listener(connection: Any, _record: Any, _proxy: Any) -> None:
        connection.set_trace_callback(statements.append)  # the group takes its connection at its first commit

    event.listen(engine, "checkout", listener)
    try:
        assert _fast(group, store, second)
        assert statements and not [s for s in statements if "files_removed_at =" in s]
        with factory() as session:
            session.execute(update(Study).values(files_removed_at=T0))
            session.commit()
        statements.clear()
        assert _fast(group, store, third)
    finally:
        event.remove(engine, "checkout", listener)
    assert len([s for s in statements if "files_removed_at = NULL" in s]) == 1
    with factory() as session:
        assert session.scalars(select(Study.files_removed_at)).one() is None
        assert session.scalars(select(Study.instance_count)).one() == 3


WRITTEN_PER_INSTANCE = {  # the B-trees of the common instance's transaction, one WAL page each
    "instances", "sqlite_autoindex_instances_1", "sqlite_autoindex_instances_2",  # id, SOP Instance UID
    "ix_instances_series_id", "ix_instances_study_id",
    "series",  # its count
    "studies", "ix_studies_state_last_received_at", "ix_studies_last_received_at_id",  # count, last received
    "events", "ix_events_study_id",  # study:instance:received (no job: not in ix_events_job_id)
    "unsynced_instances",  # listed, and the previous batch unlisted, on one page
}  # fmt: skip


@pytest.fixture
def flushing_group(factory: sessionmaker[Session], store: InstanceStore) -> Iterator[GroupCommit]:
    """The listener's group commit with one ``syncfs`` per batch: it lists its instances as unsynced."""
    if unavailable_reason() is not None:
        pytest.skip(f"syncfs: {unavailable_reason()}")
    store.root.mkdir(parents=True, exist_ok=True)
    made = group_commit_for(factory, sync="filesystem", instances_dir=store.root)
    assert made is not None and made.files_unsynced
    yield made
    made.close()


def _record_unsynced(group: GroupCommit, store: InstanceStore, instance: InstanceHeader) -> bool:
    """Record ``instance`` as the listener does with one flush per batch: its file written unsynced."""
    stored = store.write(
        bytes(12), instance.study_instance_uid, instance.series_instance_uid, instance.sop_instance_uid, sync=False
    )
    item = new_instance(
        group.database, instance, stored, patient_key=instance_patient_key(instance, stored), calling_ae="MODALITY",
        reopen_study=True, now=T0,
    )  # fmt: skip
    assert item is not None, "the study and series are known to this process"
    return group.record(item)


def _wal_pages(database: Path) -> list[int]:
    """The page numbers of the WAL's valid frames (those of the header's salt), in order."""
    wal = Path(f"{database}-wal").read_bytes()
    page_size, salts = struct.unpack(">I", wal[8:12])[0], wal[16:24]
    pages, offset = [], 32
    while offset + 24 + page_size <= len(wal) and wal[offset + 8 : offset + 16] == salts:
        pages.append(struct.unpack(">I", wal[offset : offset + 4])[0])
        offset += 24 + page_size
    return pages


def _btree_of_page(database: Path) -> dict[int, str]:
    with closing(sqlite3.connect(database)) as connection:
        return dict(connection.execute("SELECT pageno, name FROM dbstat"))


def test_the_common_instance_writes_one_page_of_each_btree_it_must_change(
    factory: sessionmaker[Session], store: InstanceStore, flushing_group: GroupCommit
) -> None:
    """Each B-tree a transaction changes costs a 4 KiB page in the WAL, which the flush writes to
    disk: per received instance.  The frames of one instance's transaction are read out of the WAL
    and each page named by its B-tree (SQLite's ``dbstat``), so an index added over the
    instance's path shows up here as a cost, not only in ``bench/listener_phases.py``."""
    database = Path(str(factory.kw["bind"].url.database))
    first, *more = (header(STUDY, f"{STUDY}.{n}") for n in range(1, 5))
    assert _general(factory, store, first)  # the study and series become known to this process
    for instance in more[:-1]:  # batches listed, and unlisted by the next
        assert _record_unsynced(flushing_group, store, instance)
    with closing(sqlite3.connect(database)) as connection:
        busy, _log, _moved = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0 and Path(f"{database}-wal").stat().st_size == 0

    assert _record_unsynced(flushing_group, store, more[-1])

    pages = _wal_pages(database)
    owners = _btree_of_page(database)
    written = {owners[page] for page in pages} - {"sqlite_schema"}  # page 1: the file's size, as it grows
    assert written == WRITTEN_PER_INSTANCE
    assert len(pages) <= len(WRITTEN_PER_INSTANCE) + 1
