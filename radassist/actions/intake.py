"""Pausing intake from one calling AE title, and the list of paused titles the listener refuses."""

from __future__ import annotations

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from radassist.actions.outcome import ActionResult, done, refused
from radassist.db.base import utcnow
from radassist.db.tables import IntakePause


def pause_intake(session: Session, ae_title: str, user: str) -> ActionResult:
    title = ae_title.strip()
    if not title or len(title) > 16:
        return refused(session, user, "pause_intake", title[:64], "not an AE title")
    if session.get(IntakePause, title) is not None:
        return refused(session, user, "pause_intake", title, "already paused")
    session.add(IntakePause(ae_title=title, paused_at=utcnow(), paused_by=user))
    return done(session, user, "pause_intake", title, f"intake from {title} paused")


def resume_intake(session: Session, ae_title: str, user: str) -> ActionResult:
    title = ae_title.strip()
    result = session.execute(delete(IntakePause).where(IntakePause.ae_title == title))
    assert isinstance(result, CursorResult)
    if result.rowcount == 0:
        return refused(session, user, "resume_intake", title[:64], "not paused")
    return done(session, user, "resume_intake", title, f"intake from {title} resumed")


def intake_paused(session: Session, ae_title: str) -> bool:
    """True when an admin paused intake from this calling AE title (the listener then refuses it)."""
    return session.get(IntakePause, ae_title.strip()) is not None


def paused_ae_titles(session: Session) -> list[IntakePause]:
    """Every pause, by AE title: the listener refuses associations from these callers."""
    return list(session.scalars(select(IntakePause).order_by(IntakePause.ae_title)))
