"""Local users, their browser sessions and API tokens.

Session cookies and API tokens are random 256-bit strings; the database keeps only their SHA-256
(a fast hash is enough for that much entropy), so a copy of the database logs nobody in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from radassist.auth.passwords import hash_password, needs_rehash, verify_password
from radassist.db.base import utcnow
from radassist.db.tables import ApiToken, User, WebSession

TOKEN_PREFIX = "ra_"
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


class Role(StrEnum):
    """``viewer`` looks; ``radiologist`` also reviews drafts (verdicts, held drafts, questions to the
    model); ``admin`` also runs the pipeline (retries, cancels, intake, settings)."""

    ADMIN = "admin"
    RADIOLOGIST = "radiologist"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """Who made a request, and how: ``session`` (a browser cookie; forms need CSRF) or ``token``."""

    id: uuid.UUID
    name: str
    role: Role
    via: str
    session_token: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def can_review(self) -> bool:
        """Radiologists and admins review drafts; viewers only look."""
        return self.role in (Role.ADMIN, Role.RADIOLOGIST)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(session: Session, name: str, password: str, role: Role | str) -> uuid.UUID:
    """Add a user, or set the password and role of an existing one (so the CLI can reset a password)."""
    if not _NAME.match(name):
        raise ValueError("name: 1-64 characters of letters, digits and . _ @ -")
    role = Role(role)
    hashed = hash_password(password)
    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    if user is None:
        user = User(id=uuid.uuid4(), name=name, password_hash=hashed, role=role.value)
        session.add(user)
    else:
        user.password_hash, user.role, user.disabled = hashed, role.value, False
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    return user.id


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The enabled user with this name and password, else None (same cost either way)."""
    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    ok = verify_password(user.password_hash if user is not None else None, password)
    if user is None or not ok or user.disabled:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def issue_api_token(session: Session, name: str) -> str:
    """A new bearer token for user ``name``; shown once, stored hashed."""
    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    if user is None:
        raise LookupError("no such user")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(id=uuid.uuid4(), user_id=user.id, token_hash=_digest(token)))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> CurrentUser | None:
    row = session.execute(
        select(User.id, User.name, User.role, ApiToken.id.label("token_id"), ApiToken.last_used_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _digest(token), User.disabled.is_(False))
    ).one_or_none()
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        # At most one write a minute per token: a polling client must not cost a commit per request.
        session.execute(update(ApiToken).where(ApiToken.id == row.token_id).values(last_used_at=now))
    return CurrentUser(id=row.id, name=row.name, role=Role(row.role), via="token")


def start_session(session: Session, user_id: uuid.UUID, hours: float) -> str:
    """A new login for ``user_id``; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(id=uuid.uuid4(), user_id=user_id, token_hash=_digest(token), created_at=now,
                   expires_at=now + dt.timedelta(hours=hours))
    )
    # Old logins of everybody are dropped here, so the table stays small without a job.
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.flush()
    return token


def user_for_session(session: Session, token: str) -> CurrentUser | None:
    row = session.execute(
        select(User.id, User.name, User.role)
        .join(WebSession, WebSession.user_id == User.id)
        .where(WebSession.token_hash == _digest(token), WebSession.expires_at > utcnow(), User.disabled.is_(False))
    ).one_or_none()
    if row is None:
        return None
    return CurrentUser(id=row.id, name=row.name, role=Role(row.role), via="session", session_token=token)


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
