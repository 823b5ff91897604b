"""What an admin action returns, and the audit row every action writes.

An action never talks to the broker itself: it returns the tasks to send, and the caller sends
them only after the commit (a job is queued only after the database says so).  An action whose
target is not in a state it applies to changes nothing, and is audited as ``refused``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from radassist.broker import TASK_QUEUES
from radassist.db.base import utcnow
from radassist.db.tables import AuditEntry
from radassist.states import FINAL_JOB_STATES, JobState

IN_PROGRESS: tuple[JobState, ...] = tuple(s for s in JobState if s not in FINAL_JOB_STATES)
"""A job in one of these states may be cancelled; while one exists, no second job is made."""


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A Celery task to send once the action's transaction has committed."""

    task: str
    args: tuple[str, ...]
    queue: str

    @classmethod
    def of(cls, task: str, *args: str) -> Dispatch:
        """``task`` with ``args``, to the queue that task runs on."""
        return cls(task, args, TASK_QUEUES[task])


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    message: str
    dispatch: tuple[Dispatch, ...] = field(default=())
    removed_files: tuple[str, ...] = field(default=())
    """Instance files (relative to the instance store) the caller removes once the action committed."""


def audit(session: Session, user: str, action: str, target: str | None, outcome: str, **detail: Any) -> None:
    session.add(AuditEntry(at=utcnow(), user_name=user, action=action, target=target, outcome=outcome, detail=detail))


def done(session: Session, user: str, action: str, target: str, message: str,
         dispatch: tuple[Dispatch, ...] = (), **detail: Any) -> ActionResult:
    audit(session, user, action, target, "done", **detail)
    return ActionResult(True, message, dispatch)


def refused(session: Session, user: str, action: str, target: str, message: str) -> ActionResult:
    audit(session, user, action, target, "refused", reason=message)
    return ActionResult(False, message)
