import datetime as dt

from radassist.config import DeliverySettings
from radassist.delivery.retry import backoff_seconds, expired
from radassist.states import DeliveryState, JobState, can_transition


def test_finished_jobs_only_go_back_to_queued() -> None:
    assert can_transition(JobState.QUEUED, JobState.DRAFTING)
    assert not can_transition(JobState.DONE, JobState.QUEUED)
    assert can_transition(JobState.FAILED, JobState.QUEUED)
    assert not can_transition(JobState.QUEUED, JobState.DONE)
    assert not can_transition(DeliveryState.DELIVERED, DeliveryState.PENDING)


def test_backoff_doubles_and_is_capped() -> None:
    policy = DeliverySettings(retry_initial_seconds=5, retry_max_seconds=30)
    assert [backoff_seconds(n, policy) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]


def test_expiry_counts_from_the_first_attempt() -> None:
    policy = DeliverySettings(max_age_seconds=60)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert not expired(start, start + dt.timedelta(seconds=59), policy)
    assert expired(start, start + dt.timedelta(seconds=61), policy)
    assert not expired(None, start, policy)
