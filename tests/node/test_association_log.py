"""The association row ends with the outcome the peer caused, whichever order pynetdicom reports it in.

pynetdicom reports an A-ABORT (EVT_ABORTED) and the closed connection (EVT_CONN_CLOSE) on different
threads; CI once saw the abort lost when the connection's "closed" was decided before it and written
after it.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select

from dicom_node.associations import RECENT_STUDIES, AssociationLog, AssociationState
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Association


def _outcome(log: AssociationLog, state: AssociationState) -> str:
    with log.session_factory() as session:
        return session.scalars(select(Association.outcome).where(Association.id == state.id)).one()


def _state() -> AssociationState:
    return AssociationState(id=uuid.uuid4(), calling_ae="PYSCU", called_ae="RADASSIST", peer_host="127.0.0.1", tls=False)


@pytest.mark.parametrize("order", ["abort-first", "close-first"])
def test_abort_is_recorded_in_either_order(migrated_settings: Settings, order: str) -> None:
    log = AssociationLog(make_sessionmaker(migrated_settings))
    state = _state()
    log.opened(state, 11112)
    if order == "abort-first":
        log.aborted(state)
        log.closed(state, "closed")
    else:
        log.closed(state, "closed")
        log.aborted(state)
    assert state.outcome == "aborted"
    assert _outcome(log, state) == "aborted"


def test_abort_racing_the_close_on_two_threads_is_never_lost(migrated_settings: Settings) -> None:
    log = AssociationLog(make_sessionmaker(migrated_settings))
    for _ in range(20):
        state = _state()
        log.opened(state, 11112)
        start = threading.Barrier(2)

        def close(s: AssociationState = state, start: threading.Barrier = start) -> None:
            start.wait()
            log.closed(s, "closed")

        def abort(s: AssociationState = state, start: threading.Barrier = start) -> None:
            start.wait()
            log.aborted(s)

        threads = [threading.Thread(target=close), threading.Thread(target=abort)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _outcome(log, state) == "aborted"


def test_a_released_association_stays_released(migrated_settings: Settings) -> None:
    log = AssociationLog(make_sessionmaker(migrated_settings))
    state = _state()
    log.opened(state, 11112)
    state.outcome = "released"
    log.closed(state, "closed")
    log.aborted(state)  # a late abort after a clean release changes nothing
    assert _outcome(log, state) == "released"


def test_an_association_remembers_its_recent_studies_only() -> None:
    """Each study's first instance is told apart from the rest (for the log), in bounded memory: a
    router may keep one association open for days."""
    state = _state()
    assert state.first_of_study("1.2.3") and not state.first_of_study("1.2.3")
    others = [f"1.2.3.{n}" for n in range(RECENT_STUDIES)]
    assert all(state.first_of_study(uid) for uid in others)
    assert state.first_of_study("1.2.3")  # forgotten behind RECENT_STUDIES others: counts again
    assert not state.first_of_study(others[-1])
    assert state.studies == RECENT_STUDIES + 2
