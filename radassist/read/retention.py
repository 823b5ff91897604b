"""What retention freed, for the System page: files, bytes and studies, in the last day and in all.

Read from the ``study:files:removed`` events, whose details carry the figures of each removal.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from radassist.db.tables import Event
from radassist.events import EventTag
from radassist.read.rows import Freed, RetentionSummary


def retention_summary(session: Session, now: dt.datetime) -> RetentionSummary:
    """Totals of every removal, and of those in the 24 hours before ``now``."""
    removed = Event.tag == str(EventTag.FILES_REMOVED)
    figures = (
        func.count(Event.id),
        func.coalesce(func.sum(Event.detail["files"].as_integer()), 0),
        func.coalesce(func.sum(Event.detail["bytes"].as_integer()), 0),
    )
    total = session.execute(select(*figures, func.max(Event.at)).where(removed)).one()
    day = session.execute(select(*figures).where(removed, Event.at > now - dt.timedelta(days=1))).one()
    return RetentionSummary(
        last_day=Freed(int(day[0]), int(day[1]), int(day[2])),
        total=Freed(int(total[0]), int(total[1]), int(total[2])),
        last_removal_at=total[3],
    )
