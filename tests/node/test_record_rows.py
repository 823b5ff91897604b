"""What recording an instance leaves in the database, step by step, on SQLite and on PostgreSQL.

SQLite runs the statements of :mod:`radassist.intake.record` one by one; PostgreSQL runs
them folded into one (:mod:`radassist.intake.record_postgresql`).  The same story must leave the
same rows and the same timeline on both, including the case only PostgreSQL can meet: a re-send
whose first copy commits while the re-send's statement waits.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Event, Instance, Job, Series, Study
from radassist.intake.record import record_instance
from radassist.states import StudyState
from radassist.store.instances import StoredFile
from tests.unit.test_completion import SR_CLASS, TEST_KEY, header

T0 = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
STUDY = "1.2.826.0.1.3680043.9.7.1"


def _at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _record(factory: sessionmaker[Session], sop: str, seconds: int, size: int = 10, **options: Any) -> bool:
    """Record an instance whose file (as the store names it) differs by ``size``: a different size is a revision."""
    reopen = options.pop("reopen_study", True)
    study = options.pop("study", STUDY)
    with factory() as session:
        new = record_instance(
            session,
            header(study, sop, **options),
            StoredFile(f"x/{sop}.{size}.dcm", size),
            calling_ae="MODALITY",
            called_ae="RADASSIST",
            now=_at(seconds),
            reopen_study=reopen,
            identity_key=TEST_KEY,
        )
        session.commit()
    return new


def _complete(factory: sessionmaker[Session], seconds: int) -> None:
    """What the completion sweeper does to a quiet study (the part these rows care about)."""
    with factory() as session:
        session.execute(update(Study).values(state=StudyState.COMPLETE, completed_at=_at(seconds)))
        session.commit()


def _study(factory: sessionmaker[Session]) -> Study:
    with factory() as session:
        return session.scalars(select(Study)).one()


def _timeline(factory: sessionmaker[Session]) -> list[tuple[str, dict[str, Any]]]:
    with factory() as session:
        return [(e.tag, e.detail) for e in session.scalars(select(Event).order_by(Event.id))]


@pytest.fixture
def factory(migrated_settings: Settings) -> Any:
    made = make_sessionmaker(migrated_settings)
    yield made
    made.kw["bind"].dispose()


def test_a_study_s_story_leaves_the_same_rows_on_both_databases(factory: sessionmaker[Session]) -> None:
    assert _record(factory, "1.1", 0)
    assert _record(factory, "1.2", 5, modality="CT")  # the study keeps its first modality
    study = _study(factory)
    assert (study.state, study.instance_count, study.last_received_at, study.modality) == (
        StudyState.RECEIVING, 2, _at(5), "CR")

    # A revision (other bytes) while receiving: no count, a later last_received_at, the newest file counts.
    assert not _record(factory, "1.1", 8, size=99)
    study = _study(factory)
    assert (study.instance_count, study.last_received_at) == (2, _at(8))
    # An instance stamped earlier than the last one (another association's clock) never moves time back.
    assert _record(factory, "1.3", 6)
    assert _study(factory).last_received_at == _at(8)

    # Complete; a re-send of the same bytes changes nothing on the study; a new image reopens it.
    _complete(factory, 30)
    assert not _record(factory, "1.2", 40)
    study = _study(factory)
    assert (study.state, study.completed_at, study.last_received_at, study.instance_count) == (
        StudyState.COMPLETE, _at(30), _at(8), 3)
    assert _record(factory, "1.4", 50)
    study = _study(factory)
    assert (study.state, study.completed_at, study.last_received_at, study.instance_count) == (
        StudyState.RECEIVING, None, _at(50), 4)

    # Complete again; a non-image (no re-draft wanted) and our own SR coming back are counted, no reopen.
    _complete(factory, 80)
    with factory() as session:
        session.add(Job(study_id=_study(factory).id, model_name="m", sr_sop_instance_uid="2.25.7"))
        session.commit()
    assert _record(factory, "1.5", 90, reopen_study=False)
    assert _record(factory, "2.25.7", 91, series="9.9", sop_class=SR_CLASS)
    study = _study(factory)
    assert (study.state, study.completed_at, study.instance_count, study.last_received_at) == (
        StudyState.COMPLETE, _at(80), 6, _at(91))
    # Someone else's SR into a complete study is new material: it reopens.
    assert _record(factory, "2.25.8", 95, series="9.9", sop_class=SR_CLASS)
    assert _study(factory).state == StudyState.RECEIVING

    with factory() as session:
        counts = {s.series_instance_uid: s.instance_count for s in session.scalars(select(Series))}
        instances = {i.sop_instance_uid: i for i in session.scalars(select(Instance))}
    assert counts == {f"{STUDY}.1000": 5, "9.9": 2}
    assert (instances["1.1"].path, instances["1.1"].size_bytes) == ("x/1.1.99.dcm", 99)
    assert instances["1.1"].received_at == _at(0)  # the first arrival, kept

    timeline = _timeline(factory)
    assert [tag for tag, _ in timeline] == [
        "study:instance:received",  # 1.1
        "study:instance:received",  # 1.2
        "study:instance:revised",  # 1.1 again, other bytes
        "study:instance:received",  # 1.3
        "study:instance:received",  # 1.2 again, study complete
        "study:reopened",
        "study:instance:received",  # 1.4
        "study:instance:received",  # 1.5
        "study:instance:received",  # our SR
        "study:reopened",
        "study:instance:received",  # another SR
    ]
    received = [detail for tag, detail in timeline if tag == "study:instance:received"]
    assert [d["duplicate"] for d in received] == [False, False, False, True, False, False, False, False]
    assert received[3]["instance_id"] == received[1]["instance_id"] == str(instances["1.2"].id)
    revised = [detail for tag, detail in timeline if tag == "study:instance:revised"]
    assert revised == [{k: v for k, v in {**received[0], "size_bytes": 99}.items() if k != "duplicate"}]
    assert received[0] == {
        "series_id": str(instances["1.1"].series_id),
        "instance_id": str(instances["1.1"].id),
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.1",
        "size_bytes": 10,
        "calling_ae": "MODALITY",
        "duplicate": False,
    }


def test_a_resend_whose_first_copy_commits_meanwhile_is_a_resend(postgres_url: str, make_settings: Any) -> None:
    """PostgreSQL only: the re-send's statement waits on the first copy's uncommitted row; when that
    commits, the one statement inserted nothing, and the recorder must read the committed row and
    take the re-send for what it is, rather than lose the instance or count it twice."""
    from radassist.db.migrate import upgrade

    settings = make_settings(database_url=postgres_url)
    upgrade(settings)
    factory = make_sessionmaker(settings)
    try:
        assert _record(factory, "1.1", 0)  # the study and series exist, their ids cached
        first_copy = factory()
        first_copy.connection()
        record_instance(first_copy, header(STUDY, "1.9"), StoredFile("x/1.9.77.dcm", 77),
                        calling_ae="MODALITY", called_ae="RADASSIST", now=_at(1), identity_key=TEST_KEY)
        # ... not committed yet.  The re-send comes in on another association:
        outcome: list[bool | BaseException] = []

        def resend() -> None:
            try:
                outcome.append(_record(factory, "1.9", 2, size=77))
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome.append(exc)

        thread = threading.Thread(target=resend)
        thread.start()
        _wait_for_lock_wait(factory)
        first_copy.commit()
        first_copy.close()
        thread.join(60)
        assert outcome == [False]
        study = _study(factory)
        assert study.instance_count == 2
        with factory() as session:
            row = session.scalars(select(Instance).where(Instance.sop_instance_uid == "1.9")).one()
            assert (row.path, row.size_bytes) == ("x/1.9.77.dcm", 77)
        received = [d for tag, d in _timeline(factory) if tag == "study:instance:received"]
        assert [d["duplicate"] for d in received] == [False, False, True]
        assert received[2]["instance_id"] == str(row.id)
    finally:
        factory.kw["bind"].dispose()


def _wait_for_lock_wait(factory: sessionmaker[Session], timeout: float = 30) -> None:
    """Until some session of this database waits on a lock (the re-send behind the first copy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as session:
            waiting = session.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ))
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError(f"no session waited on a lock within {timeout} s")
