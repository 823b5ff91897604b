"""The workers that report in: who is preparing and drafting, and whether they still answer."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from radassist.db.base import Base, utcnow


class WorkerPresence(Base):
    """One Celery worker (by node name) and when it last reported in.

    Each worker's main process writes ``seen_at`` every ``[queue] worker_heartbeat_seconds``; a
    worker silent for ``[queue] worker_lost_after_seconds`` lost its machine or its process, and the
    sweep hands back the jobs held under its name (``jobs.held_by``).  The table also lists the
    workers on the system page on every broker, the embedded one included, which cannot be asked.
    """

    __tablename__ = "worker_presence"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    """The Celery node name, ``name@host``: what ``jobs.held_by`` holds."""
    queues: Mapped[str] = mapped_column(String(255), default="")
    """The queues it consumes, comma-separated."""
    pid: Mapped[int | None]
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    answering_since: Mapped[dt.datetime] = mapped_column(default=utcnow)
    """When its unbroken run of reports began: its start, or its first report after a gap (the
    database, or the way to it, did not answer).  The sweep trusts a silence only while some worker
    has answered without a break (:func:`radassist.presence.silence.database_answered`)."""
    stopped_at: Mapped[dt.datetime | None]
    """Set when it stopped cleanly; cleared when it starts again under the same name."""

    def __repr__(self) -> str:
        return f"<WorkerPresence {self.name}>"
