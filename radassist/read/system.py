"""The system page and the audit log: what the probe learnt outside the database, the studies per
state of the last hour and day, what retention freed, the paused calling AE titles, the admin's actions."""

from __future__ import annotations

import datetime as dt
from dataclasses import fields

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import AuditEntry, IntakePause
from radassist.read.retention import retention_summary
from radassist.read.rows import AuditRow, PauseRow, ProbeStatus, SystemView
from radassist.read.workers import workers_seen
from radassist.read.worklist import counts_by_state


def recent_counts(session: Session, now: dt.datetime) -> dict[str, dict[str, int]]:
    """Studies per worklist state received in the last hour and the last day."""
    return {
        "hour": counts_by_state(session, since=now - dt.timedelta(hours=1)),
        "day": counts_by_state(session, since=now - dt.timedelta(days=1)),
    }


def system_view(session: Session, status: ProbeStatus, now: dt.datetime, worker_lost_after_s: float) -> SystemView:
    """The probe's answers with the recent counts and the workers as they reported in."""
    counts = recent_counts(session, now)
    return SystemView(
        **{f.name: getattr(status, f.name) for f in fields(ProbeStatus)},
        counts_last_hour=counts["hour"],
        counts_last_day=counts["day"],
        retention=retention_summary(session, now),
        workers_seen=workers_seen(session, now, worker_lost_after_s),
    )


def intake_pauses(session: Session) -> list[PauseRow]:
    """The calling AE titles an admin paused, by title."""
    stmt = select(IntakePause.ae_title, IntakePause.paused_at, IntakePause.paused_by).order_by(IntakePause.ae_title)
    return [PauseRow(**p._asdict()) for p in session.execute(stmt)]


def audit_entries(session: Session, limit: int = 200, offset: int = 0) -> list[AuditRow]:
    """The admin's actions, newest first."""
    stmt = (
        select(AuditEntry.at, AuditEntry.user_name, AuditEntry.action, AuditEntry.target, AuditEntry.outcome,
               AuditEntry.detail)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [AuditRow(**{**a._asdict(), "detail": dict(a.detail or {})}) for a in session.execute(stmt)]
