"""The build task against a real database: every pre-state, each output built on its own, a
failure named in plain words, and the sweep queuing again a build whose message was lost."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pydicom
import pytest
from celery import Celery
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from radassist.config import DicomDestination, Settings
from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Draft, Event, Instance, Job, Series, Study
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState
from tests.dicom_factories import make_ct_study, write_study
from tests.workers.test_tasks import app, session  # noqa: F401 - fixtures
from workers.app import make_celery

PACS = DicomDestination(kind="dicom", name="pacs", ae_title="PACS", host="127.0.0.1", port=104)
OLD_PACS = DicomDestination(kind="dicom", name="old", ae_title="OLD", host="127.0.0.1", port=105, sr_class="basic")


def _with_outputs(settings: Settings, *destinations: DicomDestination, ris: bool = True) -> Settings:
    update_ = {"destinations": destinations}
    if ris:
        update_["hl7"] = settings.hl7.model_copy(update={"host": "127.0.0.1", "port": 2575})
    configured = settings.model_copy(update=update_)
    make_celery(configured)
    return configured


def drafted_job(session: Session, settings: Settings, tmp_path: Path, **study_kw: Any) -> Job:  # noqa: F811
    """A stored CT study whose job is drafted, as the draft task leaves it."""
    instances = make_ct_study(series_count=1, instances_per_series=2, **study_kw)
    study = Study(study_instance_uid=str(instances[0].StudyInstanceUID), state=StudyState.COMPLETE)
    session.add(study)
    session.flush()
    series = Series(study_id=study.id, series_instance_uid=str(instances[0].SeriesInstanceUID))
    session.add(series)
    session.flush()
    folder = settings.storage.instances_dir / study.id.hex
    for path, ds in zip(write_study(instances, folder), instances, strict=True):
        session.add(Instance(series_id=series.id, study_id=study.id, sop_instance_uid=str(ds.SOPInstanceUID),
                             sop_class_uid=str(ds.SOPClassUID), transfer_syntax_uid="1.2.840.10008.1.2.1",
                             path=f"{study.id.hex}/{path.name}", size_bytes=path.stat().st_size))
    job = Job(study_id=study.id, state=JobState.DRAFTED, model_name="tiny", attempts=1, drafted_at=utcnow())
    session.add(job)
    session.flush()
    session.add(Draft(job_id=job.id, findings="Lungs are clear.", impression="Normal.", raw_text="", model_name="tiny",
                      prompt="", prompt_version="2", generation={"indication": "Cough."}))
    session.commit()
    return job


def _deliveries(session: Session, job: Job) -> dict[tuple[DeliveryChannel, str], Delivery]:  # noqa: F811
    session.expire_all()
    return {(d.channel, d.destination): d for d in session.scalars(select(Delivery).where(Delivery.job_id == job.id))}


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.DRAFTING, JobState.DELIVERING, JobState.DONE,
                                   JobState.FAILED, JobState.CANCELLED, JobState.NEEDS_REVIEW, JobState.DISCARDED])
def test_build_task_leaves_a_job_that_is_not_drafted_alone(
    app: Celery, session: Session, migrated_settings: Settings, tmp_path: Path, state: JobState  # noqa: F811
) -> None:
    from workers.tasks.build import build_outputs

    settings = _with_outputs(migrated_settings, PACS)
    job = drafted_job(session, settings, tmp_path)
    session.execute(update(Job).where(Job.id == job.id).values(state=state))
    session.commit()
    build_outputs.apply(args=(str(job.id),)).get()
    session.expire_all()
    assert session.get(Job, job.id).state is state  # type: ignore[union-attr]
    assert _deliveries(session, job) == {}


def test_build_fills_the_outbox_once(
    app: Celery, session: Session, migrated_settings: Settings, tmp_path: Path  # noqa: F811
) -> None:
    from workers.tasks.build import build_outputs

    settings = _with_outputs(migrated_settings, PACS, OLD_PACS)
    job = drafted_job(session, settings, tmp_path)
    build_outputs.apply(args=(str(job.id),)).get()
    build_outputs.apply(args=(str(job.id),)).get()  # a duplicated message builds nothing more
    rows = _deliveries(session, job)
    assert set(rows) == {(DeliveryChannel.SR, "pacs"), (DeliveryChannel.SR, "old"), (DeliveryChannel.HL7, "ris")}
    assert {d.state for d in rows.values()} == {DeliveryState.PENDING}
    assert rows[(DeliveryChannel.HL7, "ris")].control_id == job.id.hex[:20]
    reloaded = session.get(Job, job.id)
    assert reloaded is not None and reloaded.state is JobState.DELIVERING
    assert reloaded.sr_path == rows[(DeliveryChannel.SR, "pacs")].payload_path


def test_an_oru_that_cannot_be_built_is_held_alone_in_plain_words(
    app: Celery, session: Session, migrated_settings: Settings, tmp_path: Path  # noqa: F811
) -> None:
    """A study without a Patient ID: the SR goes to the PACS, the ORU (which the RIS files by it) is held
    with the reason (an admin may cancel it)."""
    from workers.tasks.build import build_outputs

    settings = _with_outputs(migrated_settings, PACS)
    job = drafted_job(session, settings, tmp_path, patient_id="")
    build_outputs.apply(args=(str(job.id),)).get()
    rows = _deliveries(session, job)
    assert rows[(DeliveryChannel.SR, "pacs")].state is DeliveryState.PENDING
    oru = rows[(DeliveryChannel.HL7, "ris")]
    assert oru.state is DeliveryState.HELD and oru.payload_path is None
    assert oru.last_error_code == "hl7.no_patient_id"
    assert oru.last_error_message == ("the ORU^R01 could not be built: the study has no PatientID, so the RIS "
                                      "could not file the result: no ORU^R01 was built; an admin may cancel it")
    assert session.get(Job, job.id).state is JobState.DELIVERING  # type: ignore[union-attr]
    tags = session.scalars(select(Event.tag).where(Event.job_id == job.id)).all()
    assert "job:output:held" in tags and "job:sr:built" in tags


def test_one_sr_class_failing_leaves_the_others(
    app: Celery, session: Session, migrated_settings: Settings, tmp_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fault in the Basic Text SR's builder (injected) fails only the destination that takes that class."""
    from radassist.outputs import sr as sr_outputs
    from workers.tasks.build import build_outputs

    real = sr_outputs.build_draft_sr

    def broken_basic(*args: Any, **kwargs: Any) -> pydicom.Dataset:
        if kwargs["sr_class"] == "basic":
            raise KeyError("ContentSequence")
        return real(*args, **kwargs)

    monkeypatch.setattr(sr_outputs, "build_draft_sr", broken_basic)
    settings = _with_outputs(migrated_settings, PACS, OLD_PACS, ris=False)
    job = drafted_job(session, settings, tmp_path)
    build_outputs.apply(args=(str(job.id),)).get()
    rows = _deliveries(session, job)
    assert rows[(DeliveryChannel.SR, "pacs")].state is DeliveryState.PENDING
    old = rows[(DeliveryChannel.SR, "old")]
    assert old.state is DeliveryState.FAILED
    assert old.last_error_message == ("the Basic Text SR could not be built: an unexpected error in the builder "
                                      "(KeyError, a fault of RadAssist or a library it uses); the worker log has "
                                      "the traceback")


def test_unreadable_sources_fail_every_output_and_the_job(
    app: Celery, session: Session, migrated_settings: Settings, tmp_path: Path  # noqa: F811
) -> None:
    from workers.tasks.build import build_outputs

    settings = _with_outputs(migrated_settings, PACS)
    job = drafted_job(session, settings, tmp_path)
    for path in (settings.storage.instances_dir / job.study_id.hex).iterdir():
        path.unlink()
    build_outputs.apply(args=(str(job.id),)).get()
    rows = _deliveries(session, job)
    assert {d.state for d in rows.values()} == {DeliveryState.FAILED}
    assert rows[(DeliveryChannel.SR, "pacs")].last_error_message == (
        "the Enhanced SR could not be built: a received instance file is missing from the store")
    reloaded = session.get(Job, job.id)
    assert reloaded is not None and reloaded.state is JobState.FAILED and reloaded.error_code == "output.build"
    assert "sr to pacs: the Enhanced SR could not be built" in (reloaded.error_message or "")


def test_a_job_with_nothing_to_send_is_done(
    app: Celery, session: Session, migrated_settings: Settings, tmp_path: Path  # noqa: F811
) -> None:
    from workers.tasks.build import build_outputs

    settings = _with_outputs(migrated_settings, ris=False)
    job = drafted_job(session, settings, tmp_path)
    build_outputs.apply(args=(str(job.id),)).get()
    session.expire_all()
    reloaded = session.get(Job, job.id)
    assert reloaded is not None and reloaded.state is JobState.DONE and reloaded.sr_path is not None
    assert _deliveries(session, job) == {}


@pytest.fixture
def sent_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from radassist.broker import BUILD_TASK
    from tests.workers.sweep_sends import record_sweep_sends

    return record_sweep_sends(monkeypatch)[BUILD_TASK]


def test_the_sweep_queues_again_a_build_whose_message_was_lost(
    app: Celery, session: Session, migrated_settings: Settings, tmp_path: Path,  # noqa: F811
    sent_builds: list[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from radassist.outputs.recover import LOST_BUILD_GRACE_S
    from workers.tasks import sweep as sweep_module

    stale, fresh = drafted_job(session, migrated_settings, tmp_path), drafted_job(session, migrated_settings, tmp_path)
    session.execute(update(Job).where(Job.id == stale.id)
                    .values(drafted_at=utcnow() - dt.timedelta(seconds=LOST_BUILD_GRACE_S + 5)))
    session.commit()
    monkeypatch.setattr(sweep_module, "_queue_depth", lambda task, queue: 2)  # a busy io queue: wait
    sweep_module.sweep.apply().get()
    assert sent_builds == []
    monkeypatch.setattr(sweep_module, "_queue_depth", lambda task, queue: 0)
    sweep_module.sweep.apply().get()
    assert sent_builds == [str(stale.id)] and str(fresh.id) not in sent_builds
