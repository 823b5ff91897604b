"""Live measurement: finals sent by python-hl7's MLLP client to the real ``hl7_node`` listener, for
drafted studies, become stored metrics; a correction re-measures; nothing is measured twice.

Each test runs on SQLite and on PostgreSQL.  The measure task runs eagerly here; one test sends it
through the broker to a real ``radassist worker --queues cpu``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config import Hl7Settings, Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import DraftMeasurement, Event, Report, Study
from radassist.measuring.find import drafts_to_measure
from radassist.measuring.record import MEASURE_FAILED, measure_draft
from radassist.quality import compare_pair
from radassist.quality.normalise import draft_report
from radassist.states import JobState
from tests.conftest import wait_until
from tests.hl7.test_inbound import RunningListener
from tests.quality.live import (
    CORRECTED_NORMAL,
    MISSED_PNEUMOTHORAX,
    NORMAL_FINDINGS,
    NORMAL_IMPRESSION,
    add_drafted_study,
    oru,
)
from workers.app import make_celery
from workers.base import reset_sessionmaker


@pytest.fixture
def app(migrated_settings: Settings) -> Iterator[Celery]:
    reset_sessionmaker()
    yield make_celery(migrated_settings)
    reset_sessionmaker()


@pytest.fixture
def ris(migrated_settings: Settings) -> Iterator[RunningListener]:
    with RunningListener(migrated_settings, Hl7Settings(accession_field="OBR-18")) as running:
        yield running


@pytest.fixture
def session(migrated_settings: Settings) -> Iterator[Session]:
    maker = make_sessionmaker(migrated_settings)
    with maker() as session:
        yield session
    maker.kw["bind"].dispose()


def _acked(ris: RunningListener, message: str) -> None:
    ack = ris.send(message)
    assert str(ack.segment("MSA")[1]) == "AA", str(ack)


def _measurements(session: Session) -> list[DraftMeasurement]:
    session.rollback()  # a fresh transaction sees what other connections committed
    return list(session.scalars(select(DraftMeasurement).order_by(DraftMeasurement.measured_at)))


def test_a_final_over_mllp_is_measured_and_a_correction_takes_over(
    app: Celery, ris: RunningListener, session: Session, migrated_settings: Settings
) -> None:
    from workers.tasks.measure import measure

    drafted = add_drafted_study(session, "ACC-LIVE-1")
    assert drafts_to_measure(session, 10) == []  # no final yet

    _acked(ris, oru(drafted.accession, MISSED_PNEUMOTHORAX, control_id="ORU-F-1"))
    assert drafts_to_measure(session, 10) == [drafted.draft_id]
    measure.apply(args=(str(drafted.draft_id),)).get()

    (first,) = _measurements(session)
    expected = compare_pair(draft_report(NORMAL_FINDINGS, NORMAL_IMPRESSION), MISSED_PNEUMOTHORAX, "cxr",
                            migrated_settings.quality)
    assert first.current and first.error_code is None and not first.shadow
    assert first.critical_miss is True and expected.critical_misses == ("Pneumothorax",)
    assert first.metrics is not None and first.metrics["critical_misses"] == ["Pneumothorax"]
    assert first.finding_f1 == 0.0  # the draft said "no finding", the final a pneumothorax: nothing in common
    assert first.edit_rate == pytest.approx(expected.text.edit_rate) and first.edit_rate > 0.5
    assert first.rouge_l == pytest.approx(expected.text.rouge_l)
    assert first.labeler == "rule" and first.vocabulary == "chexpert"
    assert (first.model_name, first.model_revision, first.prompt_version, first.profile) == (
        "tiny-main", "r1", "v-test", "cxr")
    assert (first.modality, first.calling_ae_title, first.patient_sex, first.age_band) == ("CR", "MODALITY", "F",
                                                                                           "60-79")
    assert drafts_to_measure(session, 10) == []
    measure.apply(args=(str(drafted.draft_id),)).get()  # a duplicated message changes nothing
    assert len(_measurements(session)) == 1

    # The radiologist corrects the report: the same draft is measured again, against the correction.
    _acked(ris, oru(drafted.accession, CORRECTED_NORMAL, control_id="ORU-C-1", status="C"))
    assert drafts_to_measure(session, 10) == [drafted.draft_id]
    measure.apply(args=(str(drafted.draft_id),)).get()
    old, new = _measurements(session)
    assert (old.id, old.current) == (first.id, False)
    assert new.current and new.critical_miss is False and new.finding_f1 == 1.0
    corrected = session.scalars(select(Report).where(Report.status == "C")).one()
    assert new.report_id == corrected.id
    tags = [e.tag for e in session.scalars(select(Event).where(Event.job_id == drafted.job_id))]
    assert tags.count("quality:pair:measured") == 2


def test_a_draft_written_after_its_final_is_measured(
    app: Celery, ris: RunningListener, session: Session
) -> None:
    from workers.tasks.measure import measure

    first = add_drafted_study(session, "ACC-LIVE-2")
    _acked(ris, oru(first.accession, MISSED_PNEUMOTHORAX, control_id="ORU-F-2"))
    measure.apply(args=(str(first.draft_id),)).get()
    # A re-draft (another job of the same study) and a shadow model's draft arrive after the final.
    study = session.get(Study, first.study_id)
    redraft = add_drafted_study(session, first.accession, study=study, findings="Left apical pneumothorax.",
                                impression="Pneumothorax.")
    shadow = add_drafted_study(session, first.accession, study=study, model_name="tiny-shadow", shadow=True)
    assert sorted(drafts_to_measure(session, 10)) == sorted([redraft.draft_id, shadow.draft_id])
    for drafted in (redraft, shadow):
        measure.apply(args=(str(drafted.draft_id),)).get()
    rows = {m.draft_id: m for m in _measurements(session)}
    assert rows[redraft.draft_id].critical_miss is False and rows[redraft.draft_id].finding_f1 == 1.0
    assert rows[shadow.draft_id].shadow and rows[shadow.draft_id].model_name == "tiny-shadow"
    assert rows[shadow.draft_id].critical_miss is True
    assert drafts_to_measure(session, 10) == []


def test_the_draft_of_a_job_superseded_by_a_grown_study_is_not_measured(
    ris: RunningListener, session: Session
) -> None:
    """Drafted from part of the study and never sent, it would count against its model for images it
    was never shown; a job an admin cancelled drafted the whole study and is measured."""
    from sqlalchemy import update

    from radassist.completion.supersede import SUPERSEDED_CODE
    from radassist.db.tables import Job

    partial = add_drafted_study(session, "ACC-LIVE-S")
    study = session.get(Study, partial.study_id)
    whole = add_drafted_study(session, partial.accession, study=study)
    by_admin = add_drafted_study(session, partial.accession, study=study)
    for drafted, code in ((partial, SUPERSEDED_CODE), (by_admin, None)):
        session.execute(update(Job).where(Job.id == drafted.job_id).values(state=JobState.CANCELLED, error_code=code))
    session.commit()
    _acked(ris, oru(partial.accession, NORMAL_FINDINGS, control_id="ORU-F-S"))
    assert sorted(drafts_to_measure(session, 10)) == sorted([whole.draft_id, by_admin.draft_id])


def test_a_pair_that_cannot_be_measured_is_stored_once_with_its_code(
    ris: RunningListener, session: Session, migrated_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    drafted = add_drafted_study(session, "ACC-LIVE-3")
    _acked(ris, oru(drafted.accession, MISSED_PNEUMOTHORAX, control_id="ORU-F-3"))

    def broken(draft: str, final: str, profile: str):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"library failure quoting the report: {final}")

    from radassist.db.base import utcnow

    measured = measure_draft(session, drafted.draft_id, migrated_settings.quality, broken, utcnow())
    session.commit()
    assert measured is not None and measured.error_code == MEASURE_FAILED
    (row,) = _measurements(session)
    assert row.metrics is None and row.finding_f1 is None and row.error_code == MEASURE_FAILED
    assert drafts_to_measure(session, 10) == []  # not tried again at every sweep
    assert "pneumothorax" not in caplog.text.lower()


def test_the_quality_sweep_sends_finals_to_a_real_cpu_worker(
    app: Celery, ris: RunningListener, session: Session, migrated_settings: Settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from workers.tasks.measure import quality_sweep

    drafted = [add_drafted_study(session, f"ACC-CPU-{n}") for n in range(3)]
    for n, d in enumerate(drafted):
        _acked(ris, oru(d.accession, MISSED_PNEUMOTHORAX if n else CORRECTED_NORMAL, control_id=f"ORU-W-{n}"))
    quality_sweep.apply().get()  # queues radassist.measure on the cpu queue (the embedded broker)
    quality_sweep.apply().get()  # the queue is not empty: nothing is queued twice

    env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
    env.update({"RADASSIST_STORAGE_PATH": str(migrated_settings.storage.path),
                "RADASSIST_DATABASE_URL": migrated_settings.database_url})
    worker = subprocess.Popen(
        [sys.executable, "-m", "radassist", "worker", "--queues", "cpu", "--concurrency", "1", "--name", "cpu-test"],
        env=env, stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT,
    )
    try:
        rows = wait_until(lambda: len(found := _measurements(session)) == 3 and found, timeout=120, interval=0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert sorted(bool(r.critical_miss) for r in rows) == [False, True, True]
    assert "SENTINEL" not in (tmp_path / "worker.log").read_text()
