"""Retention: the files of done studies go after their time, or oldest first when the disk runs short;
a study not yet delivered never goes.  Rules on both databases, then a real listener on a small disk."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import PipelineSettings, Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Delivery, Event, Instance, Job, Study
from radassist.intake.patient import PatientIdentity
from radassist.intake.record import record_instance
from radassist.read.retention import Freed, retention_summary
from radassist.retention.run import DiskUsage, run_retention
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState
from radassist.store.instances import InstanceStore
from radassist.store.outputs import OutputStore
from tests.node.conftest import Node, start_node  # noqa: F401  (fixture: an in-process listener)
from tests.unit.test_completion import header

MiB = 1024 * 1024


@pytest.fixture
def factory(migrated_settings: Settings) -> Iterator[sessionmaker[Session]]:
    made = make_sessionmaker(migrated_settings)
    yield made
    made.kw["bind"].dispose()


def _receive(settings: Settings, factory: sessionmaker[Session], study: str, *, count: int = 2, size: int = 1000,
             called_ae: str = "RADASSIST", patient: PatientIdentity | None = None, first: int = 1) -> uuid.UUID:
    """Store and record ``count`` instances of ``size`` bytes, as the listener does."""
    store = InstanceStore(settings.storage.instances_dir)
    for k in range(first, first + count):
        sop = f"{study}.{k}"
        stored = store.write(os.urandom(size), study, f"{study}.1000", sop)
        extra = {"patient": patient} if patient else {}
        with factory() as session:
            record_instance(session, header(study, sop, **extra), stored, calling_ae="MOD", called_ae=called_ae,
                            now=utcnow())
            session.commit()
    with factory() as session:
        study_id = session.scalar(select(Study.id).where(Study.study_instance_uid == study))
        assert study_id is not None
        return study_id


def _finish(settings: Settings, factory: sessionmaker[Session], study_id: uuid.UUID, *, hours_ago: float,
            job: JobState | None = JobState.DONE, delivery: DeliveryState = DeliveryState.DELIVERED) -> None:
    """Complete the study ``hours_ago``; its job (if any) in state ``job`` with one SR output and delivery."""
    at = utcnow() - dt.timedelta(hours=hours_ago)
    with factory() as session:
        session.execute(update(Study).where(Study.id == study_id).values(state=StudyState.COMPLETE, completed_at=at))
        if job is not None:
            row = Job(study_id=study_id, model_name="m", state=job, created_at=at,
                      finished_at=at if job in (JobState.DONE, JobState.FAILED) else None)
            session.add(row)
            session.flush()
            path = OutputStore(settings.storage.outputs_dir).write(row.id, "sr-pacs.dcm", b"SR" * 500)
            session.add(Delivery(job_id=row.id, channel=DeliveryChannel.SR, destination="pacs", state=delivery,
                                 payload_path=path))
        session.commit()


def _files(settings: Settings) -> int:
    return sum(1 for root in (settings.storage.instances_dir, settings.storage.outputs_dir)
               for p in root.rglob("*") if p.is_file())


def test_done_studies_go_after_their_time_and_undelivered_ones_never(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    from radassist.db.migrate import upgrade

    settings = make_settings(database_url=database_url, retention_pipeline_keep_done_hours="CT_AI=0.5",
                             retention_make_room="false")
    settings = settings.model_copy(update={"pipelines": (PipelineSettings(ae_title="CT_AI"),)})
    upgrade(settings)
    factory = make_sessionmaker(settings)
    try:
        ids = {name: _receive(settings, factory, f"1.2.9.{n}", called_ae="CT_AI" if name == "ct_ai" else "RADASSIST")
               for n, name in enumerate(["old", "recent", "failed", "delivering", "receiving", "held", "no_job",
                                         "ct_ai", "superseded"], start=1)}
        _finish(settings, factory, ids["old"], hours_ago=240)
        _finish(settings, factory, ids["recent"], hours_ago=1)
        _finish(settings, factory, ids["failed"], hours_ago=240, job=JobState.FAILED, delivery=DeliveryState.FAILED)
        _finish(settings, factory, ids["delivering"], hours_ago=240, job=JobState.DELIVERING,
                delivery=DeliveryState.PENDING)
        _receive(settings, factory, "1.2.9.6", count=1, first=3, patient=PatientIdentity(patient_id="SOMEONE-ELSE"))
        _finish(settings, factory, ids["no_job"], hours_ago=240, job=None)
        _finish(settings, factory, ids["ct_ai"], hours_ago=1)
        _finish(settings, factory, ids["superseded"], hours_ago=300, job=JobState.DELIVERING,
                delivery=DeliveryState.PENDING)
        _finish(settings, factory, ids["superseded"], hours_ago=240)  # a newer job is done, the older still sends
        with factory() as session:
            assert session.scalar(select(Study.state).where(Study.id == ids["held"])) == StudyState.IDENTITY_CONFLICT
        files_before = _files(settings)

        outcome = run_retention(factory, settings, now=utcnow())

        removed = {name for name, study_id in ids.items() if _removed_at(factory, study_id) is not None}
        assert removed == {"old", "no_job", "ct_ai"}
        assert outcome.by_age.studies == 3 and outcome.to_make_room == Freed()
        # Two instances and one SR output each (none for the study without a job), every byte counted.
        assert (outcome.by_age.files, outcome.by_age.bytes) == (8, 6 * 1000 + 2 * 1000)
        assert _files(settings) == files_before - 8
        store = InstanceStore(settings.storage.instances_dir)
        assert not store.path(store.study_folder("1.2.9.1")).exists()
        with factory() as session:
            assert session.scalar(select(func.count()).select_from(Instance).where(Instance.study_id == ids["old"])) == 0
            events = session.scalars(select(Event).where(Event.tag == "study:files:removed")).all()
            assert sorted(e.detail["reason"] for e in events) == ["age"] * 3
            summary = retention_summary(session, utcnow())
        assert summary.total == summary.last_day == Freed(3, 8, 8000)
        assert run_retention(factory, settings, now=utcnow()).by_age == Freed()  # nothing twice

        # The study sent again: files again, judged anew (reopened for a re-draft).
        _receive(settings, factory, "1.2.9.1", count=1)
        with factory() as session:
            again = session.get(Study, ids["old"])
            assert again is not None and again.files_removed_at is None and again.state == StudyState.RECEIVING
    finally:
        factory.kw["bind"].dispose()


def _removed_at(factory: sessionmaker[Session], study_id: uuid.UUID) -> dt.datetime | None:
    with factory() as session:
        return session.scalar(select(Study.files_removed_at).where(Study.id == study_id))


def test_short_of_space_the_oldest_done_go_first(migrated_settings: Settings, factory: sessionmaker[Session]) -> None:
    """With free space under the threshold plus headroom, done studies go oldest first, whatever
    their age, until there is room; the undelivered one stays even when room is still short."""
    settings = migrated_settings.model_copy(update={
        "storage": migrated_settings.storage.model_copy(update={"min_free_bytes": 10_000, "min_free_percent": 0.0}),
        "retention": migrated_settings.retention.model_copy(update={"headroom_bytes": 5_000}),
    })
    ids = [_receive(settings, factory, f"1.2.8.{n}", count=2, size=4000) for n in range(1, 5)]
    for n, study_id in enumerate(ids):
        _finish(settings, factory, study_id, hours_ago=4 - n)  # 1.2.8.1 done longest ago
    undelivered = _receive(settings, factory, "1.2.8.9", count=2, size=4000)
    _finish(settings, factory, undelivered, hours_ago=50, job=JobState.DELIVERING, delivery=DeliveryState.SENDING)

    def used() -> int:
        return sum(p.stat().st_size for p in settings.storage.path.rglob("*.dcm") if p.is_file())

    # Threshold 10,000 + headroom 5,000; free 10,000 at first: done studies free 9,000 bytes each
    # (two instances of 4,000 bytes, an SR of 1,000), so two are not enough and three are.
    settings = settings.model_copy(update={
        "storage": settings.storage.model_copy(update={"min_free_bytes": 30_000}),
    })
    start = used()
    outcome = run_retention(factory, settings, now=utcnow(),
                            usage=lambda: DiskUsage(10**9, 10_000 + start - used()))
    gone = [study_id for study_id in ids if _removed_at(factory, study_id) is not None]
    assert gone == ids[:3]
    assert outcome.to_make_room.studies == 3 and not outcome.short_of_space
    assert _removed_at(factory, undelivered) is None

    # Short even with every done study gone: the undelivered one stays, and the run says so.
    outcome = run_retention(factory, settings, now=utcnow(), usage=lambda: DiskUsage(10**9, 0))
    assert outcome.to_make_room.studies == 1 and outcome.short_of_space
    assert _removed_at(factory, undelivered) is None
    with factory() as session:
        reasons = session.scalars(select(Event.detail["reason"].as_string()).where(Event.tag == "study:files:removed"))
        assert list(reasons) == ["low_disk"] * 4


# --- a real listener on a small disk ------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 40 MiB tmpfs: its free space is what this test writes, not what the machine's other users do."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small disk needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "-o", "size=40m,mode=0700", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["/usr/bin/umount", "-l", str(mount)], check=False)


def test_a_node_at_its_watermark_keeps_receiving(
    small_disk: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    start_node: Callable[..., Node],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    """20 studies of 3 MiB (60 MiB) reach a 40 MiB disk whose node refuses below 12 MiB free: between
    studies the scheduler's retention removes the oldest delivered ones, every study is stored,
    and the one study never delivered keeps its files throughout."""
    from radassist.db.migrate import upgrade
    from tests.dicom_factories import make_ct_study, write_study
    from tests.peers import storescu

    settings = make_settings(database_url=postgres_url, storage_path=str(small_disk / "data"),
                             storage_min_free_bytes=str(12 * MiB), retention_headroom_bytes=str(8 * MiB),
                             retention_keep_done_hours="0")
    upgrade(settings)
    node = start_node(settings)
    factory, port = node.session_factory, node.port
    studies: list[uuid.UUID] = []
    for n in range(20):
        files = write_study(make_ct_study(series_count=1, instances_per_series=3, rows=512, columns=1024),
                            tmp_path / f"study{n}")
        result = storescu(port, *files)
        assert result.returncode == 0, f"study {n} refused: {result.stderr[-400:]}"
        with factory() as session:
            study_id = session.scalar(select(Study.id).order_by(Study.first_received_at.desc()).limit(1))
        assert study_id is not None
        studies.append(study_id)
        _finish(settings, factory, study_id, hours_ago=0, job=JobState.DELIVERING if n == 1 else JobState.DONE,
                delivery=DeliveryState.PENDING if n == 1 else DeliveryState.DELIVERED)
        run_retention(factory, settings, now=utcnow())  # what the beat task does
        if n >= 1:
            with factory() as session:
                kept = session.scalars(select(Instance.path).where(Instance.study_id == studies[1])).all()
            assert len(kept) == 3 and all((settings.storage.instances_dir / p).is_file() for p in kept)
    with factory() as session:
        removed = session.scalars(
            select(Event.study_id).where(Event.tag == "study:files:removed").order_by(Event.id)).all()
        summary = retention_summary(session, utcnow())
    assert studies[1] not in removed
    done_in_order = [s for s in studies if s != studies[1]]
    assert removed == done_in_order[: len(removed)]  # oldest first
    assert len(removed) >= 5 and summary.total.studies == len(removed)
    assert summary.total.bytes >= len(removed) * 3 * MiB

    # The control: without retention the same node soon refuses (0xA700), so the disk really was at
    # its watermark above.
    for n in range(20, 30):
        files = write_study(make_ct_study(series_count=1, instances_per_series=3, rows=512, columns=1024),
                            tmp_path / f"study{n}")
        if storescu(port, *files).returncode != 0:
            break
    else:
        pytest.fail("ten more studies without retention were all stored: the disk was not at its watermark")
