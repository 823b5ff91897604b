"""The least busy listener process takes a waiting association (dicom_node.balance.AssociationLoad)."""

from __future__ import annotations

import pytest

from dicom_node import balance
from dicom_node.balance import LONGEST_DEFERRAL_S, NOT_SERVING, AssociationLoad


class Clock:
    """Stands in for the ``time`` module inside dicom_node.balance only."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(balance, "time", fake)
    return fake


def test_the_process_with_fewest_associations_accepts(clock: Clock) -> None:
    slots = [NOT_SERVING, NOT_SERVING]
    first, second = AssociationLoad(slots, 0), AssociationLoad(slots, 1)
    first.start_serving()
    second.start_serving()
    assert first.may_accept() and second.may_accept()  # a tie: whoever wins the race
    first.association_started()
    assert not first.may_accept()
    assert second.may_accept()
    second.association_started()
    assert first.may_accept()
    first.association_ended()
    assert slots == [0, 1]


def test_a_busier_process_accepts_after_the_longest_deferral(clock: Clock) -> None:
    """A sibling that never takes the connection (hung, exiting) must not strand the caller."""
    slots = [2, 0]
    busy = AssociationLoad(slots, 0)
    assert not busy.may_accept()
    clock.now += LONGEST_DEFERRAL_S / 2
    assert not busy.may_accept()
    clock.now += LONGEST_DEFERRAL_S / 2
    assert busy.may_accept()
    clock.now += 0.001
    assert not busy.may_accept()  # the next connection starts a new deferral


def test_a_new_connection_starts_its_own_deferral(clock: Clock) -> None:
    slots = [1, 0]
    busy = AssociationLoad(slots, 0)
    assert not busy.may_accept()  # the sibling took that one
    clock.now += 1.0  # a while later, another connection
    assert not busy.may_accept()


def test_processes_not_serving_are_not_waited_for(clock: Clock) -> None:
    slots = [3, NOT_SERVING, NOT_SERVING]
    only = AssociationLoad(slots, 0)
    assert only.may_accept()
    stopping = AssociationLoad(slots, 1)
    stopping.start_serving()
    assert not only.may_accept()
    stopping.stop_serving()
    assert only.may_accept()
