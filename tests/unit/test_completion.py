"""Study completion: quiet studies are claimed once, a late instance reopens, concurrent sweepers agree."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from radassist.completion.claim import claim_all, claim_complete_studies
from radassist.completion.supersede import NOT_YET_DELIVERING, SUPERSEDED_CODE
from radassist.config import PipelineSettings, RequiredSeries, Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Event, Job, Study
from radassist.intake.header import InstanceHeader
from radassist.intake.patient import PatientIdentity
from radassist.intake.record import record_instance
from radassist.states import JobState, StudyState
from radassist.store.instances import StoredFile

T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
QUIET = 10.0
MODEL = "test/model"


CR_CLASS = "1.2.840.10008.5.1.4.1.1.1"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33"
TEST_KEY = b"identity key of the tests......."
"""The key of :func:`radassist.intake.patient.patient_key` for files described by hand (no store root)."""
PATIENT = PatientIdentity(patient_id="PID-1", issuer="HOSP", name="DOE^JANE", birth_date="19600101")


def header(
    study: str,
    sop: str,
    series: str | None = None,
    *,
    sop_class: str = CR_CLASS,
    modality: str = "CR",
    series_description: str | None = None,
    patient: PatientIdentity = PATIENT,
) -> InstanceHeader:
    """An instance's header; its series is the study's first (``<study>.1000``) unless named."""
    return InstanceHeader(
        study_instance_uid=study,
        series_instance_uid=series or f"{study}.1000",
        sop_instance_uid=sop,
        sop_class_uid=sop_class,
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        modality=modality,
        study_description=None,
        series_description=series_description,
        series_number=1,
        instance_number=1,
        accession_number="ACC1",
        patient_digest=patient.digest(),
    )


def receive(
    factory: sessionmaker[Session],
    study: str,
    sop: str,
    at: dt.datetime,
    *,
    called_ae: str = "RADASSIST",
    reopen_study: bool = True,
    **fields: str,
) -> bool:
    with factory() as session:
        new = record_instance(
            session,
            header(study, sop, **fields),
            StoredFile(f"x/{sop}.dcm", 10),
            calling_ae="MOD",
            called_ae=called_ae,
            now=at,
            reopen_study=reopen_study,
            identity_key=TEST_KEY,
        )
        session.commit()
        return new


def claim(factory: sessionmaker[Session], at: dt.datetime) -> list[uuid.UUID]:
    with factory() as session:
        ids = claim_complete_studies(session, now=at, quiet_seconds=QUIET, model_name=MODEL)
        session.commit()
        return ids


def test_quiet_study_gets_exactly_one_job(factory: sessionmaker[Session]) -> None:
    assert receive(factory, "1.2.3", "1.2.3.1.1", T0)
    assert receive(factory, "1.2.3", "1.2.3.1.2", T0 + dt.timedelta(seconds=3))

    assert claim(factory, T0 + dt.timedelta(seconds=12)) == []  # 9 s quiet: not yet
    jobs = claim(factory, T0 + dt.timedelta(seconds=13))
    assert len(jobs) == 1
    assert claim(factory, T0 + dt.timedelta(seconds=60)) == []

    with factory() as session:
        study = session.scalars(select(Study)).one()
        assert study.state == StudyState.COMPLETE
        assert study.instance_count == 2
        assert study.completed_at == T0 + dt.timedelta(seconds=13)
        assert study.accession_number_hash is not None and "ACC1" not in study.accession_number_hash
        job = session.get(Job, jobs[0])
        assert job is not None and job.state == JobState.QUEUED and job.model_name == MODEL
        tags = [e.tag for e in session.scalars(select(Event).order_by(Event.id))]
        assert tags.count("study:complete") == 1 and tags.count("job:queued") == 1


def test_late_instance_reopens_and_queues_a_second_job(factory: sessionmaker[Session]) -> None:
    receive(factory, "1.2.4", "1.2.4.1.1", T0)
    first = claim(factory, T0 + dt.timedelta(seconds=20))
    assert len(first) == 1

    # A re-send of a known instance changes nothing ...
    assert not receive(factory, "1.2.4", "1.2.4.1.1", T0 + dt.timedelta(seconds=30))
    with factory() as session:
        assert session.scalars(select(Study)).one().state == StudyState.COMPLETE
    # ... a new one reopens the study.
    assert receive(factory, "1.2.4", "1.2.4.1.2", T0 + dt.timedelta(seconds=40))
    with factory() as session:
        study = session.scalars(select(Study)).one()
        assert study.state == StudyState.RECEIVING
        assert study.completed_at is None
        assert study.instance_count == 2
        reopened = session.scalar(
            select(func.count()).select_from(Event).where(Event.tag == "study:reopened")
        )
        assert reopened == 1

    assert claim(factory, T0 + dt.timedelta(seconds=45)) == []
    second = claim(factory, T0 + dt.timedelta(seconds=51))
    assert len(second) == 1 and second != first
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 2


def test_instance_arriving_after_selection_wins(factory: sessionmaker[Session]) -> None:
    """The claim is compare-and-set on last_received_at: a study that just got an instance stays open."""
    receive(factory, "1.2.5", "1.2.5.1.1", T0)
    receive(factory, "1.2.5", "1.2.5.1.2", T0 + dt.timedelta(seconds=15))
    assert claim(factory, T0 + dt.timedelta(seconds=20)) == []
    with factory() as session:
        assert session.scalars(select(Study)).one().state == StudyState.RECEIVING


def test_concurrent_sweepers_queue_one_job_per_study(factory: sessionmaker[Session]) -> None:
    studies = [f"1.2.6.{n}" for n in range(8)]
    for study in studies:
        receive(factory, study, f"{study}.1", T0)
    barrier = threading.Barrier(3)
    results: list[list[uuid.UUID]] = []
    errors: list[BaseException] = []

    def sweeper() -> None:
        try:
            barrier.wait()
            results.append(claim(factory, T0 + dt.timedelta(seconds=30)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweeper) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    claimed = [job for batch in results for job in batch]
    assert len(claimed) == len(studies) == len(set(claimed))
    with factory() as session:
        per_study = session.execute(select(Job.study_id, func.count()).group_by(Job.study_id)).all()
        assert len(per_study) == len(studies) and all(n == 1 for _, n in per_study)


def test_postgres_locked_candidate_is_skipped_then_not_claimed_twice(
    make_settings: Callable[..., Settings], postgres_url: str
) -> None:
    """Two sweepers in open transactions on PostgreSQL: the second skips the row the first holds."""
    from radassist.db.migrate import upgrade

    settings = make_settings(database_url=postgres_url)
    upgrade(settings)
    one, two = make_sessionmaker(settings), make_sessionmaker(settings)
    try:
        receive(one, "1.2.7", "1.2.7.1.1", T0)
        at = T0 + dt.timedelta(seconds=30)
        with one() as first, two() as second:
            claimed = claim_complete_studies(first, now=at, quiet_seconds=QUIET, model_name=MODEL)
            assert len(claimed) == 1
            # The first has not committed: the second skips the locked row instead of waiting.
            assert claim_complete_studies(second, now=at, quiet_seconds=QUIET, model_name=MODEL) == []
            second.rollback()
            first.commit()
            # After the commit the study is complete: still no second job.
            assert claim_complete_studies(second, now=at, quiet_seconds=QUIET, model_name=MODEL) == []
            second.commit()
        with one() as session:
            assert session.scalar(select(func.count()).select_from(Job)) == 1
    finally:
        one.kw["bind"].dispose()
        two.kw["bind"].dispose()


def test_claim_rejects_naive_time(factory: sessionmaker[Session]) -> None:
    with factory() as session, pytest.raises(ValueError, match="now"):
        claim_complete_studies(session, now=dt.datetime(2026, 1, 1), quiet_seconds=1, model_name=MODEL)


def _set_state(factory: sessionmaker[Session], job_id: uuid.UUID, state: JobState) -> None:
    with factory() as session:
        session.execute(update(Job).where(Job.id == job_id).values(state=state))
        session.commit()


def _grown(factory: sessionmaker[Session], study: str, first_state: JobState) -> tuple[uuid.UUID, uuid.UUID]:
    """A study drafted once (its job then ``first_state``), grown by one instance and claimed again:
    the two jobs' ids."""
    receive(factory, study, f"{study}.1", T0)
    (first,) = claim(factory, T0 + dt.timedelta(seconds=20))
    _set_state(factory, first, first_state)
    receive(factory, study, f"{study}.2", T0 + dt.timedelta(seconds=40))
    (second,) = claim(factory, T0 + dt.timedelta(seconds=60))
    return first, second


@pytest.mark.parametrize("first_state", [JobState.DONE, JobState.DELIVERING])
def test_redraft_of_a_grown_study_supersedes_the_job_whose_sr_went_out(
    factory: sessionmaker[Session], first_state: JobState
) -> None:
    """A job already delivering is left to finish: its SR is out, or on its way."""
    first, second = _grown(factory, "1.3.1", first_state)
    with factory() as session:
        assert session.get(Job, first).supersedes_job_id is None  # type: ignore[union-attr]
        assert session.get(Job, second).supersedes_job_id == first  # type: ignore[union-attr]
        assert session.get(Job, first).state is first_state  # type: ignore[union-attr]
        assert session.scalars(select(Event).where(Event.tag == "job:cancelled")).all() == []


@pytest.mark.parametrize("state", list(NOT_YET_DELIVERING))
def test_a_grown_studys_new_job_cancels_the_earlier_one_not_yet_delivering(
    factory: sessionmaker[Session], state: JobState
) -> None:
    """Its draft would describe part of the study, and could reach the RIS after the whole study's."""
    first, second = _grown(factory, "1.3.3", JobState.DONE)
    _set_state(factory, second, state)
    receive(factory, "1.3.3", "1.3.3.3", T0 + dt.timedelta(seconds=80))
    (third,) = claim(factory, T0 + dt.timedelta(seconds=100))
    with factory() as session:
        cancelled = session.get(Job, second)
        assert cancelled is not None and cancelled.state is JobState.CANCELLED
        assert cancelled.error_code == SUPERSEDED_CODE and cancelled.finished_at is not None
        # the cancelled job built no SR: the new one supersedes the one whose SR went out
        assert session.get(Job, third).supersedes_job_id == first  # type: ignore[union-attr]
        assert session.get(Job, first).state is JobState.DONE  # type: ignore[union-attr]
        (event,) = session.scalars(select(Event).where(Event.tag == "job:cancelled")).all()
        assert event.job_id == second
        assert event.detail == {"reason": SUPERSEDED_CODE, "superseded_by": str(third)}
        queued = session.scalars(select(Event).where(Event.tag == "job:queued", Event.job_id == third)).one()
        assert queued.detail["supersedes_job_id"] == str(first)


def test_a_grown_studys_claim_replaces_its_earlier_shadow_jobs_not_yet_drafted(factory: sessionmaker[Session]) -> None:
    """A shadow draft of part of the study would be measured against the whole study's report."""
    def claim_with_shadow(at: dt.datetime) -> list[uuid.UUID]:
        with factory() as session:
            ids = claim_complete_studies(session, now=at, quiet_seconds=QUIET, model_name=MODEL,
                                         shadow_models=("shadow-a", "shadow-b"))
            session.commit()
            return ids

    receive(factory, "1.3.4", "1.3.4.1", T0)
    first, drafted_shadow, waiting_shadow = claim_with_shadow(T0 + dt.timedelta(seconds=20))
    _set_state(factory, first, JobState.DONE)
    _set_state(factory, drafted_shadow, JobState.DONE)
    receive(factory, "1.3.4", "1.3.4.2", T0 + dt.timedelta(seconds=40))
    second, *new_shadows = claim_with_shadow(T0 + dt.timedelta(seconds=60))
    with factory() as session:
        states = {j: session.get(Job, j).state for j in (drafted_shadow, waiting_shadow, *new_shadows)}  # type: ignore[union-attr]
        assert states == {drafted_shadow: JobState.DONE, waiting_shadow: JobState.CANCELLED,
                          **dict.fromkeys(new_shadows, JobState.QUEUED)}
        assert session.get(Job, waiting_shadow).error_code == SUPERSEDED_CODE  # type: ignore[union-attr]
        (event,) = session.scalars(select(Event).where(Event.tag == "job:cancelled")).all()
        assert event.job_id == waiting_shadow and event.detail["superseded_by"] == str(second)
        assert session.get(Job, second).supersedes_job_id == first  # type: ignore[union-attr]


def test_our_own_sr_coming_back_does_not_reopen(factory: sessionmaker[Session]) -> None:
    receive(factory, "1.3.2", "1.3.2.1", T0)
    (job_id,) = claim(factory, T0 + dt.timedelta(seconds=20))
    with factory() as session:
        session.get(Job, job_id).sr_sop_instance_uid = "2.25.42"  # type: ignore[union-attr]
        session.commit()
    # The PACS sends our SR back (auto-routing): stored, but the study stays complete.
    assert receive(factory, "1.3.2", "2.25.42", T0 + dt.timedelta(seconds=30), series="9.9", sop_class=SR_CLASS)
    # A key object from the modality (reopen_study False, as the listener decides for non-images) neither.
    assert receive(factory, "1.3.2", "1.3.2.9", T0 + dt.timedelta(seconds=31), reopen_study=False)
    assert claim(factory, T0 + dt.timedelta(seconds=90)) == []
    with factory() as session:
        assert session.scalars(select(Study)).one().state == StudyState.COMPLETE
        assert session.scalar(select(func.count()).select_from(Job)) == 1


def test_required_series_wait_then_series_timer_then_force(factory: sessionmaker[Session]) -> None:
    rules = (RequiredSeries(modality="CT", description_pattern="lung"),)

    def claim_with(at: dt.datetime) -> list[uuid.UUID]:
        with factory() as session:
            ids = claim_complete_studies(
                session, now=at, quiet_seconds=QUIET, model_name=MODEL, required_series=rules,
                series_quiet_seconds=2, force_complete_after_seconds=600,
            )
            session.commit()
            return ids

    # Study A has only a soft-tissue series: it waits past the quiet time, until forced.
    receive(factory, "1.3.3", "1.3.3.1", T0, series="1.3.3.100", modality="CT", series_description="Soft tissue")
    assert claim_with(T0 + dt.timedelta(seconds=60)) == []
    # Study B has its lung series: the short series timer completes it.
    receive(factory, "1.3.4", "1.3.4.1", T0 + dt.timedelta(seconds=60), series="1.3.4.100", modality="CT",
            series_description="LUNG 1mm")
    assert len(claim_with(T0 + dt.timedelta(seconds=63))) == 1
    assert len(claim_with(T0 + dt.timedelta(seconds=601))) == 1
    with factory() as session:
        reasons = sorted(
            e.detail["reason"] for e in session.scalars(select(Event).where(Event.tag == "study:complete"))
        )
        assert reasons == ["forced", "series_quiet"]


def test_each_pipeline_uses_its_quiet_time_and_model(
    factory: sessionmaker[Session], migrated_settings: Settings
) -> None:
    settings = migrated_settings.model_copy(
        update={"pipelines": (PipelineSettings(ae_title="FAST_AI", model_name="fast/model", study_quiet_seconds=2, priority=5),)}
    )
    receive(factory, "1.3.5", "1.3.5.1", T0, called_ae="FAST_AI")
    receive(factory, "1.3.6", "1.3.6.1", T0, called_ae="RADASSIST")
    with factory() as session:
        (fast,) = claim_all(session, settings, now=T0 + dt.timedelta(seconds=3))
        session.commit()
        assert session.get(Job, fast).model_name == "fast/model"  # type: ignore[union-attr]
    quiet = settings.dicom.study_quiet_seconds
    with factory() as session:
        (default,) = claim_all(session, settings, now=T0 + dt.timedelta(seconds=quiet + 1))
        session.commit()
        assert session.get(Job, default).model_name == settings.model.name  # type: ignore[union-attr]
