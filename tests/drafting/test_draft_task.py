"""The draft task against a real database: batching of queued jobs, failed outputs, the record kept."""

from __future__ import annotations

import copy
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from celery import Celery
from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Delivery, Draft, Event, Instance, Job, Series, Study
from radassist.models import loader
from radassist.states import JobState, StudyState
from tests.conftest import migrate
from tests.drafting.conftest import prepare, write_ct_series
from workers.app import make_celery
from workers.base import reset_sessionmaker


@pytest.fixture
def make_app(
    make_settings: Callable[..., Settings], database_url: str, tiny_models: dict[str, Path]
) -> Iterator[Callable[..., tuple[Celery, Settings]]]:
    made: list[Settings] = []

    def factory(**overrides: object) -> tuple[Celery, Settings]:
        settings = make_settings(database_url=database_url, model_name=str(tiny_models["gemma3"]),
                                 model_local_files_only="true", model_image_size="64", **overrides)
        migrate(settings)
        made.append(settings)
        reset_sessionmaker()
        loader.clear_cache()
        return make_celery(settings), settings

    yield factory
    reset_sessionmaker()
    loader.clear_cache()


def add_study(session: Session, settings: Settings, files: list[Path]) -> Job:
    """A complete study whose instances are the given files (copied into the store), and its queued job."""
    study = Study(study_instance_uid=generate_uid(), state=StudyState.COMPLETE, accession_number_hash=uuid.uuid4().hex[:16])
    session.add(study)
    session.flush()
    series = Series(study_id=study.id, series_instance_uid=generate_uid())
    session.add(series)
    session.flush()
    folder = settings.storage.instances_dir / study.id.hex
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        ds = pydicom.dcmread(file, stop_before_pixels=True)
        shutil.copy(file, folder / file.name)
        session.add(Instance(series_id=series.id, study_id=study.id, sop_instance_uid=str(ds.SOPInstanceUID),
                             sop_class_uid=str(ds.SOPClassUID), transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
                             path=f"{study.id.hex}/{file.name}", size_bytes=file.stat().st_size))
    job = Job(study_id=study.id, state=JobState.QUEUED, model_name=settings.model.name)
    session.add(job)
    session.commit()
    return job


def cr_copy(testdata: Path, folder: Path) -> Path:
    ds = pydicom.dcmread(testdata / "pydicom-data" / "RG1_J2KR.dcm")
    ds = copy.deepcopy(ds)
    ds.StudyInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path)
    return path


def test_queued_jobs_are_drafted_as_one_batch(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path
) -> None:
    from workers.tasks.draft import draft_study

    _, settings = make_app(model_batch_size="3", model_max_slices="4")
    maker = make_sessionmaker(settings)
    with maker() as session:
        jobs = [add_study(session, settings, [cr_copy(testdata, tmp_path / f"cr{i}")]) for i in range(2)]
        jobs.append(add_study(session, settings, write_ct_series(tmp_path / "ct", 40, size=16)))
        job_ids = [j.id for j in jobs]
        # The RIS's order for the first study (radassist.hl7 stores it by accession hash).
        from radassist.db.tables import Order

        first = session.get(Study, jobs[0].study_id)
        assert first is not None
        session.add(Order(accession_number_hash=first.accession_number_hash, indication="Fever and cough",
                          priority="S", procedure_text="XR CHEST 2 VIEWS"))
        session.commit()
    prepare(*job_ids)
    with maker() as session:
        assert {session.get(Job, j).state for j in job_ids} == {JobState.PREPARED}  # type: ignore[union-attr]
    draft_study.apply(args=(str(job_ids[0]),)).get()
    with maker() as session:
        for job_id in job_ids:
            job = session.get(Job, job_id)
            # The drafting worker only drafts: the outputs are built by the next task, on the io queue.
            assert job is not None and job.state is JobState.DRAFTED, job.error_code
            assert job.attempts == 1 and job.sr_path is None
            draft = session.scalars(select(Draft).where(Draft.job_id == job_id)).one()
            assert draft.generation["batch_size"] == 3
            assert draft.generation["consistency_warnings"] == []
            assert draft.prompt_version == "3" and "Findings:" in draft.prompt
        ct_draft = session.scalars(select(Draft).where(Draft.job_id == job_ids[2])).one()
        assert ct_draft.generation["profile"] == "ct_chest"
        assert ct_draft.generation["series_chosen"]["slices_total"] == 40
        assert ct_draft.generation["series_chosen"]["slices_shown"] == 4
        assert "lung, soft-tissue and bone windows" in ct_draft.prompt
        cr_draft = session.scalars(select(Draft).where(Draft.job_id == job_ids[0])).one()
        assert cr_draft.generation["profile"] == "cxr" and cr_draft.generation["image_labels"] == ["PA"]
        assert "64 years" in cr_draft.prompt
        assert "Indication: Fever and cough." in cr_draft.prompt
        assert "Requested procedure: XR CHEST 2 VIEWS." in cr_draft.prompt and "Priority: S." in cr_draft.prompt
        assert cr_draft.generation["order_context_used"] is True
    # The other jobs' own messages find nothing to do.
    draft_study.apply(args=(str(job_ids[1]),)).get()
    with maker() as session:
        started = session.scalars(select(Event).where(Event.job_id == job_ids[1], Event.tag == "job:draft:started")).all()
        assert len(started) == 1 and started[0].detail["batch"] == 3
    # Building the outputs of a job with no destination and no RIS: its SR is kept, and the job is done.
    from workers.tasks.build import build_outputs

    build_outputs.apply(args=(str(job_ids[2]),)).get()
    with maker() as session:
        job = session.get(Job, job_ids[2])
        assert job is not None and job.state is JobState.DONE and job.sr_path is not None
    maker.kw["bind"].dispose()


def test_truncated_output_is_held_for_review_without_sr_or_oru(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path
) -> None:
    from workers.tasks.build import build_outputs
    from workers.tasks.draft import draft_study

    _, settings = make_app(model_max_new_tokens="3", hl7_host="127.0.0.1")
    maker = make_sessionmaker(settings)
    with maker() as session:
        job_id = add_study(session, settings, [cr_copy(testdata, tmp_path / "cr")]).id
    prepare(job_id)
    draft_study.apply(args=(str(job_id),)).get()
    build_outputs.apply(args=(str(job_id),)).get()  # a stray build message builds nothing for a held draft
    with maker() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.NEEDS_REVIEW
        assert job.error_code is None and job.sr_path is None
        draft = session.scalars(select(Draft).where(Draft.job_id == job_id)).one()
        assert [(w["check"], w["policy"]) for w in draft.warnings] == [("truncated", "hold")]
        assert draft.warning_checks == " truncated "
        assert session.scalars(select(Delivery).where(Delivery.job_id == job_id)).all() == []
        tags = session.scalars(select(Event.tag).where(Event.job_id == job_id).order_by(Event.id)).all()
        assert tags[-2:] == ["job:draft:completed", "job:draft:held"]
    maker.kw["bind"].dispose()


def test_unreachable_model_server_requeues_then_fails(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path
) -> None:
    """A transient failure (model server down) hands the job back to prepared (its inputs kept), until the
    attempts run out."""
    from radassist.drafting.record import MAX_TRANSIENT_ATTEMPTS
    from tests.conftest import free_port
    from workers.tasks.draft import draft_study

    _, settings = make_app(model_backend="openai", model_url=f"http://127.0.0.1:{free_port()}/v1")
    maker = make_sessionmaker(settings)
    with maker() as session:
        job_id = add_study(session, settings, [cr_copy(testdata, tmp_path / "cr")]).id
    prepare(job_id)
    for attempt in range(1, MAX_TRANSIENT_ATTEMPTS + 1):
        draft_study.apply(args=(str(job_id),)).get()
        with maker() as session:
            job = session.get(Job, job_id)
            assert job is not None and job.attempts == attempt
            assert job.error_code == "model.server_unreachable"
            expected = JobState.PREPARED if attempt < MAX_TRANSIENT_ATTEMPTS else JobState.FAILED
            assert job.state is expected
    with maker() as session:
        tags = [e.tag for e in session.scalars(select(Event).where(Event.job_id == job_id).order_by(Event.id))]
        assert tags.count("job:requeued") == MAX_TRANSIENT_ATTEMPTS - 1 and tags[-1] == "job:failed"
    maker.kw["bind"].dispose()


def test_each_job_is_drafted_with_the_model_of_its_pipeline(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """``[[pipelines]] model_name`` reaches the drafting worker through the job (``jobs.model_name``)."""
    from workers.tasks.draft import draft_study

    _, settings = make_app(model_batch_size="2")
    maker = make_sessionmaker(settings)
    with maker() as session:
        default_job = add_study(session, settings, [cr_copy(testdata, tmp_path / "a")])
        other_job = add_study(session, settings, [cr_copy(testdata, tmp_path / "b")])
        session.get(Job, other_job.id).model_name = str(tiny_models["llava"])  # type: ignore[union-attr]
        session.commit()
    prepare(default_job.id, other_job.id)
    for job in (default_job, other_job):
        draft_study.apply(args=(str(job.id),)).get()
    with maker() as session:
        drafts = {d.job_id: d for d in session.scalars(select(Draft))}
        assert drafts[default_job.id].model_name == tiny_models["gemma3"].name
        assert drafts[other_job.id].model_name == tiny_models["llava"].name
        # Jobs of different models are never drafted in one batch.
        assert {d.generation["batch_size"] for d in drafts.values()} == {1}
    maker.kw["bind"].dispose()
