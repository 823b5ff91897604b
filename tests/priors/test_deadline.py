"""The time limit shared by every step of a search, its cancellation, and the sink's gate."""

from __future__ import annotations

import pytest

from radassist.priors.answers import FetchedInstance
from radassist.priors.deadline import Deadline
from radassist.priors.fetch import _Gate
from radassist.priors.results import PriorSourceError

ONE = FetchedInstance("1.2.1", "1.2.1.1", "1.2.1.1.1", b"DICM")


def test_a_step_never_waits_longer_than_what_is_left() -> None:
    deadline = Deadline(30)
    assert deadline.timeout(5) == 5
    assert 0 < deadline.timeout(600) <= 30


def test_cancel_runs_the_hooks_of_running_steps_only_and_ends_the_search() -> None:
    deadline = Deadline(30)
    ran: list[str] = []
    with deadline.on_cancel(lambda: ran.append("finished step")):
        pass
    with deadline.on_cancel(lambda: ran.append("running step")):
        deadline.cancel()
    assert ran == ["running step"]
    assert deadline.cancelled and deadline.remaining() == 0
    with pytest.raises(PriorSourceError) as info:
        deadline.timeout(5)
    assert info.value.code == "priors.timeout"
    with pytest.raises(PriorSourceError), deadline.on_cancel(lambda: None):
        pass


def test_a_failing_hook_does_not_stop_the_others() -> None:
    deadline = Deadline(30)
    ran: list[str] = []

    def broken() -> None:
        raise OSError("already closed")

    with deadline.on_cancel(broken), deadline.on_cancel(lambda: ran.append("second")):
        deadline.cancel()
    assert ran == ["second"]


def test_a_deadline_needs_time() -> None:
    with pytest.raises(ValueError, match="seconds"):
        Deadline(0)


def test_the_gate_hands_images_until_closed_and_names_a_sinks_failure() -> None:
    handed: list[FetchedInstance] = []
    gate = _Gate(handed.append)
    gate(ONE)
    gate.close()
    with pytest.raises(PriorSourceError) as closed:
        gate(ONE)
    assert closed.value.code == "priors.timeout" and handed == [ONE]

    def full_disk(fetched: FetchedInstance) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(PriorSourceError) as failed:
        _Gate(full_disk)(ONE)
    assert failed.value.code == "priors.store_failed" and "OSError" in failed.value.message
