"""The listener completes a study when its quiet time ends, without waiting for a sweep tick; several
listeners (and the sweep) racing for one study make one job."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from dicom_node import completion_timer
from dicom_node.completion_timer import CompletionTimer
from radassist.broker import CPU_QUEUE, PREPARE_TASK, client, queue_depths
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Event, Job, Study
from radassist.states import JobState, StudyState
from tests.conftest import wait_until
from tests.drafting.test_draft_task import cr_copy
from tests.node.conftest import Node
from tests.peers import storescu
from tests.unit.test_completion import receive


def _timeline(node_settings: Settings, study_uid: str) -> tuple[Study, list[Event], list[Job]]:
    with make_sessionmaker(node_settings)() as session:
        study = session.scalars(select(Study).where(Study.study_instance_uid == study_uid)).one()
        events = list(session.scalars(select(Event).where(Event.study_id == study.id).order_by(Event.id)))
        jobs = list(session.scalars(select(Job).where(Job.study_id == study.id)))
        session.expunge_all()
    return study, events, jobs


def test_a_study_completes_at_the_end_of_its_quiet_time_with_no_sweep(
    migrated_settings: Settings, start_node: Callable[..., Node], testdata: Path, tmp_path: Path
) -> None:
    # The sweep's period is a minute and no scheduler runs: only the listener's timer can complete it.
    settings = migrated_settings.model_copy(update={
        "queue": migrated_settings.queue.model_copy(update={"sweep_interval_seconds": 60.0}),
    })
    node = start_node(settings, study_quiet_seconds=1.0)
    path = cr_copy(testdata, tmp_path / "send")
    import pydicom

    study_uid = str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
    assert storescu(node.port, path).returncode == 0

    wait_until(lambda: _timeline(node.settings, study_uid)[0].state is StudyState.COMPLETE, timeout=30, interval=0.1)
    study, events, jobs = _timeline(node.settings, study_uid)
    tags = [e.tag for e in events]
    assert tags.index("study:instance:received") < tags.index("study:complete") < tags.index("job:queued")
    complete = events[tags.index("study:complete")]
    assert complete.detail["by"] == "timer" and complete.detail["reason"] == "quiet"
    assert [j.state for j in jobs] == [JobState.QUEUED]
    # The job's first task was sent after the commit: one prepare message waits on the cpu queue.
    assert wait_until(lambda: queue_depths(client(node.settings), [CPU_QUEUE])[CPU_QUEUE] == 1, timeout=10)


def test_two_listeners_racing_for_one_study_make_one_job(migrated_settings: Settings) -> None:
    settings = migrated_settings.model_copy(update={
        "dicom": migrated_settings.dicom.model_copy(update={"study_quiet_seconds": 0.3}),
    })
    sent: list[tuple[str, uuid.UUID, str]] = []
    lock = threading.Lock()

    def send(task: str, job_id: uuid.UUID, priority: str) -> None:
        with lock:
            sent.append((task, job_id, priority))

    factories = [make_sessionmaker(settings), make_sessionmaker(settings)]  # as two listener processes
    study_uid = "1.2.826.0.1.3680043.8.498.4711"
    receive(factories[0], study_uid, study_uid + ".1", dt.datetime.now(dt.UTC))
    timers = [CompletionTimer(settings, f, send) for f in factories]
    for timer in timers:
        timer.start()
    try:
        for timer in timers:  # both received an instance of the study at the same moment
            timer.note(study_uid, "RADASSIST")
        wait_until(lambda: all(t.armed() == 0 for t in timers), timeout=30, interval=0.05)
        wait_until(lambda: _timeline(settings, study_uid)[0].state is StudyState.COMPLETE, timeout=30)
    finally:
        for timer in timers:
            timer.stop()
    _, events, jobs = _timeline(settings, study_uid)
    assert len(jobs) == 1 and [e.tag for e in events].count("study:complete") == 1
    assert sent == [(PREPARE_TASK, jobs[0].id, "routine")]


def test_a_new_instance_re_arms_the_study(migrated_settings: Settings) -> None:
    """The timer claims nothing before the last instance's quiet time, whatever the first one's was."""
    settings = migrated_settings.model_copy(update={
        "dicom": migrated_settings.dicom.model_copy(update={"study_quiet_seconds": 0.5}),
    })
    factory = make_sessionmaker(settings)
    study_uid = "1.2.826.0.1.3680043.8.498.4712"
    sent: list[uuid.UUID] = []
    timer = CompletionTimer(settings, factory, lambda _task, job_id, _priority: sent.append(job_id))
    timer.start()
    try:
        receive(factory, study_uid, study_uid + ".1", dt.datetime.now(dt.UTC))
        timer.note(study_uid, "RADASSIST")
        receive(factory, study_uid, study_uid + ".2", dt.datetime.now(dt.UTC))
        timer.note(study_uid, "RADASSIST")  # re-armed: still one deadline
        assert timer.armed() == 1
        wait_until(lambda: sent, timeout=30, interval=0.05)
    finally:
        timer.stop()
    study, events, jobs = _timeline(settings, study_uid)
    assert study.instance_count == 2 and len(jobs) == 1 and sent == [jobs[0].id]


def test_the_timer_can_be_turned_off(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(dicom_completion_timer="false")
    assert completion_timer.for_listener(settings, make_sessionmaker(settings)) is None


def test_a_first_task_the_broker_refused_is_sent_once_it_is_back(migrated_settings: Settings, tmp_path: Path) -> None:
    """The claim is committed while the broker (a real Redis, not started yet) refuses the message:
    the timer sends it again every few seconds, and it reaches the queue once Redis runs, long
    before the sweep's two-minute check."""
    import shutil
    import socket
    import subprocess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    broker_url = f"redis://127.0.0.1:{port}/0"
    settings = migrated_settings.model_copy(update={
        "dicom": migrated_settings.dicom.model_copy(update={"study_quiet_seconds": 0.3}),
        "queue": migrated_settings.queue.model_copy(update={"broker_url": broker_url}),
    })
    factory = make_sessionmaker(settings)
    study_uid = "1.2.826.0.1.3680043.8.498.4713"
    timer = CompletionTimer(settings, factory)
    redis: subprocess.Popen[bytes] | None = None
    timer.start()
    try:
        receive(factory, study_uid, study_uid + ".1", dt.datetime.now(dt.UTC))
        timer.note(study_uid, "RADASSIST")
        wait_until(lambda: timer.unsent() == 1, timeout=60, interval=0.1)
        assert _timeline(settings, study_uid)[0].state is StudyState.COMPLETE  # committed before the send
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        redis = subprocess.Popen([server, "--port", str(port), "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: timer.unsent() == 0, timeout=30, interval=0.1)
        assert queue_depths(client(settings), [CPU_QUEUE])[CPU_QUEUE] == 1
    finally:
        timer.stop()
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
    factory.kw["bind"].dispose()
