"""The priors stage's rows and states on both databases: where a job starts, what drafting may claim,
the sweep's hand-back, a cancelled job, the sink's records, priors received by our listener (C-MOVE),
retention, and the admin's re-draft."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pydicom
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radassist import actions
from radassist.broker import PREPARE_TASK, PRIORS_TASK
from radassist.completion.claim import claim_all
from radassist.config import Settings
from radassist.config.priors import DicomPriorSource, PriorsSettings
from radassist.config.quality import ShadowSettings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Event, Instance, Job, JobPrior, PriorSearch, Study
from radassist.drafting.claim import claim_batch
from radassist.intake.header import parse_header
from radassist.intake.record import record_instance
from radassist.prefetch.record import StartedSearch, record_search, start_search, waits_for_its_study_job
from radassist.prefetch.recover import LOST_SEARCH_GRACE_S, hand_back_lost
from radassist.prefetch.sink import PriorStore
from radassist.prefetch.start import first_job_state, first_task
from radassist.priors import FetchedInstance, PriorsResult, PriorStudy
from radassist.priors.results import ChosenStudy
from radassist.retention.candidates import done_studies
from radassist.states import JobState, StudyState
from radassist.store.instances import InstanceStore
from tests.priors.factories import make_cxr_study, part10

SOURCE = DicomPriorSource(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=1)


@pytest.fixture
def with_sources(migrated_settings: Settings) -> Settings:
    return migrated_settings.model_copy(update={"prior_sources": (SOURCE,), "priors": PriorsSettings(time_limit_seconds=5)})


@pytest.fixture
def sessions(migrated_settings: Settings) -> Iterator[sessionmaker[Session]]:
    maker = make_sessionmaker(migrated_settings)
    yield maker
    maker.kw["bind"].dispose()


def _receive(settings: Settings, sessions: sessionmaker[Session], when: dt.datetime, **kw: str) -> str:
    """A chest radiograph recorded as the listener records it; its Study Instance UID."""
    store = InstanceStore(settings.storage.instances_dir)
    datasets = make_cxr_study(when, **kw)
    for ds in datasets:
        data = part10(ds)
        header = parse_header(data, str(ds.file_meta.TransferSyntaxUID))
        stored = store.write(data, header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid)
        with sessions() as session:
            record_instance(session, header, stored, calling_ae="MODALITY", called_ae="RADASSIST", now=utcnow())
            session.commit()
    return str(datasets[0].StudyInstanceUID)


def _complete(settings: Settings, sessions: sessionmaker[Session]) -> list[uuid.UUID]:
    with sessions() as session:
        ids = claim_all(session, settings, now=utcnow() + dt.timedelta(hours=1))
        session.commit()
    return ids


def _job(sessions: sessionmaker[Session], job_id: uuid.UUID) -> Job:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def test_a_job_starts_with_its_priors_only_when_sources_are_configured(
    migrated_settings: Settings, with_sources: Settings, sessions: sessionmaker[Session]
) -> None:
    assert (first_job_state(migrated_settings), first_task(migrated_settings)) == (JobState.QUEUED, PREPARE_TASK)
    assert (first_job_state(with_sources), first_task(with_sources)) == (JobState.PRIORS, PRIORS_TASK)
    _receive(migrated_settings, sessions, dt.datetime(2024, 3, 14, 9, 0))
    [plain] = _complete(migrated_settings, sessions)
    _receive(with_sources, sessions, dt.datetime(2024, 3, 14, 10, 0))
    [searching] = _complete(with_sources, sessions)
    assert _job(sessions, plain).state is JobState.QUEUED
    assert _job(sessions, searching).state is JobState.PRIORS
    # Drafting never takes a job whose priors are still being fetched, not even as a batch mate.
    with sessions() as session:
        session.execute(Job.__table__.update().where(Job.id == plain).values(state=JobState.PREPARED))
        claimed = claim_batch(session, plain, with_sources, utcnow())
        session.commit()
    assert [c.job_id for c in claimed] == [plain]
    with sessions() as session:
        assert claim_batch(session, searching, with_sources, utcnow()) == []
    assert _job(sessions, searching).state is JobState.PRIORS


def test_the_outcome_is_recorded_once_and_never_for_a_cancelled_job(
    with_sources: Settings, sessions: sessionmaker[Session]
) -> None:
    _receive(with_sources, sessions, dt.datetime(2024, 3, 14, 9, 0))
    first, = _complete(with_sources, sessions)
    now = utcnow()
    with sessions() as session:
        started = start_search(session, first, now)
        session.commit()
    assert started is not None and _job(sessions, first).started_at is not None
    result = PriorsResult.unavailable("priors.none_found", elapsed_seconds=0.2, sources_tried=("archive",))
    with sessions() as session:
        assert record_search(session, started, result, profile="cxr", study_ids={}, now=now)
        session.commit()
    with sessions() as session:  # a second run of the same search (a redelivered message) writes nothing
        assert not record_search(session, started, result, profile="cxr", study_ids={}, now=now)
        assert start_search(session, first, now) is None
        session.commit()
        assert session.scalars(select(PriorSearch.reason_code).where(PriorSearch.job_id == first)).all() == [
            "priors.none_found"]
        event = session.scalars(select(Event).where(Event.job_id == first, Event.tag == "job:priors:searched")).one()
        assert event.detail == {"found": 0, "code": "priors.none_found", "seconds": 0.2, "sources": ["archive"],
                                "profile": "cxr"}

    _receive(with_sources, sessions, dt.datetime(2024, 3, 15, 9, 0))
    second, = _complete(with_sources, sessions)
    with sessions() as session:
        started = start_search(session, second, now)
        session.commit()
    assert started is not None
    with sessions() as session:
        assert actions.cancel_job(session, second, "admin1").ok
        session.commit()
    with sessions() as session:
        assert not record_search(session, started, result, profile="cxr", study_ids={}, now=now)
        session.commit()
        assert session.get(PriorSearch, second) is None
    assert _job(sessions, second).state is JobState.CANCELLED


def test_the_sweep_sends_a_lost_search_again_once(with_sources: Settings, sessions: sessionmaker[Session]) -> None:
    _receive(with_sources, sessions, dt.datetime(2024, 3, 14, 9, 0))
    job_id, = _complete(with_sources, sessions)
    now = _job(sessions, job_id).created_at
    with sessions() as session:
        assert hand_back_lost(session, with_sources, now) == []  # its search has just been sent
    later = now + dt.timedelta(seconds=with_sources.priors.time_limit_seconds + LOST_SEARCH_GRACE_S + 5)
    with sessions() as session:
        assert hand_back_lost(session, with_sources, later) == [job_id]
        session.commit()
    with sessions() as session:
        assert hand_back_lost(session, with_sources, later) == []  # its clock was restarted
        assert session.scalars(select(Event.detail).where(Event.job_id == job_id, Event.tag == "job:requeued")).one()


def _fetched(ds: pydicom.Dataset) -> FetchedInstance:
    return FetchedInstance(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), part10(ds))


def test_fetched_priors_are_stored_like_received_instances_in_a_prior_study(
    with_sources: Settings, sessions: sessionmaker[Session]
) -> None:
    instances = InstanceStore(with_sources.storage.instances_dir)
    prior = make_cxr_study(dt.datetime(2023, 1, 10, 14, 0))
    store = PriorStore(sessions, instances, called_ae="RADASSIST")
    uid = str(prior[0].StudyInstanceUID)
    store.chosen(ChosenStudy(uid, dt.date(2023, 1, 10), "XR CHEST 2 VIEWS", "0123456789abcdef", ("DX",)))
    store(_fetched(prior[0]))
    store(_fetched(prior[0]))  # the same image again: idempotent
    store(FetchedInstance(uid, "1.2.3", "1.2.3.4", b"not dicom"))  # skipped, never fatal
    assert (store.stored, store.skipped) == (2, 1)
    with sessions() as session:
        study = session.scalars(select(Study).where(Study.study_instance_uid == uid)).one()
        assert study.state is StudyState.PRIOR and study.instance_count == 1
        assert (study.modality, study.study_description, study.calling_ae_title) == ("DX", "XR CHEST 2 VIEWS", "PRIORS")
        assert store.study_ids == {uid: study.id}
        [path] = session.scalars(select(Instance.path).where(Instance.study_id == study.id)).all()
    assert instances.path(path).read_bytes() == part10(prior[0])
    # Images a C-MOVE sends to our listener land in the prior study, which nothing completes.
    _receive_into(with_sources, sessions, prior[1])
    assert _complete(with_sources, sessions) == []
    with sessions() as session:
        study = session.scalars(select(Study).where(Study.study_instance_uid == uid)).one()
        assert study.state is StudyState.PRIOR and study.instance_count == 2
        assert session.scalars(select(Job).where(Job.study_id == study.id)).all() == []


def _receive_into(settings: Settings, sessions: sessionmaker[Session], ds: pydicom.Dataset) -> None:
    data = part10(ds)
    header = parse_header(data, str(ds.file_meta.TransferSyntaxUID))
    stored = InstanceStore(settings.storage.instances_dir).write(data, header.study_instance_uid,
                                                                 header.series_instance_uid, header.sop_instance_uid)
    with sessions() as session:  # as the listener records it: an image may reopen a study
        record_instance(session, header, stored, calling_ae="ARCHIVE", called_ae="RADASSIST", now=utcnow(),
                        reopen_study=True)
        session.commit()


def test_retention_keeps_a_prior_while_a_job_compares_with_it(
    with_sources: Settings, sessions: sessionmaker[Session]
) -> None:
    prior = make_cxr_study(dt.datetime(2023, 1, 10, 14, 0))
    store = PriorStore(sessions, InstanceStore(with_sources.storage.instances_dir), called_ae="RADASSIST")
    store(_fetched(prior[0]))
    prior_id = store.study_ids[str(prior[0].StudyInstanceUID)]
    _receive(with_sources, sessions, dt.datetime(2024, 3, 14, 9, 0))
    job_id, = _complete(with_sources, sessions)
    now = utcnow()
    with sessions() as session:
        started = start_search(session, job_id, now)
        assert started is not None
        result = PriorsResult.unavailable("priors.none_found")
        record_search(session, StartedSearch(job_id, started.study_id, ""), result, profile=None,
                      study_ids={}, now=now)
        session.add(JobPrior(job_id=job_id, rank=0, prior_study_id=prior_id, study_instance_uid="1.2", source="a",
                             sop_instance_uids=[]))
        session.commit()

    def candidates() -> list[uuid.UUID]:
        with sessions() as session:
            return [row.id for row in session.execute(done_studies(done_before=now + dt.timedelta(days=30)))]

    assert prior_id not in candidates()  # its job is queued: the prior's files stay
    with sessions() as session:
        session.execute(Job.__table__.update().where(Job.id == job_id).values(state=JobState.DONE, finished_at=now))
        session.commit()
    assert prior_id in candidates()


def test_the_admins_redraft_fetches_priors_first(with_sources: Settings, sessions: sessionmaker[Session]) -> None:
    _receive(with_sources, sessions, dt.datetime(2024, 3, 14, 9, 0))
    job_id, = _complete(with_sources, sessions)
    with sessions() as session:
        session.execute(Job.__table__.update().where(Job.id == job_id).values(state=JobState.FAILED))
        study_id = session.scalar(select(Job.study_id).where(Job.id == job_id))
        assert study_id is not None
        result = actions.redraft(session, study_id, "admin1", "m", priors=True)
        session.commit()
    assert result.ok and [d.task for d in result.dispatch] == [PRIORS_TASK] and result.dispatch[0].queue == "io"
    with sessions() as session:
        states = session.scalars(select(Job.state).where(Job.study_id == study_id)).all()
    assert sorted(states) == [JobState.FAILED, JobState.PRIORS]


def test_the_sweep_sends_new_jobs_and_lost_searches_to_the_priors_task(
    with_sources: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from radassist.broker import DRAFT_TASK, PRIORS_TASK
    from tests.workers.sweep_sends import record_sweep_sends
    from workers.app import make_celery
    from workers.base import reset_sessionmaker
    from workers.tasks.sweep import sweep

    settings = with_sources.model_copy(update={"dicom": with_sources.dicom.model_copy(update={"study_quiet_seconds": 0})})
    reset_sessionmaker()
    make_celery(settings)
    sent = record_sweep_sends(monkeypatch)
    searches, drafts = sent[PRIORS_TASK], sent[DRAFT_TASK]
    _receive(settings, sessions, dt.datetime(2024, 3, 14, 9, 0))
    sweep.apply().get()
    with sessions() as session:
        [job_id] = session.scalars(select(Job.id)).all()
    assert searches == [str(job_id)] and drafts == []
    with sessions() as session:  # its search lost its worker long ago: sent again, once
        session.execute(Job.__table__.update().where(Job.id == job_id)
                        .values(started_at=utcnow() - dt.timedelta(seconds=LOST_SEARCH_GRACE_S + 60)))
        session.commit()
    sweep.apply().get()
    sweep.apply().get()
    assert searches == [str(job_id), str(job_id)] and drafts == []
    reset_sessionmaker()


def test_a_shadow_job_takes_its_study_jobs_priors_instead_of_searching_again(
    with_sources: Settings, sessions: sessionmaker[Session]
) -> None:
    """The sources are asked once per study: the shadow job waits for the study's own job's search,
    gets a copy of its outcome (the same priors, so the two drafts are compared alike) and is queued
    with it.  When that job is cancelled before it records anything, the shadow searches on its own."""
    settings = with_sources.model_copy(update={"quality": with_sources.quality.model_copy(
        update={"shadows": (ShadowSettings(model_name="tiny-shadow"),)})})
    _receive(settings, sessions, dt.datetime(2024, 3, 14, 9, 0))
    main, shadow = _complete(settings, sessions)
    assert (_job(sessions, main).shadow, _job(sessions, shadow).shadow) == (False, True)
    now = utcnow()
    with sessions() as session:
        assert waits_for_its_study_job(session, shadow) and not waits_for_its_study_job(session, main)
        started = start_search(session, main, now)
        session.commit()
    assert started is not None
    prior = PriorStudy(source="archive", study_instance_uid="1.2.3.9", study_date=dt.date(2023, 1, 1),
                       study_time=None, study_description="CHEST", modalities=("CR",), accession_number_hash=None,
                       series_instance_uids=("1.2.3.9.0",), sop_instance_uids=("1.2.3.9.1",), delivery="handed",
                       report=None)
    result = PriorsResult(priors=(prior,), reason_code=None, reason="", elapsed_seconds=0.4,
                          sources_tried=("archive",))
    with sessions() as session:
        assert record_search(session, started, result, profile="cxr", study_ids={}, now=now) == [main, shadow]
        session.commit()
        assert not waits_for_its_study_job(session, shadow)
        assert start_search(session, shadow, now) is None  # its own message, arriving late, does nothing
        rows = session.execute(select(JobPrior.job_id, JobPrior.study_instance_uid)).all()
        assert sorted(rows) == sorted([(main, "1.2.3.9"), (shadow, "1.2.3.9")])
        shared = session.scalars(select(Event).where(Event.job_id == shadow, Event.tag == "job:priors:searched")).one()
        assert shared.detail["shared_from"] == str(main) and shared.detail["found"] == 1
    assert (_job(sessions, main).state, _job(sessions, shadow).state) == (JobState.QUEUED, JobState.QUEUED)

    _receive(settings, sessions, dt.datetime(2024, 3, 15, 9, 0))
    main, shadow = _complete(settings, sessions)
    with sessions() as session:
        assert actions.cancel_job(session, main, "admin1").ok
        session.commit()
        assert not waits_for_its_study_job(session, shadow)  # nothing to wait for: it searches itself
        assert start_search(session, shadow, now) is not None
