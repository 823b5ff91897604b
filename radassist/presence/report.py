"""A worker's reports: started, still here, stopped.

Written by the worker's main process (:mod:`workers.heartbeat`), never by the pool child that runs
a job: a child busy with a long draft must not look gone, and the main process only waits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import case, literal, update
from sqlalchemy.orm import Session

from radassist.db.tables import WorkerPresence
from radassist.intake.record_steps import dialect_insert
from radassist.presence.silence import run_broken_after_s


def report_start(session: Session, name: str, queues: Iterable[str], pid: int, now: dt.datetime) -> None:
    """``name`` started (again): a row of its own, its stop cleared."""
    values = {"queues": ",".join(sorted(queues))[:255], "pid": pid, "started_at": now, "seen_at": now,
              "answering_since": now, "stopped_at": None}
    insert = dialect_insert(session.get_bind().dialect.name, WorkerPresence.__table__)
    session.execute(insert.values(name=name, **values).on_conflict_do_update(index_elements=["name"], set_=values))


def report_seen(session: Session, name: str, now: dt.datetime, heartbeat_s: float) -> bool:
    """``name`` is still here; False when its row is gone (deleted by hand), so the caller reports its start again.

    A report that comes after a gap (reports in between failed) starts a new unbroken run.
    """
    broken = WorkerPresence.seen_at < now - dt.timedelta(seconds=run_broken_after_s(heartbeat_s))
    result = session.execute(update(WorkerPresence).where(WorkerPresence.name == name).values(
        seen_at=now, answering_since=case((broken, literal(now, WorkerPresence.answering_since.type)),
                                          else_=WorkerPresence.answering_since)))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def report_stop(session: Session, name: str, now: dt.datetime) -> None:
    """``name`` stopped cleanly: whatever it still holds is handed back at the sweep's next round."""
    session.execute(update(WorkerPresence).where(WorkerPresence.name == name).values(seen_at=now, stopped_at=now))

