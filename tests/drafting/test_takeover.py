"""A worker killed mid-draft: its redelivered message takes the batch over, and the dead (or only
slow) holder can no longer store a draft, so no job gets two SRs or ORUs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path

from celery import Celery
from sqlalchemy import select, update

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Delivery, Draft, Event, Job
from radassist.models.base import DraftResult
from radassist.states import JobState
from tests.drafting.conftest import prepare
from tests.drafting.test_draft_task import add_study, cr_copy, make_app  # noqa: F401 - make_app is a fixture


def _as_if_claimed_by_a_dead_worker(maker, job_ids: list) -> None:  # type: ignore[no-untyped-def]
    started = utcnow() - dt.timedelta(seconds=5)
    with maker() as session:
        session.execute(update(Job).where(Job.id.in_(job_ids))
                        .values(state=JobState.DRAFTING, started_at=started, attempts=1))
        session.commit()


def _a_draft() -> DraftResult:
    """What the model returned, for a holder that no longer holds its job when it stores it."""
    return DraftResult(findings="No acute findings.", impression="Normal.", raw_text="Findings: x", prompt="p",
                       prompt_version="2", model_name="tiny", model_revision=None,
                       generation={"seconds": 1.0, "batch_size": 1})


def test_redelivered_message_takes_over_the_dead_workers_batch(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path  # noqa: F811
) -> None:
    from workers.tasks.draft import _claim, draft_study

    _, settings = make_app(model_batch_size="4")
    maker = make_sessionmaker(settings)
    with maker() as session:
        job_ids = [add_study(session, settings, [cr_copy(testdata, tmp_path / f"cr{i}")]).id for i in range(2)]
        bystander = add_study(session, settings, [cr_copy(testdata, tmp_path / "other")]).id
    prepare(bystander)
    _as_if_claimed_by_a_dead_worker(maker, job_ids)

    # A message that is not a redelivery leaves a drafting job alone (its holder may be alive).
    draft_study.apply(args=(str(job_ids[0]),)).get()
    with maker() as session:
        assert {session.get(Job, j).state for j in job_ids} == {JobState.DRAFTING}  # type: ignore[union-attr]

    claimed = _claim(draft_study, job_ids[0], takeover=True)
    assert {c.job_id for c in claimed} >= set(job_ids)  # the batch mate (same started_at) too
    assert all(c.attempts == 2 for c in claimed if c.job_id in job_ids)
    with maker() as session:
        tags = session.scalars(select(Event.detail).where(Event.tag == "job:requeued")).all()
        assert sum("taken over" in str(t) for t in tags) == 2
        assert session.get(Job, bystander).state is JobState.DRAFTING  # type: ignore[union-attr]
    maker.kw["bind"].dispose()


def test_a_superseded_holder_stores_nothing(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path  # noqa: F811
) -> None:
    from radassist.drafting.prepare import PreparedJob
    from workers.tasks.draft import _claim, _load, _settle, draft_study

    _, settings = make_app(model_batch_size="1")
    maker = make_sessionmaker(settings)
    with maker() as session:
        job_id = add_study(session, settings, [cr_copy(testdata, tmp_path / "cr")]).id
    prepare(job_id)
    stale = _claim(draft_study, job_id)[0]  # the first worker, which will be presumed dead
    prepared = _load(draft_study, [stale])[0]
    assert isinstance(prepared, PreparedJob)
    _claim(draft_study, job_id, takeover=True)  # a second worker takes the job over

    _settle(draft_study, [prepared], [_a_draft()], [])
    with maker() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.DRAFTING and job.attempts == 2
        assert session.scalars(select(Draft).where(Draft.job_id == job_id)).all() == []
        assert session.scalars(select(Delivery).where(Delivery.job_id == job_id)).all() == []
    maker.kw["bind"].dispose()


def test_a_job_left_preparing_is_taken_over_and_the_old_holder_hands_on_nothing(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path  # noqa: F811
) -> None:
    from workers.tasks.prepare import _claim, _hand_on, prepare_for_model

    _, settings = make_app()
    maker = make_sessionmaker(settings)
    with maker() as session:
        job_id = add_study(session, settings, [cr_copy(testdata, tmp_path / "cr")]).id
    stale = _claim(prepare_for_model, job_id, False)  # the first cpu worker, which will be presumed dead
    assert stale is not None and stale.paths and stale.started_at is not None
    assert _claim(prepare_for_model, job_id, False) is None  # a plain second message leaves it alone
    fresh = _claim(prepare_for_model, job_id, True)  # a redelivered one takes it over
    assert fresh is not None and fresh.started_at != stale.started_at
    _hand_on(prepare_for_model, stale, 1)  # the old holder's late hand-over
    with maker() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.PREPARING and job.attempts == 0
    _hand_on(prepare_for_model, fresh, 1)
    with maker() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.PREPARED
        tags = session.scalars(select(Event.tag).where(Event.job_id == job_id).order_by(Event.id)).all()
        assert tags == ["job:prepare:started", "job:prepare:started", "job:prepare:completed"]
    maker.kw["bind"].dispose()


def test_a_job_whose_kept_inputs_are_gone_is_prepared_again_then_fails(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path  # noqa: F811
) -> None:
    """The drafting worker never reads the received files: without kept inputs the job goes back to
    be prepared, and a store it can never read fails the job with the reason."""
    from radassist.drafting.record import MAX_TRANSIENT_ATTEMPTS
    from radassist.store.prepared import prepared_store
    from workers.tasks.draft import draft_study

    _, settings = make_app()
    maker = make_sessionmaker(settings)
    with maker() as session:
        job_id = add_study(session, settings, [cr_copy(testdata, tmp_path / "cr")]).id
    for attempt in range(1, MAX_TRANSIENT_ATTEMPTS + 1):
        prepare(job_id)
        prepared_store(settings).remove(job_id)  # as if the GPU machine could not see them
        draft_study.apply(args=(str(job_id),)).get()
        with maker() as session:
            job = session.get(Job, job_id)
            assert job is not None and job.attempts == attempt
            expected = JobState.QUEUED if attempt < MAX_TRANSIENT_ATTEMPTS else JobState.FAILED
            assert job.state is expected
    with maker() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.error_code == "draft.inputs_missing"
    maker.kw["bind"].dispose()


def test_a_run_goes_on_with_the_next_prepared_batch_under_one_started_at(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path  # noqa: F811
) -> None:
    """No message or broker poll between batches while prepared jobs wait; the batches share the run's
    ``started_at``, so a redelivered message would take them all over."""
    from workers.tasks.draft import draft_study

    _, settings = make_app(model_batch_size="2")
    maker = make_sessionmaker(settings)
    with maker() as session:
        job_ids = [add_study(session, settings, [cr_copy(testdata, tmp_path / f"cr{i}")]).id for i in range(5)]
    prepare(*job_ids)
    draft_study.apply(args=(str(job_ids[0]),)).get()
    with maker() as session:
        jobs = [session.get(Job, j) for j in job_ids]
        assert {j.state for j in jobs} == {JobState.DRAFTED}  # type: ignore[union-attr]
        assert len({j.started_at for j in jobs}) == 1  # type: ignore[union-attr]
        batches = session.scalars(select(Event.detail).where(Event.tag == "job:draft:started")).all()
        assert sorted(d["batch"] for d in batches) == [1, 2, 2, 2, 2]
    draft_study.apply(args=(str(job_ids[3]),)).get()  # a batch mate's own message ends at a read
    with maker() as session:
        assert len(session.scalars(select(Event).where(Event.tag == "job:draft:started")).all()) == 5
    maker.kw["bind"].dispose()


def test_a_job_cancelled_by_a_newer_one_mid_draft_stores_nothing(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path  # noqa: F811
) -> None:
    """The study grew while the model ran: the newer job cancelled this one, whose draft is dropped."""
    from radassist.completion.supersede import SUPERSEDED_CODE, supersede_earlier_jobs
    from radassist.drafting.prepare import PreparedJob
    from workers.tasks.draft import _claim, _load, _settle, draft_study

    _, settings = make_app(model_batch_size="1")
    maker = make_sessionmaker(settings)
    with maker() as session:
        earlier = add_study(session, settings, [cr_copy(testdata, tmp_path / "cr")])
        job_id, study_id = earlier.id, earlier.study_id
    prepare(job_id)
    holder = _claim(draft_study, job_id)[0]
    prepared = _load(draft_study, [holder])[0]
    assert isinstance(prepared, PreparedJob)
    with maker() as session:
        newer = Job(id=uuid.uuid4(), study_id=study_id, state=JobState.QUEUED, model_name="tiny",
                    created_at=utcnow(), supersedes_job_id=job_id)
        session.add(newer)
        session.flush()
        assert supersede_earlier_jobs(session, newer) == [job_id]
        session.commit()

    _settle(draft_study, [prepared], [_a_draft()], [])
    with maker() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.CANCELLED and job.error_code == SUPERSEDED_CODE
        assert session.scalars(select(Draft).where(Draft.job_id == job_id)).all() == []
        assert session.scalars(select(Delivery).where(Delivery.job_id == job_id)).all() == []
    maker.kw["bind"].dispose()


def test_a_worker_started_again_hands_back_what_it_held_and_its_old_self_stores_nothing(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path  # noqa: F811
) -> None:
    """Killed with its jobs, a worker starting under the same name hands them back at once (not after
    the sweep's cutoff); another worker's job stays with it."""
    from radassist.broker import GPU_QUEUE, queue_depths
    from radassist.drafting.prepare import PreparedJob
    from workers.restart import hand_back_on_start
    from workers.tasks.draft import _claim, _load, _settle, draft_study

    app, settings = make_app(model_batch_size="1")
    maker = make_sessionmaker(settings)
    with maker() as session:
        mine, others = (add_study(session, settings, [cr_copy(testdata, tmp_path / name)]).id
                        for name in ("mine", "other"))
    prepare(mine, others)
    holders: dict[object, str] = {mine: "gpu-0@host", others: "gpu-1@host"}
    held = {}
    for job_id, holder in holders.items():
        draft_study.push_request(hostname=holder)
        try:
            held[job_id] = _claim(draft_study, job_id)[0]
        finally:
            draft_study.pop_request()
    with maker() as session:
        assert {j: session.get(Job, j).held_by for j in holders} == holders  # type: ignore[union-attr]
    stale = _load(draft_study, [held[mine]])[0]
    assert isinstance(stale, PreparedJob)
    waiting = queue_depths(app, [GPU_QUEUE], timeout=5.0)[GPU_QUEUE]

    assert hand_back_on_start(app, "gpu-0@host", ["cpu"]) == ([], [])  # a cpu worker holds no draft
    assert hand_back_on_start(app, "gpu-0@host", ["gpu"]) == ([mine], [])
    assert queue_depths(app, [GPU_QUEUE], timeout=5.0)[GPU_QUEUE] == waiting + 1  # its message sent again
    with maker() as session:
        assert session.get(Job, mine).state is JobState.PREPARED  # type: ignore[union-attr]
        assert session.get(Job, others).state is JobState.DRAFTING  # type: ignore[union-attr]
        requeued = session.scalars(select(Event.detail).where(Event.tag == "job:requeued", Event.job_id == mine)).all()
        assert requeued == [{"reason": "its worker restarted"}]

    draft_study.apply(args=(str(mine),)).get()  # the message sent again, taken by the new worker
    _settle(draft_study, [stale], [_a_draft()], [])  # the old pool child, had it outlived its parent
    with maker() as session:
        job = session.get(Job, mine)
        assert job is not None and job.state not in (JobState.PREPARED, JobState.DRAFTING) and job.attempts == 2
        assert len(session.scalars(select(Draft).where(Draft.job_id == mine)).all()) == 1
    maker.kw["bind"].dispose()
