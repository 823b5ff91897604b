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
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from radassist.completion.claim import claim_complete_studies
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import AuditEntry, Delivery, Event, Instance, Job, Series, Study
from radassist.errors import RejectedInput
from radassist.intake.identity import Resolution, resolve_identity_conflict
from radassist.intake.patient import PatientIdentity
from radassist.intake.record import record_instance
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState
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
        thread, outcome = _record_meanwhile(factory, "1.9", 2, size=77)
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


def test_an_instance_sent_while_its_new_study_is_uncommitted_is_counted(postgres_url: str, make_settings: Any) -> None:
    """PostgreSQL only: two associations send the first instances of a new study at once.  The first
    one's transaction creates the study's and the series' rows; the second one's instance must be
    counted in both, however their transactions interleave.

    The interleaving that lost a count (the study said 11 instances where 12 were stored): the second
    statement took its snapshot while the first transaction was uncommitted, so it found no study or
    series row to count in; the first committed while that statement waited (here: on a third
    transaction's uncommitted instance with the same SOP Instance UID, which then rolls back); and the
    statement's foreign-key checks, run at its end, found the rows by then.  It can only happen if the
    second transaction knows the new rows' ids before they are committed."""
    from radassist.db.migrate import upgrade

    settings = make_settings(database_url=postgres_url)
    upgrade(settings)
    factory = make_sessionmaker(settings)
    recorded = {"calling_ae": "MODALITY", "called_ae": "RADASSIST", "identity_key": TEST_KEY}
    try:
        assert _record(factory, "2.1", 0, study=OTHER_STUDY)  # a committed study for the third's row
        first, third = factory(), factory()
        assert record_instance(first, header(STUDY, "1.1"), StoredFile("x/1.1.10.dcm", 10), now=_at(1), **recorded)
        assert record_instance(third, header(OTHER_STUDY, "1.2"), StoredFile("x/1.2.10.dcm", 10), now=_at(1),
                               **recorded)
        # Neither is committed.  The second association's instance:
        thread, outcome = _record_meanwhile(factory, "1.2", 2)
        _wait_for_lock_wait(factory)
        first.commit()
        first.close()
        third.rollback()
        third.close()
        thread.join(60)
        assert outcome == [True]
        with factory() as session:
            study = session.scalars(select(Study).where(Study.study_instance_uid == STUDY)).one()
            assert study.instance_count == 2
            assert session.scalars(select(Series).where(Series.study_id == study.id)).one().instance_count == 2
    finally:
        factory.kw["bind"].dispose()


def _record_meanwhile(
    factory: sessionmaker[Session], sop: str, seconds: int, **options: Any
) -> tuple[threading.Thread, list[bool | BaseException]]:
    """Record an instance on a thread of its own (another association): the thread, and the list
    its outcome (or exception) is in once it ends."""
    outcome: list[bool | BaseException] = []

    def record() -> None:
        try:
            outcome.append(_record(factory, sop, seconds, **options))
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            outcome.append(exc)

    thread = threading.Thread(target=record)
    thread.start()
    return thread, outcome


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


# --- identity: never the wrong patient ----------------------------------------------------------

OTHER_PATIENT = PatientIdentity(patient_id="PID-2", issuer="HOSP", name="ROE^RICHARD", birth_date="19700202")
OTHER_STUDY = "1.2.826.0.1.3680043.9.7.2"


def _refused(factory: sessionmaker[Session], sop: str, seconds: int, **options: Any) -> RejectedInput:
    with pytest.raises(RejectedInput) as info:
        _record(factory, sop, seconds, **options)
    assert info.value.code == "intake.identity_conflict"
    assert "PID" not in str(info.value) and "RICHARD" not in str(info.value)
    return info.value


def _rows(factory: sessionmaker[Session]) -> dict[str, tuple[Any, ...]]:
    """Every instance row (by SOP Instance UID) as study UID, series UID, path, size, patient key."""
    with factory() as session:
        return {
            row[0]: tuple(row[1:])
            for row in session.execute(
                select(Instance.sop_instance_uid, Study.study_instance_uid, Series.series_instance_uid,
                       Instance.path, Instance.size_bytes, Instance.patient_key)
                .join(Series, Series.id == Instance.series_id).join(Study, Study.id == Instance.study_id)
            )
        }


@pytest.mark.parametrize(
    ("differs", "options"),
    [
        ("study", {"study": OTHER_STUDY}),
        ("study", {"study": OTHER_STUDY, "patient": OTHER_PATIENT}),
        ("patient", {"patient": OTHER_PATIENT, "size": 11}),
        ("series", {"series": f"{STUDY}.2000", "size": 11}),
        ("sop_class", {"sop_class": SR_CLASS, "size": 11}),
        ("series_in_other_study", {"study": OTHER_STUDY, "series": f"{STUDY}.1000"}),
    ],
)
def test_a_reused_uid_is_refused_and_the_first_study_stays_untouched(
    factory: sessionmaker[Session], differs: str, options: dict[str, Any]
) -> None:
    assert _record(factory, "1.1", 0)
    _complete(factory, 30)
    before = (_rows(factory), _study(factory).state, _study(factory).instance_count)

    sop = "1.2" if differs == "series_in_other_study" else "1.1"
    _refused(factory, sop, 40, **options)

    assert (_rows(factory), _study(factory).state, _study(factory).instance_count) == before
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Study)) == 1  # the second study was not kept
    refused = [(tag, d) for tag, d in _timeline(factory) if tag == "study:instance:identity_refused"]
    assert refused == [("study:instance:identity_refused",
                        {"code": "intake.identity_conflict", "differs": differs, "calling_ae": "MODALITY"})]


def test_the_same_instance_again_is_an_idempotent_success(factory: sessionmaker[Session]) -> None:
    assert _record(factory, "1.1", 0)
    _complete(factory, 30)
    assert not _record(factory, "1.1", 40)
    assert not _record(factory, "1.1", 41)
    study = _study(factory)
    assert (study.state, study.instance_count, study.last_received_at) == (StudyState.COMPLETE, 1, _at(0))
    assert [d["duplicate"] for t, d in _timeline(factory) if t == "study:instance:received"] == [False, True, True]


def test_a_revision_keeps_the_newest_file_and_redrafts(factory: sessionmaker[Session]) -> None:
    """The policy for other bytes under a known UID, same study, series, class and patient: the row
    points to the newest file (the store keeps both), and a complete study is reopened."""
    assert _record(factory, "1.1", 0)
    assert _record(factory, "1.2", 1)
    _complete(factory, 30)
    assert not _record(factory, "1.1", 40, size=12)
    study = _study(factory)
    assert (study.state, study.instance_count, study.last_received_at) == (StudyState.RECEIVING, 2, _at(40))
    assert _rows(factory)["1.1"][2:4] == ("x/1.1.12.dcm", 12)
    assert [t for t, _ in _timeline(factory)][-2:] == ["study:reopened", "study:instance:revised"]


def test_another_patient_in_a_study_holds_it_until_an_admin_resolves(factory: sessionmaker[Session]) -> None:
    assert _record(factory, "1.1", 0)
    _complete(factory, 30)
    with factory() as session:
        job = Job(study_id=_study(factory).id, model_name="m", state=JobState.DELIVERING)
        session.add(job)
        session.flush()
        session.add(Delivery(job_id=job.id, channel=DeliveryChannel.HL7, destination="ris"))
        session.commit()
        job_id = job.id

    assert _record(factory, "1.2", 40, patient=OTHER_PATIENT)  # stored: nothing accepted is lost
    assert _record(factory, "1.3", 41)  # later instances keep it held, whoever they name
    assert _record(factory, "1.4", 42, patient=PatientIdentity())  # a document naming no one
    study = _study(factory)
    assert (study.state, study.instance_count) == (StudyState.IDENTITY_CONFLICT, 4)
    with factory() as session:
        job_row = session.get(Job, job_id)
        assert job_row is not None and (job_row.state, job_row.error_code) == (
            JobState.CANCELLED, "intake.identity_conflict")
        assert session.scalars(select(Delivery.state)).all() == [DeliveryState.CANCELLED]
        # Never claimed: no draft, no SR, no ORU.
        assert claim_complete_studies(session, now=_at(10_000), quiet_seconds=1, model_name="m") == []
    tags = [t for t, _ in _timeline(factory)]
    assert tags.count("study:identity:conflict") == 1 and "job:cancelled" in tags

    rows = _rows(factory)
    with factory() as session:
        ids = {uid: id_ for uid, id_ in session.execute(select(Instance.sop_instance_uid, Instance.id))}
        refused = resolve_identity_conflict(session, study.id, "admin", keep_instance_id=uuid.uuid4(),
                                            resolution="drop_others")
        assert not refused.ok
        result = resolve_identity_conflict(session, study.id, "admin", keep_instance_id=ids["1.1"],
                                           resolution=Resolution.DROP_OTHERS)
        session.commit()
    assert result.ok and result.removed_paths == (rows["1.2"][2],)
    assert set(_rows(factory)) == {"1.1", "1.3", "1.4"}
    study = _study(factory)
    assert (study.state, study.instance_count) == (StudyState.RECEIVING, 3)
    with factory() as session:
        audit = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(a.action, a.outcome, a.user_name) for a in audit] == [
            ("resolve_identity", "refused", "admin"), ("resolve_identity", "done", "admin")]
        assert session.scalar(select(Series.instance_count)) == 3
        # The resolved study is drafted as any other once quiet.
        later = study.last_received_at + dt.timedelta(seconds=5)
        assert len(claim_complete_studies(session, now=later, quiet_seconds=1, model_name="m")) == 1
    assert "study:identity:resolved" in [t for t, _ in _timeline(factory)]


def test_same_patient_resolution_keeps_every_instance(factory: sessionmaker[Session]) -> None:
    assert _record(factory, "1.1", 0)
    spelled = PatientIdentity(patient_id="PID-1", issuer="HOSP", name="DOE^JANE^M", birth_date="19600101")
    assert _record(factory, "1.2", 1, patient=spelled)
    assert _study(factory).state == StudyState.IDENTITY_CONFLICT
    with factory() as session:
        kept = session.scalar(select(Instance.id).where(Instance.sop_instance_uid == "1.1"))
        assert kept is not None
        result = resolve_identity_conflict(session, _study(factory).id, "admin", keep_instance_id=kept,
                                           resolution="same_patient")
        session.commit()
    assert result.ok and result.removed_paths == ()
    keys = {row[4] for row in _rows(factory).values()}
    assert len(keys) == 1 and keys == {_study(factory).patient_key}
    # From now on the study's patient is the kept instance's identity, as the admin chose.
    assert _record(factory, "1.3", 2)
    assert _study(factory).state == StudyState.RECEIVING


def test_names_are_compared_as_a_person_would(factory: sessionmaker[Session]) -> None:
    """Padding, empty trailing name components and letter case do not make another patient."""
    assert _record(factory, "1.1", 0)
    same = PatientIdentity(patient_id=" PID-1 ", issuer="HOSP", name="doe^jane^^^", birth_date="19600101")
    assert _record(factory, "1.2", 1, patient=same)
    # A document naming no patient at all names no other one; a missing birth date does differ.
    assert _record(factory, "1.4", 2, patient=PatientIdentity())
    assert _study(factory).state == StudyState.RECEIVING
    assert _record(factory, "1.5", 3, patient=PatientIdentity(patient_id="PID-1", issuer="HOSP", name="DOE^JANE"))
    assert _study(factory).state == StudyState.IDENTITY_CONFLICT
    with factory() as session:
        stored = set(session.scalars(select(Instance.patient_key).where(Instance.sop_instance_uid < "1.4")))
        assert len(stored) == 1 and all(len(k) == 32 for k in stored)


def test_racing_senders_of_one_colliding_uid(factory: sessionmaker[Session]) -> None:
    """Two associations send the same SOP Instance UID at once, in two studies of two patients:
    exactly one is stored, the other refused, whichever wins."""
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def send(study: str, patient: PatientIdentity) -> None:
        barrier.wait()
        try:
            outcomes[study] = _record(factory, "1.5", 0, study=study, patient=patient)
        except RejectedInput as exc:
            outcomes[study] = exc.code

    threads = [threading.Thread(target=send, args=args)
               for args in ((STUDY, PatientIdentity(patient_id="A")), (OTHER_STUDY, OTHER_PATIENT))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(map(str, outcomes.values())) == ["True", "intake.identity_conflict"]
    winner = next(study for study, outcome in outcomes.items() if outcome is True)
    assert {sop: row[0] for sop, row in _rows(factory).items()} == {"1.5": winner}
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Study)) == 1
