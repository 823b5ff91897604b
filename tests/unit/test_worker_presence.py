"""Workers report in; the jobs of one that stopped or fell silent are handed back, on both databases."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.tables import Event, Job, Study, WorkerPresence
from radassist.drafting.recover import hand_back_from_silent
from radassist.errors import ConfigError
from radassist.presence.report import report_seen, report_start, report_stop
from radassist.read.workers import workers_seen
from radassist.states import JobState, StudyState

LOST_AFTER_S = 90.0
HEARTBEAT_S = 10.0


def _held(session: Session, state: JobState, holder: str | None) -> uuid.UUID:
    study = Study(study_instance_uid=f"1.2.826.0.1.{uuid.uuid4().int}", state=StudyState.COMPLETE)
    session.add(study)
    session.flush()
    job = Job(study_id=study.id, state=state, model_name="m", held_by=holder, started_at=utcnow(), attempts=1)
    session.add(job)
    session.flush()
    return job.id


def _worker(session: Session, name: str, seen_ago_s: float, *, stopped: bool = False, running_s: float = 60) -> None:
    """A worker that reported every heartbeat for ``running_s`` until ``seen_ago_s`` ago."""
    seen = utcnow() - dt.timedelta(seconds=seen_ago_s)
    report_start(session, name, ["gpu"], 1234, seen - dt.timedelta(seconds=running_s))
    for beat in range(int(running_s // HEARTBEAT_S), -1, -1):
        report_seen(session, name, seen - dt.timedelta(seconds=beat * HEARTBEAT_S), HEARTBEAT_S)
    if stopped:
        report_stop(session, name, seen)


def test_a_report_starts_a_row_and_a_restart_clears_the_stop(factory: sessionmaker[Session]) -> None:
    now = utcnow()
    with factory() as session:
        assert report_seen(session, "gpu-0@host", now, HEARTBEAT_S) is False  # no row yet: the heartbeat reports its start
        report_start(session, "gpu-0@host", ["gpu", "cpu"], 11, now - dt.timedelta(minutes=1))
        report_stop(session, "gpu-0@host", now)
        session.commit()
        assert session.get(WorkerPresence, "gpu-0@host").stopped_at == now  # type: ignore[union-attr]
        report_start(session, "gpu-0@host", ["gpu"], 12, now)  # started again under its name
        session.commit()
        row = session.get(WorkerPresence, "gpu-0@host")
        assert row is not None and row.stopped_at is None and row.pid == 12 and row.queues == "gpu"
        assert report_seen(session, "gpu-0@host", now + dt.timedelta(seconds=10), HEARTBEAT_S) is True


def test_a_silent_or_stopped_workers_jobs_go_back_and_no_one_elses(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        _worker(session, "gone@a", seen_ago_s=LOST_AFTER_S + 1)
        _worker(session, "stopped@b", seen_ago_s=1, stopped=True)
        _worker(session, "alive@c", seen_ago_s=1)
        drafting_gone = _held(session, JobState.DRAFTING, "gone@a")
        preparing_gone = _held(session, JobState.PREPARING, "gone@a")
        drafting_stopped = _held(session, JobState.DRAFTING, "stopped@b")
        kept = [
            _held(session, JobState.DRAFTING, "alive@c"),
            _held(session, JobState.DRAFTING, "never-reported@d"),  # an older worker: the time limit's cutoff
            _held(session, JobState.DRAFTING, None),
            _held(session, JobState.PREPARED, "gone@a"),  # already back: nothing to hand back
        ]
        session.commit()

        drafts, preparing = hand_back_from_silent(session, utcnow(), LOST_AFTER_S, HEARTBEAT_S)
        session.commit()
        assert sorted(drafts) == sorted([drafting_gone, drafting_stopped]) and preparing == [preparing_gone]
        assert session.get(Job, drafting_gone).state is JobState.PREPARED  # type: ignore[union-attr]
        assert session.get(Job, preparing_gone).state is JobState.QUEUED  # type: ignore[union-attr]
        assert session.get(Job, drafting_gone).held_by is None  # type: ignore[union-attr]
        assert [session.get(Job, j).state for j in kept] == [  # type: ignore[union-attr]
            JobState.DRAFTING, JobState.DRAFTING, JobState.DRAFTING, JobState.PREPARED]
        reasons = session.scalars(select(Event.detail).where(Event.tag == "job:requeued", Event.job_id == drafting_gone))
        assert reasons.all() == [{"reason": "its worker stopped answering"}]
        assert hand_back_from_silent(session, utcnow(), LOST_AFTER_S, HEARTBEAT_S) == ([], [])  # once only


def test_a_report_after_a_gap_starts_a_new_run(factory: sessionmaker[Session]) -> None:
    start = utcnow() - dt.timedelta(minutes=5)
    with factory() as session:
        report_start(session, "gpu-0@host", ["gpu"], 11, start)
        report_seen(session, "gpu-0@host", start + dt.timedelta(seconds=HEARTBEAT_S), HEARTBEAT_S)
        report_seen(session, "gpu-0@host", start + dt.timedelta(seconds=3 * HEARTBEAT_S), HEARTBEAT_S)  # one late
        session.commit()
        assert session.get(WorkerPresence, "gpu-0@host").answering_since == start  # type: ignore[union-attr]
        back = start + dt.timedelta(seconds=3 * HEARTBEAT_S + 120)  # two minutes of failed reports
        back = back.astimezone(dt.timezone(dt.timedelta(hours=2)))  # a host not on UTC: stored as UTC
        report_seen(session, "gpu-0@host", back, HEARTBEAT_S)
        session.commit()
        session.expire_all()
        row = session.get(WorkerPresence, "gpu-0@host")
        assert row is not None and row.answering_since == back and row.seen_at == back


def test_after_a_database_outage_no_silence_is_trusted_for_a_heartbeat(factory: sessionmaker[Session]) -> None:
    """Every worker was silent for the outage's length.  One that reports in a second after another
    keeps its jobs; one still silent a heartbeat after the others answer again is gone."""
    with factory() as session:
        outage_s = 2 * LOST_AFTER_S
        for name in ("first@a", "late@b", "dead@c"):
            _worker(session, name, seen_ago_s=outage_s)
        late, dead = _held(session, JobState.DRAFTING, "late@b"), _held(session, JobState.DRAFTING, "dead@c")
        session.commit()
        back = utcnow()
        report_seen(session, "first@a", back, HEARTBEAT_S)  # the database is back

        # Before, the sweep in this second handed back late@b's draft and dead@c's.
        assert hand_back_from_silent(session, back + dt.timedelta(seconds=0.5), LOST_AFTER_S, HEARTBEAT_S) == ([], [])
        report_seen(session, "late@b", back + dt.timedelta(seconds=1), HEARTBEAT_S)
        report_seen(session, "first@a", back + dt.timedelta(seconds=HEARTBEAT_S), HEARTBEAT_S)
        drafts, _ = hand_back_from_silent(session, back + dt.timedelta(seconds=HEARTBEAT_S + 1), LOST_AFTER_S,
                                          HEARTBEAT_S)
        session.commit()
        assert drafts == [dead]
        assert session.get(Job, late).state is JobState.DRAFTING  # type: ignore[union-attr]


def test_without_a_worker_answering_a_stopped_workers_jobs_still_go_back(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        _worker(session, "stopped@b", seen_ago_s=1, stopped=True)
        _worker(session, "gone@a", seen_ago_s=LOST_AFTER_S + 1)
        stopped, silent = _held(session, JobState.DRAFTING, "stopped@b"), _held(session, JobState.DRAFTING, "gone@a")
        session.commit()
        drafts, _ = hand_back_from_silent(session, utcnow(), LOST_AFTER_S, HEARTBEAT_S)
        session.commit()
        assert drafts == [stopped]  # it said it stopped; the silent one waits for a worker that answers
        assert session.get(Job, silent).state is JobState.DRAFTING  # type: ignore[union-attr]


def test_a_job_taken_over_since_stays_with_its_new_holder(factory: sessionmaker[Session]) -> None:
    """The hand-back is a compare-and-set on the holder: a job claimed by another worker between the
    sweep's read and its write is not touched."""
    from radassist.drafting.recover import _HELD, _requeue

    with factory() as session:
        job_id = _held(session, JobState.DRAFTING, "gone@a")
        session.commit()
        read = session.execute(_HELD.where(Job.id == job_id)).all()  # what the sweep read
        with factory() as other:  # another worker's claim commits meanwhile
            other.get(Job, job_id).held_by = "alive@c"  # type: ignore[union-attr]
            other.commit()
        assert _requeue(session, read, "its worker stopped answering", held=True) == []
        session.commit()
        session.expire_all()
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.DRAFTING and job.held_by == "alive@c"


def test_the_system_page_lists_each_worker_with_its_state_and_what_it_holds(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        _worker(session, "gone@a", seen_ago_s=LOST_AFTER_S + 1)
        _worker(session, "stopped@b", seen_ago_s=1, stopped=True)
        _worker(session, "alive@c", seen_ago_s=1)
        _worker(session, "long-stopped@e", seen_ago_s=2 * 86400, stopped=True)
        _held(session, JobState.DRAFTING, "alive@c")
        _held(session, JobState.PREPARING, "alive@c")
        _held(session, JobState.DONE, "alive@c")
        session.commit()
        rows = {w.name: w for w in workers_seen(session, utcnow(), LOST_AFTER_S)}
    assert {n: (w.state, w.holding) for n, w in rows.items()} == {
        "alive@c": ("answering", 2), "gone@a": ("silent", 0), "stopped@b": ("stopped", 0)}
    assert rows["alive@c"].queues == ("gpu",)


def test_a_heartbeat_that_could_hand_back_a_live_worker_is_refused(make_settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="queue: .*at least three worker_heartbeat_seconds"):
        make_settings(queue_worker_heartbeat_seconds="40", queue_worker_lost_after_seconds="90")
    settings: Settings = make_settings(queue_worker_heartbeat_seconds="30", queue_worker_lost_after_seconds="90")
    assert settings.queue.worker_lost_after_seconds == 90


def test_workers_gone_for_a_week_are_forgotten_unless_they_hold_a_job(factory: sessionmaker[Session]) -> None:
    from radassist.presence.forget import FORGET_AFTER, forget_gone_workers

    week_s = FORGET_AFTER.total_seconds()
    with factory() as session:
        _worker(session, "retired@a", seen_ago_s=week_s + 60, stopped=True)
        _worker(session, "lost@b", seen_ago_s=week_s + 60)
        _worker(session, "lost-holding@c", seen_ago_s=week_s + 60)
        _worker(session, "stopped-yesterday@d", seen_ago_s=86400, stopped=True)
        _worker(session, "alive@e", seen_ago_s=1)
        _held(session, JobState.DRAFTING, "lost-holding@c")
        _held(session, JobState.DONE, "lost@b")  # finished long ago: holds nothing
        session.commit()
        assert forget_gone_workers(session, utcnow()) == 2
        session.commit()
        names = session.scalars(select(WorkerPresence.name).order_by(WorkerPresence.name)).all()
    assert names == ["alive@e", "lost-holding@c", "stopped-yesterday@d"]


def test_a_worker_gone_for_a_week_that_was_sending_a_delivery_is_kept(factory: sessionmaker[Session]) -> None:
    from radassist.db.tables import Delivery
    from radassist.presence.forget import FORGET_AFTER, forget_gone_workers
    from radassist.states import DeliveryChannel, DeliveryState

    with factory() as session:
        _worker(session, "io@lost", seen_ago_s=FORGET_AFTER.total_seconds() + 60)
        job_id = _held(session, JobState.DELIVERING, None)
        session.add(Delivery(job_id=job_id, channel=DeliveryChannel.SR, destination="pacs",
                             state=DeliveryState.SENDING, held_by="io@lost"))
        session.commit()
        assert forget_gone_workers(session, utcnow()) == 0
